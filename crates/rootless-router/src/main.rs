//! `rootless-router`: a complete DN42 router in one unprivileged process.
//!
//! What it is: the command line — `run`, `check`, `ctl`, `exec`, `genkey`, `pubkey`, `demo`,
//! `import` —
//! over the library crates. Nothing here is protocol logic.

mod ctl;
mod demo;
mod exec;
mod import;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rr_config::{keys, Config, Key};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rootless-router",
    version,
    about = "A complete DN42 router in one unprivileged process"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one router node in the foreground until SIGINT/SIGTERM.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config: exit 0 if runnable, else one error per problem with its line.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Ask a running node (birdc / `wg show` style).
    Ctl(ctl::CtlArgs),
    /// Run an unmodified program whose IPv4/IPv6 sockets use a running node's network:
    /// `rootless-router exec -- PROGRAM ARGS...`.
    Exec(exec::ExecArgs),
    /// Print a new WireGuard private key (as `wg genkey`).
    Genkey,
    /// Read a private key on stdin, print its public key (as `wg pubkey`).
    Pubkey,
    /// A self-contained network of three nodes on loopback; shows a packet crossing a transit node.
    Demo(demo::DemoArgs),
    /// Translate wg-quick / BIRD configs into config sections (TOML on stdout; what is
    /// not translated is reported on stderr): `import wg-quick FILE...`, `import bird FILE`.
    Import(import::ImportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rootless-router: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides `default` (e.g. `RUST_LOG=debug`).
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `check`'s note when eBGP sessions filter as DN42 but there are no ROAs to validate
/// against (no `[roa]`): the node then accepts RPKI-invalid and unknown routes, which
/// the DN42 wiki's filter drops. iBGP routes are not validated in any case.
fn no_roa_note(c: &Config) -> Option<String> {
    if c.roa.is_some() {
        return None;
    }
    let sessions: Vec<&str> = c
        .bgp
        .iter()
        .filter(|b| b.import == rr_config::Policy::Dn42 && Some(b.remote_asn) != c.router.asn)
        .map(|b| b.name.as_str())
        .collect();
    if sessions.is_empty() {
        return None;
    }
    Some(format!(
        "note: no [roa] section: bgp {} {} (import = \"dn42\") {} no ROA origin \
         validation; add [roa] to drop invalid and unknown routes as the DN42 wiki does",
        if sessions.len() == 1 {
            "session"
        } else {
            "sessions"
        },
        sessions.join(", "),
        if sessions.len() == 1 { "does" } else { "do" }
    ))
}

fn real_main(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Run { config } => {
            init_logging("info");
            let cfg = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            rr_node::signals::block();
            let node = rr_node::Node::start(cfg).context("cannot start the node")?;
            tracing::info!(socket = %node.control_socket().display(), "node running");
            let sig = loop {
                match rr_node::signals::wait() {
                    rr_node::signals::Signal::Hangup => {
                        tracing::info!("SIGHUP: reloading the config");
                        // On its own thread: a SIGTERM during a slow reload still stops
                        // the node at once (a second reload meanwhile is refused by it).
                        let job = node.reloader();
                        let spawned = std::thread::Builder::new()
                            .name("sighup-reload".into())
                            .spawn(move || {
                                for line in ctl::render(&job()).lines() {
                                    tracing::info!("{line}");
                                }
                            });
                        if let Err(e) = spawned {
                            tracing::warn!(error = %e, "SIGHUP: cannot start the reload");
                        }
                    }
                    sig => break sig,
                }
            };
            tracing::info!(signal = ?sig, "stopping");
            node.shutdown();
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Check { config } => match Config::load(&config) {
            Ok(c) => {
                // Gateways, policies and ROA sources are mentioned only when there are some.
                let mut extra = String::new();
                for (n, word) in [(c.forwards.len(), "forward"), (c.exposes.len(), "expose")] {
                    if n > 0 {
                        extra.push_str(&format!(", {n} {word}{}", if n == 1 { "" } else { "s" }));
                    }
                }
                // Likewise policies and the ROA sources.
                let n = c.policies.len();
                if n > 0 {
                    let word = if n == 1 { "policy" } else { "policies" };
                    extra.push_str(&format!(", {n} {word}"));
                }
                if let Some(r) = &c.roa {
                    let (f, t) = (r.files.len(), r.rtr.len());
                    extra.push_str(&format!(
                        ", roa from {f} file{} and {t} rtr server{}",
                        if f == 1 { "" } else { "s" },
                        if t == 1 { "" } else { "s" }
                    ));
                }
                println!(
                    "{}: ok ({} interfaces, {} routes, {} bgp sessions{extra})",
                    config.display(),
                    c.interfaces.len(),
                    c.routes.len(),
                    c.bgp.len()
                );
                if let Some(note) = no_roa_note(&c) {
                    println!("{note}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Cmd::Ctl(args) => ctl::run(args),
        Cmd::Exec(args) => Ok(exec::run(args)),
        Cmd::Genkey => {
            println!("{}", keys::generate().to_base64());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Pubkey => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            let k = match Key::from_base64(s.trim()) {
                Ok(k) => k,
                Err(_) => bail!("stdin is not a base64 WireGuard private key (32 bytes)"),
            };
            println!("{}", keys::public(&k).to_base64());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo(args) => {
            init_logging("warn");
            demo::run(args)
        }
        Cmd::Import(args) => import::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tail: &str) -> Config {
        let text = format!(
            "[router]\nasn = 4242420001\nrouter_id = \"172.20.0.1\"\n\n\
             [[bgp]]\nname = \"ebgp\"\nneighbor = \"127.0.0.1\"\nremote_asn = 4242420002\n\
             transport = \"host\"\n\n\
             [[bgp]]\nname = \"ibgp\"\nneighbor = \"127.0.0.2\"\nremote_asn = 4242420001\n\
             transport = \"host\"\n\n\
             [[bgp]]\nname = \"open\"\nneighbor = \"127.0.0.3\"\nremote_asn = 4242420003\n\
             transport = \"host\"\nimport = \"all\"\n{tail}"
        );
        Config::parse(&text, "t.toml", std::path::Path::new("/")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn check_notes_dn42_sessions_without_roa() {
        let note = no_roa_note(&config("")).expect("a note");
        // Only the eBGP session importing as DN42 is named.
        assert!(
            note.contains("bgp session ebgp (import = \"dn42\") does no"),
            "{note}"
        );
        assert!(!note.contains("ibgp") && !note.contains("open"), "{note}");
        let with_roa = config("\n[roa]\nfiles = [\"/roa_dn42.conf\"]\n");
        assert_eq!(no_roa_note(&with_roa), None);
    }
}

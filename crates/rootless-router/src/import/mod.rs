//! `rootless-router import`: turns the configs of a wg-quick + BIRD node into
//! rootless-router config sections (issue 6, "Migration").
//!
//! What it is: two translators that read files and print TOML on stdout —
//! [`wg`] (wg-quick / `wg` files to `[[interface]]`, plus `[[route]]` for point-to-point
//! peers) and [`bird`] (a DN42-style BIRD 2 config to `[router]`, `[[bgp]]` and `[roa]`).
//! Everything they cannot translate is reported on stderr, one line each, as
//! `FILE:LINE: what it was: what to do instead`; nothing is dropped silently.
//!
//! What it is not: a validator (run `rootless-router check` on the result), a full
//! wg-quick or BIRD implementation (no scripts are run, no BIRD filter is interpreted),
//! or a writer of files: the user redirects stdout.

pub mod bird;
pub mod wg;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    what: ImportCmd,
}

#[derive(Subcommand)]
enum ImportCmd {
    /// wg-quick / `wg showconf` files (one peer each) to `[[interface]]` sections; the
    /// interface is named after the file, as wg-quick does (dn42-foo.conf -> dn42-foo).
    WgQuick {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// A DN42-style BIRD 2 config to `[router]`, `[[bgp]]` (and `[roa]`) sections;
    /// `include`s are followed.
    Bird {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Something in a source file that was not (or not fully) translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The file, as given or as reached through `include`.
    pub file: String,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// What it was and what to do instead.
    pub message: String,
}

impl Note {
    pub fn new(file: &str, line: usize, message: impl Into<String>) -> Note {
        Note {
            file: file.to_owned(),
            line: Some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for Note {
    /// `FILE:LINE: MESSAGE` (or `FILE: MESSAGE`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// A TOML basic string (quotes, backslashes and control characters escaped).
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of strings.
pub fn toml_list<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<String> = items.iter().map(|s| toml_str(s.as_ref())).collect();
    format!("[{}]", inner.join(", "))
}

/// Text for a `#` comment line: control characters (newlines) replaced.
pub fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// An address with an optional prefix length (`172.20.0.1`, `fe80::1/64`), checked.
pub fn parse_net(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: std::net::IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().ok().filter(|&l| l <= max)?,
        None => max,
    };
    Some((ip, len))
}

/// The network of `ip/len` (host bits cleared), as `NET/LEN`.
pub fn network(ip: std::net::IpAddr, len: u8) -> String {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            let net = std::net::Ipv4Addr::from(u32::from(v4) & mask);
            format!("{net}/{len}")
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            let net = std::net::Ipv6Addr::from(u128::from(v6) & mask);
            format!("{net}/{len}")
        }
    }
}

/// Prints the translation on stdout and the notes on stderr. Exit status 0 when every
/// file was translated (notes or not), 1 when a file was refused.
pub fn run(args: ImportArgs) -> Result<ExitCode> {
    match args.what {
        ImportCmd::WgQuick { files } => {
            let mut sources = Vec::new();
            for path in &files {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                sources.push((path.clone(), String::from_utf8_lossy(&bytes).into_owned()));
            }
            let out = wg::translate_files(&sources);
            for note in &out.notes {
                eprintln!("{note}");
            }
            print!("{}", out.toml);
            if out.refused > 0 {
                eprintln!(
                    "rootless-router: {} of {} files not translated (see above)",
                    out.refused,
                    files.len()
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        ImportCmd::Bird { file } => {
            let out = bird::translate_file(&file)?;
            for note in &out.notes {
                eprintln!("{note}");
            }
            print!("{}", out.toml);
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_escape_what_toml_needs() {
        assert_eq!(toml_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn networks_clear_host_bits() {
        let (ip, len) = parse_net("172.20.1.77/26").unwrap();
        assert_eq!(network(ip, len), "172.20.1.64/26");
        let (ip, len) = parse_net("fd00:1::5").unwrap();
        assert_eq!(network(ip, len), "fd00:1::5/128");
        let (ip, len) = parse_net("10.0.0.1/0").unwrap();
        assert_eq!(network(ip, len), "0.0.0.0/0");
        assert_eq!(parse_net("10.0.0.1/33"), None);
        assert_eq!(parse_net("nonsense"), None);
    }
}

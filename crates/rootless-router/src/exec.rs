//! `rootless-router exec`: starts an unmodified program whose IPv4/IPv6 sockets use a
//! running node's network, through the LD_PRELOAD shim (`librr_preload.so`).
//!
//! What it is: the launcher. It finds the node's control socket and checks that the
//! node answers [`ExecRequest::Hello`] before anything is started, finds the shim, sets
//! `LD_PRELOAD` and [`ENV_SOCKET`], and replaces itself with the program (`execve`), so
//! the exit status is the program's own. Programs the loader would not preload
//! (setuid, setgid, file capabilities) are started through their ELF interpreter, which
//! runs them without their privileges but with the shim.
//!
//! What it is not: the shim (`rr-preload`) or the node side (`rr-node`'s exec server);
//! it carries no traffic. Static and Go programs bypass libc and so the shim: they get
//! a warning pointing at `[[forward]]` / `[[expose]]`, and run on the host's network.

use clap::{ArgAction, Args};
use rr_ctl::exec::{
    ExecRequest, ExecResponse, ENV_DEBUG, ENV_PRELOAD, ENV_SOCKET, PRELOAD_FILE, PROTOCOL_VERSION,
};
use rr_ctl::{Request, Response};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

#[derive(Args)]
pub struct ExecArgs {
    /// Control socket (default: $ROOTLESS_ROUTER_SOCKET, then --config's control_socket,
    /// then $XDG_RUNTIME_DIR/rootless-router.sock).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Take the control socket from this config file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Say what exec does (-v), and turn on the shim's debug output (-v: setup,
    /// -vv: every operation) unless ROOTLESS_ROUTER_PRELOAD_DEBUG is set.
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
    /// The program and its arguments (`-- PROGRAM ARGS...`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM ARGS"
    )]
    command: Vec<OsString>,
}

/// Exit status when exec cannot start the program (the node, the shim).
const EXIT_SETUP: u8 = 2;
/// Exit status for a program that exists but cannot be executed (as shells do).
const EXIT_CANNOT_EXECUTE: u8 = 126;
/// Exit status for a program that is not found (as shells do).
const EXIT_NOT_FOUND: u8 = 127;

/// A reason not to start the program, and the exit status that says so.
struct Refusal {
    code: u8,
    message: String,
}

fn refuse(message: impl Into<String>) -> Refusal {
    Refusal {
        code: EXIT_SETUP,
        message: message.into(),
    }
}

/// Runs `exec`: on success this never returns (the program replaced the process).
pub fn run(args: ExecArgs) -> ExitCode {
    match launch(args) {
        Ok(never) => match never {},
        Err(r) => {
            eprintln!("rootless-router exec: {}", r.message);
            ExitCode::from(r.code)
        }
    }
}

/// Everything up to the `execve`; returns only on failure.
fn launch(args: ExecArgs) -> Result<std::convert::Infallible, Refusal> {
    let verbose = args.verbose > 0 || std::env::var_os("RUST_LOG").is_some();
    let socket = crate::ctl::socket_path(args.socket, args.config.as_deref())
        .map_err(|e| refuse(format!("{e:#}")))?;
    let socket = absolute(&socket).map_err(refuse)?;
    hello(&socket)?;
    let shim = find_shim().map_err(refuse)?;

    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| refuse("no program given: rootless-router exec -- PROGRAM ARGS..."))?;
    let path = resolve_program(program)?;
    let elf = ElfInfo::read(&path).unwrap_or_default();
    let privileged = privileged(&path);

    let mut cmd = match (&privileged, &elf.interp) {
        (Some(why), Some(interp)) => {
            let mut cmd = Command::new(interp);
            if loader_takes_argv0(interp) {
                cmd.arg("--argv0").arg(program);
            }
            cmd.arg(&path).args(rest);
            if verbose {
                eprintln!(
                    "rootless-router exec: {} {why}: the loader would not preload the shim, so it runs through {} without those privileges",
                    path.display(),
                    interp.display()
                );
            }
            cmd
        }
        _ => {
            let mut cmd = Command::new(&path);
            cmd.arg0(program).args(rest);
            cmd
        }
    };
    if elf.is_elf && (elf.interp.is_none() || elf.go) {
        let what = if elf.go {
            "a Go program"
        } else {
            "statically linked"
        };
        eprintln!(
            "rootless-router exec: warning: {} is {what}: it does not make its network calls through libc, so the shim cannot carry them and it uses the host's network. \
             For such programs, use [[forward]] (a host port leading to a DN42 address) or [[expose]] in the router's config.",
            path.display()
        );
    } else if let (Some(why), None) = (&privileged, &elf.interp) {
        eprintln!(
            "rootless-router exec: warning: {} {why} and has no ELF interpreter to run it through: the loader will ignore the shim",
            path.display()
        );
    }

    cmd.env(
        "LD_PRELOAD",
        ld_preload(&shim, std::env::var_os("LD_PRELOAD")),
    )
    .env(ENV_SOCKET, &socket);
    if args.verbose > 0 && std::env::var_os(ENV_DEBUG).is_none() {
        cmd.env(ENV_DEBUG, if args.verbose > 1 { "2" } else { "1" });
    }
    let e = cmd.exec();
    let code = match e.kind() {
        ErrorKind::NotFound => EXIT_NOT_FOUND,
        _ => EXIT_CANNOT_EXECUTE,
    };
    Err(Refusal {
        code,
        message: format!("cannot run {}: {e}", path.display()),
    })
}

fn absolute(p: &Path) -> Result<PathBuf, String> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| format!("cannot make {} absolute: {e}", p.display()))?;
    Ok(cwd.join(p))
}

/// Checks the control socket and asks the node for [`ExecRequest::Hello`].
fn hello(socket: &Path) -> Result<(), Refusal> {
    let shown = socket.display();
    let start_one = "start one with `rootless-router run --config FILE`";
    let meta = match std::fs::metadata(socket) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(refuse(format!(
                "no router running: no control socket at {shown} ({start_one})"
            )))
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(refuse(format!(
                "cannot use {shown}: permission denied — a directory on the way is not accessible to uid {}",
                euid()
            )))
        }
        Err(e) => return Err(refuse(format!("cannot use {shown}: {e}"))),
    };
    if !meta.file_type().is_socket() {
        return Err(refuse(format!(
            "{shown} is not a socket: no router's control socket is there (pass --socket, or {start_one})"
        )));
    }
    let conn = match UnixStream::connect(socket) {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(refuse(format!(
                "cannot use {shown}: permission denied — the control socket is mode {:04o} and belongs to uid {}; run exec as that user",
                meta.permissions().mode() & 0o7777,
                meta.uid()
            )))
        }
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            return Err(refuse(format!(
                "no router running: {shown} is a stale socket (its node has exited; {start_one})"
            )))
        }
        Err(e) => return Err(refuse(format!("cannot connect to {shown}: {e}"))),
    };
    let talk = || -> Result<Option<Response>, String> {
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut w = &conn;
        let req = Request::Exec {
            op: ExecRequest::Hello,
        };
        rr_ctl::write_line(&mut w, &req).map_err(|e| e.to_string())?;
        rr_ctl::read_line(&mut BufReader::new(&conn), 1 << 16).map_err(|e| e.to_string())
    };
    match talk() {
        Ok(Some(Response::Exec {
            answer: ExecResponse::Hello { version },
        })) if version == PROTOCOL_VERSION => Ok(()),
        Ok(Some(Response::Exec {
            answer: ExecResponse::Hello { version },
        })) => Err(refuse(format!(
            "the node at {shown} speaks exec protocol version {version}, this rootless-router version {PROTOCOL_VERSION}: run exec from the same build as the node"
        ))),
        Ok(Some(Response::Error { message }))
        | Ok(Some(Response::Exec {
            answer: ExecResponse::Failed { message, .. },
        })) => Err(refuse(message)),
        Ok(Some(other)) => Err(refuse(format!(
            "the node at {shown} gave an unexpected answer to hello: {other:?}"
        ))),
        Ok(None) => Err(refuse(format!(
            "the node at {shown} closed the connection without answering (a node from an older build, without exec?)"
        ))),
        Err(e) => Err(refuse(format!("cannot talk to the node at {shown}: {e}"))),
    }
}

/// The shim: `$ROOTLESS_ROUTER_PRELOAD`, else beside the executable, else in
/// `../lib/rootless-router/` from it.
pub(crate) fn find_shim() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(ENV_PRELOAD).filter(|p| !p.is_empty()) {
        let p = absolute(Path::new(&p))?;
        if !p.is_file() {
            return Err(format!(
                "{ENV_PRELOAD} names {}, which is not a file",
                p.display()
            ));
        }
        return usable_in_ld_preload(p);
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the shim: where is this executable? {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates = [
        dir.join(PRELOAD_FILE),
        dir.parent()
            .unwrap_or(dir)
            .join("lib/rootless-router")
            .join(PRELOAD_FILE),
    ];
    match candidates.iter().find(|c| c.is_file()) {
        Some(found) => usable_in_ld_preload(found.clone()),
        None => Err(format!(
            "cannot find the exec shim {PRELOAD_FILE}; looked at {} and {}. Build it with `cargo build --release` (it lands beside the binary), or set {ENV_PRELOAD} to its path",
            candidates[0].display(),
            candidates[1].display()
        )),
    }
}

/// `LD_PRELOAD` splits on spaces and colons: a path with either cannot be carried.
fn usable_in_ld_preload(p: PathBuf) -> Result<PathBuf, String> {
    if p.as_os_str()
        .as_bytes()
        .iter()
        .any(|&b| b == b' ' || b == b':')
    {
        return Err(format!(
            "the shim's path {} contains a space or a colon, which LD_PRELOAD cannot carry: copy it elsewhere and set {ENV_PRELOAD}",
            p.display()
        ));
    }
    Ok(p)
}

/// The shim first, then the entries already in `LD_PRELOAD` (without the shim again).
fn ld_preload(shim: &Path, existing: Option<OsString>) -> OsString {
    let mut out = shim.as_os_str().to_owned();
    if let Some(existing) = existing {
        for entry in existing
            .as_bytes()
            .split(|&b| b == b' ' || b == b':')
            .filter(|e| !e.is_empty() && *e != shim.as_os_str().as_bytes())
        {
            out.push(":");
            out.push(OsStr::from_bytes(entry));
        }
    }
    out
}

/// `PROGRAM` as a path: taken as is when it has a `/`, else looked up in `PATH`.
fn resolve_program(program: &OsStr) -> Result<PathBuf, Refusal> {
    let shown = Path::new(program).display();
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        return match std::fs::metadata(&p) {
            Ok(_) => Ok(p),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Refusal {
                code: EXIT_NOT_FOUND,
                message: format!("{shown}: no such file"),
            }),
            Err(e) => Err(Refusal {
                code: EXIT_CANNOT_EXECUTE,
                message: format!("{shown}: {e}"),
            }),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut not_executable = None;
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => return Ok(candidate),
            Ok(m) if m.is_file() => {
                not_executable.get_or_insert(candidate);
            }
            _ => {}
        }
    }
    Err(match not_executable {
        Some(p) => Refusal {
            code: EXIT_CANNOT_EXECUTE,
            message: format!("{}: permission denied (not executable)", p.display()),
        },
        None => Refusal {
            code: EXIT_NOT_FOUND,
            message: format!("{shown}: command not found in PATH"),
        },
    })
}

/// Why the loader would run `path` in secure mode (AT_SECURE, ignoring LD_PRELOAD), if
/// it would: setuid, setgid, or file capabilities.
fn privileged(path: &Path) -> Option<&'static str> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    if mode & 0o4000 != 0 {
        Some("is setuid")
    } else if mode & 0o2000 != 0 {
        Some("is setgid")
    } else if has_file_capabilities(path) {
        Some("has file capabilities")
    } else {
        None
    }
}

/// True when the file carries a `security.capability` extended attribute.
fn has_file_capabilities(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated and live across the call; a NULL buffer
    // of size 0 asks only for the attribute's size and writes nothing.
    let n = unsafe {
        libc::getxattr(
            c_path.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    n > 0
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether the dynamic loader understands `--argv0` (glibc 2.33 and later list it in
/// their `--help`).
fn loader_takes_argv0(interp: &Path) -> bool {
    Command::new(interp)
        .arg("--help")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.stdout.windows(7).any(|w| w == b"--argv0"))
}

/// What exec needs to know of an executable, from its ELF headers.
#[derive(Debug, Default, PartialEq, Eq)]
struct ElfInfo {
    /// It is an ELF file at all (a script is not).
    is_elf: bool,
    /// `PT_INTERP`: the dynamic loader; `None` for a static executable.
    interp: Option<PathBuf>,
    /// A Go build ID note (`PT_NOTE` with owner "Go", type 4): Go makes its own system
    /// calls whether or not it links libc.
    go: bool,
}

/// ELF program header types (System V ABI, "Program Header").
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
/// The Go linker's build ID note type (`cmd/link`: ELF_NOTE_GOBUILDID_TAG).
const NT_GO_BUILDID: u32 = 4;
/// Bounds for what is read from a file that may be anything.
const MAX_INTERP: u64 = 4096;
const MAX_NOTE: u64 = 1 << 20;

impl ElfInfo {
    /// Reads the ELF header and program headers (32- or 64-bit, either byte order).
    /// `None` when the file cannot be read; `is_elf: false` when it is not ELF.
    fn read(path: &Path) -> Option<ElfInfo> {
        let f = File::open(path).ok()?;
        let mut ident = [0u8; 64];
        let n = f.read_at(&mut ident, 0).ok()?;
        let head = ident.get(..n)?;
        if head.len() < 52 || head[..4] != *b"\x7fELF" {
            return Some(ElfInfo::default());
        }
        let wide = match head[4] {
            1 => false,
            2 => true,
            _ => return Some(ElfInfo::default()),
        };
        let big = match head[5] {
            1 => false,
            2 => true,
            _ => return Some(ElfInfo::default()),
        };
        let r = Fields { big };
        let (phoff, phentsize, phnum) = if wide {
            (r.u64(head, 0x20)?, r.u16(head, 0x36)?, r.u16(head, 0x38)?)
        } else {
            (
                u64::from(r.u32(head, 0x1c)?),
                r.u16(head, 0x2a)?,
                r.u16(head, 0x2c)?,
            )
        };
        let mut info = ElfInfo {
            is_elf: true,
            ..ElfInfo::default()
        };
        let min_entsize = if wide { 56 } else { 32 };
        if usize::from(phentsize) < min_entsize {
            return Some(info);
        }
        let table_len = usize::from(phentsize) * usize::from(phnum);
        let mut table = vec![0u8; table_len];
        f.read_exact_at(&mut table, phoff).ok()?;
        for ph in table.chunks_exact(usize::from(phentsize)) {
            let p_type = r.u32(ph, 0)?;
            let (offset, size) = if wide {
                (r.u64(ph, 8)?, r.u64(ph, 32)?)
            } else {
                (u64::from(r.u32(ph, 4)?), u64::from(r.u32(ph, 16)?))
            };
            match p_type {
                PT_INTERP if size <= MAX_INTERP => {
                    let mut buf = vec![0u8; size as usize];
                    f.read_exact_at(&mut buf, offset).ok()?;
                    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                    buf.truncate(end);
                    if !buf.is_empty() {
                        info.interp = Some(PathBuf::from(OsString::from_vec(buf)));
                    }
                }
                PT_NOTE if size <= MAX_NOTE => {
                    let mut buf = vec![0u8; size as usize];
                    if f.read_exact_at(&mut buf, offset).is_ok() && r.has_go_note(&buf) {
                        info.go = true;
                    }
                }
                _ => {}
            }
        }
        Some(info)
    }
}

/// Integer fields of an ELF file in its byte order.
struct Fields {
    big: bool,
}

impl Fields {
    fn bytes<const N: usize>(&self, b: &[u8], at: usize) -> Option<[u8; N]> {
        let mut a: [u8; N] = b.get(at..at.checked_add(N)?)?.try_into().ok()?;
        if !self.big {
            a.reverse();
        }
        Some(a)
    }
    fn u16(&self, b: &[u8], at: usize) -> Option<u16> {
        self.bytes(b, at).map(u16::from_be_bytes)
    }
    fn u32(&self, b: &[u8], at: usize) -> Option<u32> {
        self.bytes(b, at).map(u32::from_be_bytes)
    }
    fn u64(&self, b: &[u8], at: usize) -> Option<u64> {
        self.bytes(b, at).map(u64::from_be_bytes)
    }

    /// Walks the notes of a `PT_NOTE` segment (namesz, descsz, type, name and desc each
    /// padded to 4 bytes) looking for the Go build ID.
    fn has_go_note(&self, mut notes: &[u8]) -> bool {
        let pad = |n: u32| (n as usize).div_ceil(4) * 4;
        while let (Some(namesz), Some(descsz), Some(ntype)) =
            (self.u32(notes, 0), self.u32(notes, 4), self.u32(notes, 8))
        {
            let name = notes.get(12..12 + namesz as usize);
            if ntype == NT_GO_BUILDID && name == Some(b"Go\0") {
                return true;
            }
            let next = 12 + pad(namesz) + pad(descsz);
            match notes.get(next..) {
                Some(rest) => notes = rest,
                None => return false,
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rr-exec-unit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn pt_interp_of_bin_true() {
        let info = ElfInfo::read(Path::new("/bin/true")).unwrap();
        assert!(info.is_elf && !info.go);
        let interp = info.interp.expect("/bin/true is dynamically linked");
        // The loader named in the binary exists and is itself ELF without PT_INTERP.
        assert!(
            interp.is_absolute() && interp.exists(),
            "{}",
            interp.display()
        );
        assert!(
            interp.to_string_lossy().contains("ld-"),
            "{}",
            interp.display()
        );
        let loader = ElfInfo::read(&interp).unwrap();
        assert!(loader.is_elf && loader.interp.is_none());
    }

    #[test]
    fn scripts_and_junk_are_not_elf() {
        let d = temp("elf");
        let script = d.join("script.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(ElfInfo::read(&script), Some(ElfInfo::default()));
        // An ELF header with a program header table pointing past the end.
        let mut junk = std::fs::read("/bin/true").unwrap();
        junk.truncate(64);
        let stub = d.join("stub");
        std::fs::write(&stub, &junk).unwrap();
        assert_eq!(ElfInfo::read(&stub), None);
        assert_eq!(ElfInfo::read(&d.join("missing")), None);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn go_build_id_note() {
        let r = Fields { big: false };
        let mut notes = Vec::new();
        // A GNU build ID note first, then Go's.
        for (name, ntype, desc) in [
            (&b"GNU\0"[..], 3u32, &[0xabu8; 20][..]),
            (&b"Go\0"[..], NT_GO_BUILDID, &b"abc/def"[..]),
        ] {
            notes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            notes.extend_from_slice(&ntype.to_le_bytes());
            notes.extend_from_slice(name);
            notes.resize(notes.len().div_ceil(4) * 4, 0);
            notes.extend_from_slice(desc);
            notes.resize(notes.len().div_ceil(4) * 4, 0);
        }
        assert!(r.has_go_note(&notes));
        let gnu_only = &notes[..12 + 4 + 20];
        assert!(!r.has_go_note(gnu_only));
        assert!(!r.has_go_note(&notes[..30]));
        assert!(!r.has_go_note(&[]));
    }

    #[test]
    fn static_pie_has_no_interpreter() {
        // Debian's ldconfig is static-pie: ET_DYN without PT_INTERP.
        let Some(ldconfig) = ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
        else {
            eprintln!("no ldconfig here: static detection checked by the CLI tests only");
            return;
        };
        let info = ElfInfo::read(ldconfig).unwrap();
        assert!(info.is_elf && info.interp.is_none() && !info.go, "{info:?}");
    }

    #[test]
    fn setuid_setgid_and_plain_files() {
        let d = temp("suid");
        let f = d.join("prog");
        std::fs::copy("/bin/true", &f).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(privileged(&f), None);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4755)).unwrap();
        assert_eq!(privileged(&f), Some("is setuid"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o2755)).unwrap();
        assert_eq!(privileged(&f), Some("is setgid"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        // File capabilities need CAP_SETFCAP to set: checked where setcap can.
        let set = Command::new("setcap")
            .args(["cap_net_raw+ep"])
            .arg(&f)
            .stderr(std::process::Stdio::null())
            .status();
        if set.is_ok_and(|s| s.success()) {
            assert_eq!(privileged(&f), Some("has file capabilities"));
        } else {
            eprintln!("setcap unavailable or not permitted: file capabilities not checked");
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn ld_preload_puts_the_shim_first_once() {
        let shim = Path::new("/opt/rr/librr_preload.so");
        assert_eq!(
            ld_preload(shim, None),
            OsString::from("/opt/rr/librr_preload.so")
        );
        assert_eq!(
            ld_preload(shim, Some("/a.so /opt/rr/librr_preload.so:/b.so".into())),
            OsString::from("/opt/rr/librr_preload.so:/a.so:/b.so")
        );
        assert!(usable_in_ld_preload(PathBuf::from("/x y/lib.so")).is_err());
        assert!(usable_in_ld_preload(PathBuf::from("/x:y/lib.so")).is_err());
    }

    #[test]
    fn programs_are_found_in_path() {
        let sh = resolve_program(OsStr::new("sh")).ok().unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"));
        let missing = resolve_program(OsStr::new("no-such-program-rr"))
            .err()
            .unwrap();
        assert_eq!(missing.code, EXIT_NOT_FOUND);
        let missing = resolve_program(OsStr::new("/no/such/program"))
            .err()
            .unwrap();
        assert_eq!(missing.code, EXIT_NOT_FOUND);
    }
}

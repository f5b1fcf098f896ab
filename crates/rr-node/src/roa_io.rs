//! The I/O of the `[roa]` sources: ROA files on the host's disk, checked for changes
//! every `check_interval` seconds, and RTR caches (RFC 8210, RFC 6810) over the host's
//! TCP, one `rr_rtr::Client` each.
//!
//! What it is: [`RoaFeed`], owned by the control thread beside the route table. Files
//! are looked at (`stat`: inode, size, modification time) and read only when that
//! changed and the file has settled (see [`crate::roa`]). Only regular files of at most
//! [`MAX_FILE`] bytes are read, opened with `O_NONBLOCK`, so that a FIFO, a device or a
//! runaway file put in a ROA file's place cannot block or swamp the control thread;
//! anything else is refused with its reason, and the file's previous ROAs stay. An RTR connection is made by a short-lived thread and read by one reader
//! thread per connection, which hand what they get to the control thread as
//! [`RtrMsg`]s (the way host BGP sessions do); the few bytes the client sends (queries)
//! are written from the control thread without blocking. A failed or closed connection
//! is retried after a back-off that starts at 1 s and doubles up to the client's Retry
//! Interval (RFC 8210 section 6; at once when `rr_rtr::CloseReason::reconnect_at_once`
//! says so: a version downgrade, section 7, or a session the cache refused).
//!
//! What it is not: the rules. What a file or an RTR event does to the ROA set, and when
//! a new set is handed to the route table, is [`crate::roa::RoaSources`]'s (sans-IO).

use crate::roa::{close_reason, FileCheck, FileRead, FileStamp, FileStat, RoaSources};
use rr_config::RoaConfig;
use rr_roa::RoaSet;
use rr_rtr::{Client, Event};
use std::fs::{File, Metadata};
use std::io::{ErrorKind, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A new ROA set is handed to the route table at most this often.
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// First reconnect delay; doubles per failure up to the Retry Interval.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How soon to try again to write a query the socket did not take.
const WRITE_RETRY: Duration = Duration::from_millis(20);
/// Bad lines logged one by one per read of a file; the rest are counted.
const BAD_LINES_LOGGED: usize = 20;
/// The largest ROA file read (DN42's are about 200 KB).
pub(crate) const MAX_FILE: u64 = 64 << 20;

/// What an RTR connection's threads tell the control thread. `gen` tells the messages
/// of an old connection of the same server apart.
pub(crate) enum RtrMsg {
    Connected {
        server: usize,
        gen: u64,
        result: std::io::Result<TcpStream>,
    },
    Data {
        server: usize,
        gen: u64,
        bytes: Vec<u8>,
    },
    Closed {
        server: usize,
        gen: u64,
    },
}

/// Connection generations, unique in the process: a reload moves servers to other
/// indexes, and a message of an old connection must never pass for a new one's.
static NEXT_GEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_gen() -> u64 {
    NEXT_GEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Delivers an [`RtrMsg`] to the owner of the [`RoaFeed`]; false when it is gone.
pub(crate) type Notify = Arc<dyn Fn(RtrMsg) -> bool + Send + Sync>;

enum Link {
    /// Not connected; the next attempt at `at`.
    Idle { at: Instant },
    /// A connect thread is at work.
    Connecting,
    Up {
        stream: TcpStream,
        /// Bytes of queries the socket has not taken yet.
        out: Vec<u8>,
    },
}

struct Server {
    addr: SocketAddr,
    client: Client,
    gen: u64,
    link: Link,
    backoff: Duration,
}

/// Every `[roa]` source with its I/O. See the module docs.
pub(crate) struct RoaFeed {
    sources: RoaSources,
    check_every: Duration,
    next_check: Instant,
    servers: Vec<Server>,
    notify: Notify,
}

/// What `m` says of a ROA file, or why it is not read: not a regular file (a FIFO
/// would block the reader), or larger than [`MAX_FILE`].
fn stat_of(m: &Metadata) -> Result<FileStat, String> {
    let t = m.file_type();
    let kind = if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else {
        Some("of an unknown type")
    };
    if let Some(kind) = kind {
        return Err(format!("not a regular file ({kind}): refused"));
    }
    if m.size() > MAX_FILE {
        return Err(format!(
            "{} bytes, larger than the {} MiB allowed: refused",
            m.size(),
            MAX_FILE >> 20
        ));
    }
    Ok(FileStat {
        stamp: FileStamp {
            inode: m.ino(),
            len: m.size(),
            modified_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        },
        age: m
            .modified()
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok()),
    })
}

/// A look at the file at `path` (following symbolic links), without opening it.
fn look(path: &Path) -> Result<FileStat, String> {
    stat_of(&std::fs::metadata(path).map_err(|e| e.to_string())?)
}

/// Opens the file at `path` without blocking (whatever it became since [`look`]) and
/// looks at what was opened.
fn open(path: &Path) -> Result<(File, FileStat), String> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let stat = stat_of(&file.metadata().map_err(|e| e.to_string())?)?;
    Ok((file, stat))
}

/// The text of an opened file, at most [`MAX_FILE`] bytes of it (it may grow while
/// read).
fn read_text(file: File) -> Result<String, String> {
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!(
            "grew past the {} MiB allowed while read: refused",
            MAX_FILE >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

impl RoaFeed {
    /// The sources of `cfg`; the files are read now, the RTR servers are connected to
    /// at the first [`RoaFeed::drive`].
    pub fn new(cfg: &RoaConfig, notify: Notify, now: Instant) -> RoaFeed {
        let mut feed = RoaFeed {
            sources: RoaSources::new(
                cfg.files.clone(),
                cfg.rtr.iter().map(|r| r.text.clone()).collect(),
                PUBLISH_EVERY,
            ),
            check_every: Duration::from_secs(u64::from(cfg.check_interval.max(1))),
            next_check: now,
            servers: cfg
                .rtr
                .iter()
                .map(|r| Server {
                    addr: r.addr,
                    client: Client::new(),
                    gen: 0,
                    link: Link::Idle { at: now },
                    backoff: FIRST_BACKOFF,
                })
                .collect(),
            notify,
        };
        feed.check_files(now);
        feed
    }

    /// The earliest time [`RoaFeed::drive`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let servers = self.servers.iter().flat_map(|s| {
            let link = match &s.link {
                Link::Idle { at } => Some(*at),
                Link::Up { out, .. } if !out.is_empty() => Some(Instant::now() + WRITE_RETRY),
                _ => None,
            };
            link.into_iter().chain(s.client.poll_timeout())
        });
        servers
            .chain(self.sources.poll_timeout())
            .chain([self.next_check])
            .min()
    }

    /// Files due for a check, connection attempts due, the clients' timers.
    pub fn drive(&mut self, now: Instant) {
        if now >= self.next_check {
            self.check_files(now);
        }
        for i in 0..self.servers.len() {
            let s = &mut self.servers[i];
            if matches!(s.link, Link::Idle { at } if at <= now) {
                self.connect(i);
            }
            let s = &mut self.servers[i];
            if s.client.poll_timeout().is_some_and(|t| t <= now) {
                s.client.handle_timeout(now);
            }
            self.pump(i, now);
        }
    }

    /// The union of the sources when it changed (see [`RoaSources::poll_publish`]).
    pub fn poll_publish(&mut self, now: Instant) -> Option<RoaSet> {
        self.sources.poll_publish(now)
    }

    pub fn sources(&self) -> &RoaSources {
        &self.sources
    }

    /// A message from an RTR connection's threads.
    pub fn rtr_msg(&mut self, now: Instant, msg: RtrMsg) {
        match msg {
            RtrMsg::Connected {
                server,
                gen,
                result,
            } => {
                if !self.current(server, gen) {
                    return;
                }
                match result.and_then(|stream| self.start_reader(server, gen, stream)) {
                    Ok(stream) => {
                        tracing::info!(server = %self.sources.rtr_name(server), "RTR connected");
                        self.servers[server].link = Link::Up {
                            stream,
                            out: Vec::new(),
                        };
                        self.servers[server].client.connection_opened(now);
                        self.sources.rtr_connected(server);
                    }
                    Err(e) => self.lost(server, now, Some(e.to_string()), false),
                }
            }
            RtrMsg::Data { server, gen, bytes } => {
                if self.current(server, gen) {
                    self.servers[server].client.handle_bytes(now, &bytes);
                }
            }
            RtrMsg::Closed { server, gen } => {
                if self.current(server, gen) {
                    let why = "connection closed by the cache".to_string();
                    self.lost(server, now, Some(why), false);
                }
            }
        }
        for i in 0..self.servers.len() {
            self.pump(i, now);
        }
    }

    /// Applies a reloaded `[roa]`: files and RTR servers already here keep what they
    /// hold (an RTR server keeps its connection when it keeps its place in the list,
    /// else it reconnects at once and goes on from its serial); new ones start, removed
    /// ones are closed; new files are read now.
    pub fn reconfigure(&mut self, cfg: &RoaConfig, now: Instant) {
        let from = self.sources.reconfigure(
            cfg.files.clone(),
            cfg.rtr.iter().map(|r| r.text.clone()).collect(),
            now,
        );
        let mut old: Vec<Option<Server>> = std::mem::take(&mut self.servers)
            .into_iter()
            .map(Some)
            .collect();
        for (j, (r, from)) in cfg.rtr.iter().zip(from).enumerate() {
            let kept = from
                .and_then(|i| old.get_mut(i))
                .and_then(|o| o.take_if(|o| o.addr == r.addr));
            let server = match (kept, from) {
                (Some(s), Some(i)) if i == j => s,
                (Some(mut s), _) => {
                    // Its connection's threads know it by its old index: closed, and
                    // made again at once under the new one.
                    if let Link::Up { stream, .. } = &s.link {
                        let _ = stream.shutdown(Shutdown::Both);
                        s.client.connection_closed(now);
                    }
                    s.gen = next_gen();
                    s.link = Link::Idle { at: now };
                    self.sources.rtr_down(j, None);
                    s
                }
                (None, from) => {
                    if from.is_some() {
                        // Same name, another address: another cache, whose data starts
                        // from nothing.
                        self.sources.rtr_reset(j, now);
                    }
                    Server {
                        addr: r.addr,
                        client: Client::new(),
                        gen: next_gen(),
                        link: Link::Idle { at: now },
                        backoff: FIRST_BACKOFF,
                    }
                }
            };
            self.servers.push(server);
        }
        for s in old.iter_mut().flatten() {
            if let Link::Up { stream, .. } = &s.link {
                let _ = stream.shutdown(Shutdown::Both);
            }
            tracing::info!(server = %s.addr, "RTR server removed from [roa]");
        }
        self.check_every = Duration::from_secs(u64::from(cfg.check_interval.max(1)));
        self.check_files(now);
    }

    /// Closes the RTR connections (the process is ending).
    pub fn shutdown(&mut self) {
        for s in &mut self.servers {
            if let Link::Up { stream, .. } = &s.link {
                let _ = stream.shutdown(Shutdown::Both);
            }
            // No further attempt; messages of the connections so far are stale.
            s.gen = next_gen();
            s.link = Link::Connecting;
        }
    }

    fn current(&self, server: usize, gen: u64) -> bool {
        self.servers
            .get(server)
            .is_some_and(|s| s.gen == gen && !matches!(s.link, Link::Idle { .. }))
    }

    /// Whether file `i`, looked at as `stat`, is to be read now; logs a failure, and
    /// brings the next check forward when the file is settling.
    fn want_read(&mut self, i: usize, now: Instant, stat: Result<FileStat, String>) -> bool {
        match self.sources.file_stat(i, now, stat) {
            FileCheck::Read => true,
            FileCheck::Unchanged => false,
            FileCheck::Wait { until } => {
                self.next_check = self.next_check.min(until);
                false
            }
            FileCheck::Failed { error, first } => {
                if first {
                    let file = self.sources.file_paths().nth(i).map(Path::display);
                    if let Some(file) = file {
                        tracing::warn!(%file, %error, "ROA file not read; its ROAs read before are kept");
                    }
                }
                false
            }
        }
    }

    fn check_files(&mut self, now: Instant) {
        self.next_check = now + self.check_every;
        let paths: Vec<_> = self.sources.file_paths().map(Path::to_path_buf).collect();
        for (i, path) in paths.iter().enumerate() {
            let file = path.display();
            let looked = look(path);
            let seen = looked.as_ref().ok().map(|s| s.stamp);
            if !self.want_read(i, now, looked) {
                continue;
            }
            let (opened, stat) = match open(path) {
                Ok((f, stat)) => (f, stat),
                Err(e) => {
                    self.want_read(i, now, Err(e));
                    continue;
                }
            };
            // Replaced or written to since the look: that version must settle too.
            if Some(stat.stamp) != seen && !self.want_read(i, now, Ok(stat)) {
                continue;
            }
            // The stamp is taken before reading: a write during the read changes it
            // again, and a later check reads the file again.
            let text = match read_text(opened) {
                Ok(t) => t,
                Err(e) => {
                    self.want_read(i, now, Err(e));
                    continue;
                }
            };
            match self.sources.file_read(i, now, stat.stamp, &text) {
                FileRead::Loaded {
                    roas,
                    changed,
                    errors,
                } => {
                    for e in errors.iter().take(BAD_LINES_LOGGED) {
                        tracing::warn!("{file}:{}: {}", e.line, e.error);
                    }
                    if errors.len() > BAD_LINES_LOGGED {
                        tracing::warn!(
                            "{file}: {} more bad lines",
                            errors.len() - BAD_LINES_LOGGED
                        );
                    }
                    if changed {
                        tracing::info!(%file, roas, bad_lines = errors.len(), "ROA file read");
                    } else {
                        tracing::debug!(%file, roas, "ROA file read, unchanged");
                    }
                }
                FileRead::Kept { error, first } => {
                    if first {
                        tracing::warn!(%file, %error, "ROA file not taken; its ROAs read before are kept");
                    }
                }
            }
        }
    }

    /// Starts a connection attempt to server `i` on a thread of its own.
    fn connect(&mut self, i: usize) {
        let s = &mut self.servers[i];
        s.gen = next_gen();
        s.link = Link::Connecting;
        let (addr, gen, notify) = (s.addr, s.gen, self.notify.clone());
        self.sources.rtr_connecting(i);
        let spawned = std::thread::Builder::new()
            .name("rtr-connect".into())
            .spawn(move || {
                let result = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT);
                notify(RtrMsg::Connected {
                    server: i,
                    gen,
                    result,
                });
            });
        if let Err(e) = spawned {
            self.lost(i, Instant::now(), Some(e.to_string()), false);
        }
    }

    /// The reader thread of a new connection; gives back the stream to write on.
    fn start_reader(
        &self,
        server: usize,
        gen: u64,
        stream: TcpStream,
    ) -> std::io::Result<TcpStream> {
        let _ = stream.set_nodelay(true);
        let mut reader = stream.try_clone()?;
        let notify = self.notify.clone();
        std::thread::Builder::new()
            .name("rtr-rx".into())
            .spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let bytes = buf[..n].to_vec();
                            if !notify(RtrMsg::Data { server, gen, bytes }) {
                                return;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                notify(RtrMsg::Closed { server, gen });
            })?;
        Ok(stream)
    }

    /// Server `i`'s connection is gone (or never came): the client is told, the data
    /// kept (until it expires), the next attempt scheduled.
    fn lost(&mut self, i: usize, now: Instant, error: Option<String>, at_once: bool) {
        let s = &mut self.servers[i];
        if let Link::Up { stream, .. } = &s.link {
            let _ = stream.shutdown(Shutdown::Both);
            s.client.connection_closed(now);
        }
        let wait = if at_once {
            Duration::ZERO
        } else {
            let w = s.backoff.min(s.client.retry_interval());
            s.backoff = (s.backoff * 2).min(s.client.retry_interval());
            w
        };
        s.link = Link::Idle { at: now + wait };
        if let Some(e) = &error {
            tracing::warn!(server = %self.sources.rtr_name(i), error = %e, retry_in = ?wait, "RTR connection lost");
        }
        self.sources.rtr_down(i, error);
    }

    /// Writes what server `i`'s client has to send and applies what it reports.
    fn pump(&mut self, i: usize, now: Instant) {
        loop {
            let s = &mut self.servers[i];
            while let Some(bytes) = s.client.poll_transmit() {
                if let Link::Up { out, .. } = &mut s.link {
                    out.extend_from_slice(&bytes);
                }
            }
            if let Link::Up { stream, out } = &mut s.link {
                if let Err(e) = flush(stream, out) {
                    self.lost(i, now, Some(format!("cannot send: {e}")), false);
                    return;
                }
            }
            let Some(event) = self.servers[i].client.poll_event() else {
                return;
            };
            let s = &mut self.servers[i];
            let (session, version) = (s.client.session(), s.client.version().number());
            let changed = self.sources.rtr_event(i, now, &event, session, version);
            let name = self.sources.rtr_name(i).to_string();
            match event {
                Event::Update {
                    announced,
                    withdrawn,
                    serial,
                } => {
                    self.servers[i].backoff = FIRST_BACKOFF;
                    tracing::debug!(server = %name, serial, announced = announced.len(), withdrawn = withdrawn.len(), changed, "RTR update");
                }
                Event::Reset => {
                    tracing::warn!(server = %name, "RTR data dropped (expired, or a new cache session)");
                }
                Event::Close(reason) => {
                    let why = close_reason(&reason);
                    tracing::warn!(server = %name, reason = %why, "RTR connection closed");
                    // At once after a downgrade or a refused session (a restarted cache:
                    // the Reset Query that follows gets its new table; see rr_rtr).
                    self.lost(i, now, None, reason.reconnect_at_once());
                }
            }
        }
    }
}

/// Writes as much of `out` as the socket takes now.
fn flush(stream: &TcpStream, out: &mut Vec<u8>) -> std::io::Result<()> {
    while !out.is_empty() {
        match crate::sys::send(stream.as_raw_fd(), out) {
            Ok(n) => {
                out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Files that are not to be read (a FIFO, a huge file), then against a real cache:
    //! Debian's `stayrtr` serving a JSON file on loopback (skipped, with a message,
    //! where it is not installed).

    use super::*;
    use crate::roa::SETTLE;
    use rr_config::RtrConfig;
    use rr_roa::Roa;
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;

    /// Longest wait for anything the cache should do (it re-reads its file every second).
    const PATIENCE: Duration = Duration::from_secs(30);

    struct Cache {
        child: Child,
    }

    impl Drop for Cache {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn stayrtr(port: u16, json: &Path, log: &Path) -> Option<Cache> {
        let child = Command::new("stayrtr")
            .args(["-bind", &format!("127.0.0.1:{port}"), "-cache"])
            .arg(json)
            .args(["-checktime=false", "-refresh", "1", "-metrics.addr", ""])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).ok()?)
            .spawn()
            .ok()?;
        Some(Cache { child })
    }

    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    fn json(roas: &[(&str, u8, u32)]) -> String {
        let entries: Vec<String> = roas
            .iter()
            .map(|(p, m, a)| format!(r#"{{"prefix":"{p}","maxLength":{m},"asn":"AS{a}"}}"#))
            .collect();
        format!(r#"{{"roas":[{}]}}"#, entries.join(","))
    }

    /// Writes `text` to `path` as a publisher should: a new file renamed over the old.
    fn publish(path: &Path, text: &str) {
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn set_of(roas: &[(&str, u8, u32)]) -> RoaSet {
        RoaSet::from_roas(
            roas.iter()
                .map(|(p, m, a)| Roa::new(p.parse().unwrap(), *m, *a).unwrap()),
        )
    }

    /// The control thread of this test: runs the feed until the published set is
    /// `want` and the status passes `check`, or gives up after [`PATIENCE`].
    struct Loop {
        feed: RoaFeed,
        rx: mpsc::Receiver<RtrMsg>,
        set: RoaSet,
    }

    impl Loop {
        fn until(
            &mut self,
            what: &str,
            want: &RoaSet,
            check: impl Fn(&rr_ctl::RoaSourceStatus) -> bool,
        ) {
            let give_up = Instant::now() + PATIENCE;
            loop {
                let now = Instant::now();
                self.feed.drive(now);
                if let Some(set) = self.feed.poll_publish(now) {
                    self.set = set;
                }
                let (sources, _, _) = self.feed.sources().status(now);
                if &self.set == want && sources.iter().all(&check) {
                    return;
                }
                assert!(
                    now < give_up,
                    "{what}: gave up; set {:?}, sources {sources:?}",
                    self.set.iter().map(|r| r.to_string()).collect::<Vec<_>>()
                );
                let wait = self
                    .feed
                    .poll_timeout()
                    .map_or(Duration::from_millis(100), |t| {
                        t.saturating_duration_since(now)
                    })
                    .min(Duration::from_millis(100));
                if let Ok(m) = self.rx.recv_timeout(wait) {
                    self.feed.rtr_msg(Instant::now(), m);
                }
            }
        }
    }

    fn quiet() -> Notify {
        Arc::new(|_| true)
    }

    /// A FIFO or an oversized file put where a ROA file was is refused (without
    /// blocking: nobody writes to the FIFO), and the file's ROAs read before stay. Then
    /// a file written in place is looked at again once it has settled, well before the
    /// next check, and taken.
    #[test]
    fn refused_files_keep_the_roas_and_a_fresh_file_settles() {
        let dir = std::env::temp_dir().join(format!("rr-node-roa-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("roa_dn42.conf");
        publish(&file, "route 172.20.4.128/26 max 29 as 4242420049;\n");
        let cfg = RoaConfig {
            files: vec![file.clone()],
            rtr: Vec::new(),
            check_interval: 5,
            reject_invalid: true,
            reject_unknown: true,
        };
        let t0 = Instant::now();
        let mut feed = RoaFeed::new(&cfg, quiet(), t0);
        let want = set_of(&[("172.20.4.128/26", 29, 4242420049)]);
        assert_eq!(feed.poll_publish(t0), Some(want));

        std::fs::remove_file(&file).unwrap();
        let c = std::ffi::CString::new(file.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Opened without blocking, and refused: what a race between the look and the
        // open would meet.
        let err = open(&file).expect_err("a FIFO refused");
        assert!(err.contains("not a regular file (a FIFO)"), "{err}");
        let t1 = t0 + Duration::from_secs(5);
        feed.drive(t1);
        let st = &feed.sources().status(t1).0[0];
        assert_eq!((st.state.as_str(), st.v4), ("kept", 1));
        let err = st.last_error.as_deref().unwrap();
        assert!(err.contains("a FIFO"), "{err}");

        std::fs::remove_file(&file).unwrap();
        let huge = File::create(&file).unwrap();
        huge.set_len(MAX_FILE + 1).unwrap();
        let t2 = t1 + Duration::from_secs(5);
        feed.drive(t2);
        let st = &feed.sources().status(t2).0[0];
        assert_eq!((st.state.as_str(), st.v4), ("kept", 1));
        let err = st.last_error.as_deref().unwrap();
        assert!(err.contains("larger than the 64 MiB allowed"), "{err}");
        assert_eq!(feed.poll_publish(t2), None, "nothing changed");

        // Written in place (the huge file truncated and rewritten), with a
        // modification time in the future, so that only the virtual clock counts.
        let text = "route 172.20.0.0/24 max 28 as 4242420001;\n\
                    route 172.21.0.0/24 max 28 as 4242420002;\n";
        std::fs::write(&file, text).unwrap();
        let later = SystemTime::now() + Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(later))
            .unwrap();
        let t3 = t2 + Duration::from_secs(5);
        feed.drive(t3);
        assert_eq!(feed.sources().status(t3).0[0].v4, 1, "not read yet");
        assert_eq!(feed.poll_timeout(), Some(t3 + SETTLE), "not 5 s later");
        // Its stamp held for SETTLE: read.
        feed.drive(t3 + SETTLE);
        let want = set_of(&[
            ("172.20.0.0/24", 28, 4242420001),
            ("172.21.0.0/24", 28, 4242420002),
        ]);
        assert_eq!(feed.poll_publish(t3 + SETTLE), Some(want));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stayrtr_serves_the_router_and_changes_reach_it() {
        if Command::new("stayrtr").arg("-version").output().is_err() {
            eprintln!("SKIPPED: stayrtr is not installed (apt-get install stayrtr)");
            return;
        }
        let dir = std::env::temp_dir().join(format!("rr-node-stayrtr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("roas.json");
        let first = [
            ("172.20.4.128/26", 29, 4242420049),
            ("172.22.0.0/24", 28, 4242420001),
            ("fd42:4242:2601::/48", 64, 4242420049),
        ];
        publish(&file, &json(&first));
        let port = free_port();
        let Some(cache) = stayrtr(port, &file, &dir.join("stayrtr.log")) else {
            eprintln!("SKIPPED: stayrtr could not be started");
            return;
        };
        let (tx, rx) = mpsc::channel();
        let notify: Notify = Arc::new(move |m| tx.send(m).is_ok());
        let cfg = RoaConfig {
            files: Vec::new(),
            rtr: vec![RtrConfig {
                text: format!("127.0.0.1:{port}"),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            }],
            check_interval: 1,
            reject_invalid: true,
            reject_unknown: true,
        };
        let mut l = Loop {
            feed: RoaFeed::new(&cfg, notify, Instant::now()),
            rx,
            set: RoaSet::new(),
        };
        // The cache may take a moment to listen: connection refusals are retried.
        l.until("first sync", &set_of(&first), |s| s.state == "synced");
        let (sources, total, _) = l.feed.sources().status(Instant::now());
        assert_eq!(total, (2, 1));
        let st = &sources[0];
        assert_eq!((st.kind.as_str(), st.v4, st.v6), ("rtr", 2, 1));
        assert_eq!(st.version, Some(1), "RFC 8210");
        let (session, serial) = (st.session_id, st.serial.unwrap());

        // The file changes: one ROA withdrawn, one announced; StayRTR re-reads it,
        // sends a Serial Notify, and the increment reaches the set.
        let second = [
            ("172.20.4.128/26", 29, 4242420049),
            ("fd42:4242:2601::/48", 64, 4242420049),
            ("10.127.0.0/16", 24, 4242420002),
        ];
        publish(&file, &json(&second));
        l.until("the change", &set_of(&second), |s| {
            s.serial.is_some_and(|n| n != serial)
        });
        let st = &l.feed.sources().status(Instant::now()).0[0];
        assert_eq!(st.session_id, session, "an increment, not a new session");
        let serial = st.serial;

        // A reload puts a server that is not there before it: the real one moves to
        // index 1, reconnects at once and goes on from its serial (same session); its
        // ROAs are in the set all along.
        let dead = free_port();
        let mut moved = cfg.clone();
        moved.rtr.insert(
            0,
            RtrConfig {
                text: format!("127.0.0.1:{dead}"),
                addr: SocketAddr::from(([127, 0, 0, 1], dead)),
            },
        );
        let now = Instant::now();
        l.feed.reconfigure(&moved, now);
        if let Some(set) = l.feed.poll_publish(now) {
            assert_eq!(set, set_of(&second), "the moved server's ROAs dropped");
        }
        let real = format!("127.0.0.1:{port}");
        l.until("the moved server synced again", &set_of(&second), |s| {
            s.name != real || (s.state == "synced" && s.session_id == session && s.serial == serial)
        });
        let names: Vec<String> = l
            .feed
            .sources()
            .status(Instant::now())
            .0
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, [format!("127.0.0.1:{dead}"), real]);
        // Back to the one server: it moves back to index 0 the same way.
        l.feed.reconfigure(&cfg, Instant::now());
        l.until("back at index 0", &set_of(&second), |s| {
            s.state == "synced" && s.session_id == session
        });

        // The cache goes away: its data stays (until it expires, hours away).
        drop(cache);
        l.until("the cache down", &set_of(&second), |s| s.state != "synced");

        // It comes back (a new session) with other data: the feed reconnects, and the
        // new table replaces the old one (StayRTR refuses the old session's Serial
        // Query with a fatal Error Report; the client forgets the session, the feed
        // reconnects at once, and the Reset Query's table is diffed against the old).
        let third = [
            ("172.20.4.128/26", 29, 4242420049),
            ("10.127.0.0/16", 24, 4242420003),
        ];
        publish(&file, &json(&third));
        let _cache = stayrtr(port, &file, &dir.join("stayrtr2.log")).unwrap();
        l.until("reconnected", &set_of(&third), |s| {
            s.state == "synced" && s.session_id != session
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The ROA sources of `[roa]`, merged into the one set route origin validation uses
//! (RFC 6811), sans-IO.
//!
//! What it is: [`RoaSources`], the state of every `[roa] files` entry and every
//! `[roa] rtr` server. It is fed what the OS layer saw — a file's stamp (inode, size,
//! modification time) and text, an RTR client's events and connection changes — with
//! the time, and hands out the union of all sources as a new [`RoaSet`] when it changed
//! ([`RoaSources::poll_publish`]), at most once per `min_interval`, so that a burst of
//! changes (several files rewritten, an RTR update right after a file) costs the route
//! table one re-evaluation.
//!
//! Rules it keeps:
//! - A file is read again only when its stamp changes, and then only once it has
//!   settled: modified at least [`SETTLE`] ago by the wall clock, or seen with the same
//!   stamp for [`SETTLE`] (a modification time in the future). Until then it is looked
//!   at again when it will be ([`FileCheck::Wait`]), not a whole check interval later.
//!   A publisher writing in place (the DN42 wiki's cron: `curl -o roa_dn42.conf …`) is
//!   thus not read halfway through its download. A file never read yet is read at once:
//!   there is nothing to protect yet, and its ROAs should be in place before routes
//!   arrive.
//! - A file that cannot be read, is not well-formed JSON, or comes back blank (or with
//!   nothing but bad lines) after having held ROAs keeps its previous ROAs: a
//!   half-written file never wipes them. Likewise a BIRD file read before whose last
//!   statement is bad and which does not end with a newline: it was cut (a download
//!   that stalled for longer than [`SETTLE`]), and its good lines are only part of the
//!   set. Such a failure is reported once, until the file is fine again
//!   ([`FileRead::Kept`]`{ first }`).
//! - An RTR server's ROAs follow its client's [`Event`]s: `Update` applies the change,
//!   `Reset` (data expired, or a new cache session) drops them. A closed connection
//!   keeps them: the client tells when they expire.
//!
//! What it is not: I/O. It reads no file, opens no socket and reads no clock
//! (`crate::roa_io` does, and feeds it); nor validation itself (the route table's).

use rr_ctl::RoaSourceStatus;
use rr_roa::parse::LineError;
use rr_roa::{Roa, RoaSet};
use rr_rtr::{CloseReason, Event, Vrp};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What identifies one version of a file: a rewrite in place changes the size or the
/// modification time, a rename over it the inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub inode: u64,
    pub len: u64,
    /// Modification time, nanoseconds since the epoch.
    pub modified_ns: i128,
}

/// How long a changed file must have been left alone before it is read.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

/// One look at a file (`stat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub stamp: FileStamp,
    /// How long ago it was modified, by the wall clock at the look; `None` when its
    /// modification time is in the future.
    pub age: Option<Duration>,
}

/// What to do after a file's stamp was taken ([`RoaSources::file_stat`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileCheck {
    /// Unchanged since it was last read: nothing to do.
    Unchanged,
    /// New or changed and settled: read it and hand the text to
    /// [`RoaSources::file_read`].
    Read,
    /// Changed, but maybe still being written: look at it again at `until`.
    Wait { until: Instant },
    /// It cannot be looked at; its previous ROAs stay. `first`: the first failure since
    /// it was last fine (log it).
    Failed { error: String, first: bool },
}

/// What became of a file's text ([`RoaSources::file_read`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileRead {
    /// Taken: the file's ROAs are now `roas` (`changed`: they differ from before), and
    /// `errors` are its bad lines.
    Loaded {
        roas: usize,
        changed: bool,
        errors: Vec<LineError>,
    },
    /// Not taken, the previous ROAs stay. `first` as in [`FileCheck::Failed`].
    Kept { error: String, first: bool },
}

struct FileSource {
    path: PathBuf,
    /// The stamp of what was last read (`None`: read it at the next check).
    stamp: Option<FileStamp>,
    /// A changed stamp waiting to settle, and when it was first seen.
    settling: Option<(FileStamp, Instant)>,
    /// Sorted, without duplicates.
    roas: Vec<Roa>,
    /// Read successfully at least once.
    loaded: bool,
    /// The current failure; `None` while the file is fine.
    error: Option<String>,
    bad_lines: usize,
    updated_at: Option<Instant>,
}

impl FileSource {
    /// Records a failure; true if it is the first since the file was fine.
    fn fail(&mut self, error: String) -> bool {
        let first = self.error.is_none();
        self.error = Some(error);
        first
    }
}

/// Where the connection to an RTR server is (set by the OS layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RtrState {
    Connecting,
    /// Connected, no End of Data yet on this connection.
    Syncing,
    Synced,
    Down,
}

struct RtrSource {
    name: String,
    state: RtrState,
    vrps: HashSet<Roa>,
    /// Session ID and serial of the data held.
    session: Option<(u16, u32)>,
    version: Option<u8>,
    updated_at: Option<Instant>,
    last_error: Option<String>,
}

/// Every `[roa]` source and the union they make. See the module docs.
pub(crate) struct RoaSources {
    files: Vec<FileSource>,
    rtr: Vec<RtrSource>,
    /// Least time between two published sets.
    min_interval: Duration,
    /// Since when a source has changed that the last [`RoaSources::poll_publish`] did
    /// not give out.
    dirty: Option<Instant>,
    last_publish: Option<Instant>,
    /// IPv4 and IPv6 ROAs in the last published set.
    in_use: (usize, usize),
}

/// `(IPv4, IPv6)` counts.
fn by_family<'a>(roas: impl Iterator<Item = &'a Roa>) -> (u64, u64) {
    roas.fold((0, 0), |(v4, v6), r| match r.prefix() {
        ipnet::IpNet::V4(_) => (v4 + 1, v6),
        ipnet::IpNet::V6(_) => (v4, v6 + 1),
    })
}

fn roa_of(v: &Vrp) -> Option<Roa> {
    Roa::new(v.prefix, v.max_len, v.asn).ok()
}

/// The line of a BIRD file's last statement when that statement is bad and the text
/// does not end with a newline: the file was cut there (a download caught halfway).
fn cut_off(text: &str, parsed: &rr_roa::parse::Parsed) -> Option<usize> {
    use rr_roa::parse::Format;
    if !matches!(parsed.format, Format::Bird1 | Format::Bird2) || text.ends_with('\n') {
        return None;
    }
    // 1-based, as the parser counts: lines start after each '\n'.
    let last = text
        .split('\n')
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, _)| n + 1)
        .last()?;
    parsed
        .errors
        .last()
        .filter(|e| e.line == last)
        .map(|_| last)
}

/// How `show roa` and the logs word an RTR close.
pub(crate) fn close_reason(r: &CloseReason) -> String {
    match r {
        CloseReason::ProtocolError { code, reason } => {
            format!("protocol error ({code:?}): {reason}")
        }
        CloseReason::CacheError { code, text } => format!("cache error ({code:?}): {text}"),
        CloseReason::SessionRefused { code, text } => {
            format!("cache error ({code:?}): {text}; starting over with a Reset Query")
        }
        CloseReason::Downgrade => "the cache speaks only RTR version 0 (RFC 6810)".into(),
        CloseReason::Timeout => "the cache did not answer within the retry interval".into(),
    }
}

impl RoaSources {
    /// Sources for these files and RTR servers (named as written), none read yet.
    pub fn new(files: Vec<PathBuf>, rtr: Vec<String>, min_interval: Duration) -> RoaSources {
        RoaSources {
            files: files
                .into_iter()
                .map(|path| FileSource {
                    path,
                    stamp: None,
                    settling: None,
                    roas: Vec::new(),
                    loaded: false,
                    error: None,
                    bad_lines: 0,
                    updated_at: None,
                })
                .collect(),
            rtr: rtr
                .into_iter()
                .map(|name| RtrSource {
                    name,
                    state: RtrState::Down,
                    vrps: HashSet::new(),
                    session: None,
                    version: None,
                    updated_at: None,
                    last_error: None,
                })
                .collect(),
            min_interval,
            dirty: None,
            last_publish: None,
            in_use: (0, 0),
        }
    }

    /// The sources of a reloaded `[roa]`: a file or RTR server already here (same path,
    /// same name) keeps what it holds, new ones start empty, others are dropped; the
    /// union is published again at the next [`RoaSources::poll_publish`] when a source
    /// came or went. Returns, per new RTR server, its index before.
    pub fn reconfigure(
        &mut self,
        files: Vec<PathBuf>,
        rtr: Vec<String>,
        now: Instant,
    ) -> Vec<Option<usize>> {
        let fresh = RoaSources::new(files, rtr, self.min_interval);
        let mut old_files: Vec<Option<FileSource>> = std::mem::take(&mut self.files)
            .into_iter()
            .map(Some)
            .collect();
        let mut old_rtr: Vec<Option<RtrSource>> = std::mem::take(&mut self.rtr)
            .into_iter()
            .map(Some)
            .collect();
        let mut changed = false;
        for f in fresh.files {
            let kept = old_files
                .iter_mut()
                .find(|o| o.as_ref().is_some_and(|o| o.path == f.path))
                .and_then(Option::take);
            changed |= kept.is_none();
            self.files.push(kept.unwrap_or(f));
        }
        let mut from = Vec::new();
        for r in fresh.rtr {
            let i = old_rtr
                .iter()
                .position(|o| o.as_ref().is_some_and(|o| o.name == r.name));
            from.push(i);
            changed |= i.is_none();
            self.rtr
                .push(i.and_then(|i| old_rtr[i].take()).unwrap_or(r));
        }
        changed |= old_files.iter().any(Option::is_some) || old_rtr.iter().any(Option::is_some);
        self.changed(now, changed);
        from
    }

    /// RTR server `i` is another cache now (its name resolves elsewhere): what it held
    /// is dropped, and the union published again.
    pub fn rtr_reset(&mut self, i: usize, now: Instant) {
        if let Some(r) = self.rtr.get_mut(i) {
            let had = !r.vrps.is_empty();
            r.vrps.clear();
            r.session = None;
            r.version = None;
            r.state = RtrState::Down;
            self.changed(now, had);
        }
    }

    pub fn file_paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    pub fn rtr_name(&self, i: usize) -> &str {
        self.rtr.get(i).map_or("?", |r| r.name.as_str())
    }

    /// A look at file `i` at `now`, or why it could not be looked at.
    pub fn file_stat(
        &mut self,
        i: usize,
        now: Instant,
        stat: Result<FileStat, String>,
    ) -> FileCheck {
        let Some(f) = self.files.get_mut(i) else {
            return FileCheck::Unchanged;
        };
        match stat {
            Ok(FileStat { stamp, .. }) if f.stamp == Some(stamp) => {
                f.settling = None;
                FileCheck::Unchanged
            }
            Ok(_) if !f.loaded => FileCheck::Read,
            Ok(FileStat { stamp, age }) => {
                let since = match f.settling {
                    Some((s, since)) if s == stamp => since,
                    _ => {
                        f.settling = Some((stamp, now));
                        now
                    }
                };
                let stable = since + SETTLE;
                let due = age.map_or(stable, |age| stable.min(now + SETTLE.saturating_sub(age)));
                if due <= now {
                    FileCheck::Read
                } else {
                    FileCheck::Wait { until: due }
                }
            }
            Err(error) => {
                // Read it again once it is back, whatever its stamp then.
                f.stamp = None;
                f.settling = None;
                if f.error.as_ref() == Some(&error) {
                    return FileCheck::Unchanged;
                }
                let first = f.fail(error.clone());
                FileCheck::Failed { error, first }
            }
        }
    }

    /// File `i`'s text as read with stamp `stamp` (taken before reading). A file that
    /// could not be read goes to [`RoaSources::file_stat`] as an error.
    pub fn file_read(&mut self, i: usize, now: Instant, stamp: FileStamp, text: &str) -> FileRead {
        let Some(f) = self.files.get_mut(i) else {
            return FileRead::Kept {
                error: "no such source".into(),
                first: false,
            };
        };
        f.stamp = Some(stamp);
        f.settling = None;
        let blank = text.trim().is_empty();
        let (parsed, cut) = match rr_roa::parse::parse_str(text) {
            Ok(p) => {
                let cut = cut_off(text, &p);
                (p, cut)
            }
            Err(e) => {
                let error = e.to_string();
                let first = f.fail(error.clone());
                return FileRead::Kept { error, first };
            }
        };
        if let Some(line) = cut.filter(|_| f.loaded) {
            let error = format!(
                "line {line}, the last, is bad and the file does not end with a newline: \
                 cut off (being written?)"
            );
            let first = f.fail(error.clone());
            return FileRead::Kept { error, first };
        }
        if parsed.roas.is_empty() && !f.roas.is_empty() && (blank || !parsed.errors.is_empty()) {
            let error = if blank {
                "the file is empty (being written?)".to_string()
            } else {
                format!(
                    "no ROA in the file, {} bad lines (being written?)",
                    parsed.errors.len()
                )
            };
            let first = f.fail(error.clone());
            return FileRead::Kept { error, first };
        }
        let mut roas = parsed.roas;
        roas.sort_unstable();
        roas.dedup();
        let changed = roas != f.roas;
        f.roas = roas;
        f.loaded = true;
        f.error = None;
        f.bad_lines = parsed.errors.len();
        f.updated_at = Some(now);
        self.changed(now, changed);
        FileRead::Loaded {
            roas: self.files[i].roas.len(),
            changed,
            errors: parsed.errors,
        }
    }

    /// A connection attempt to server `i` started.
    pub fn rtr_connecting(&mut self, i: usize) {
        if let Some(r) = self.rtr.get_mut(i) {
            r.state = RtrState::Connecting;
        }
    }

    /// Server `i`'s connection is up.
    pub fn rtr_connected(&mut self, i: usize) {
        if let Some(r) = self.rtr.get_mut(i) {
            r.state = RtrState::Syncing;
        }
    }

    /// Server `i`'s connection failed or ended (`error` says why, when known). Its ROAs
    /// stay until its client reports [`Event::Reset`].
    pub fn rtr_down(&mut self, i: usize, error: Option<String>) {
        if let Some(r) = self.rtr.get_mut(i) {
            r.state = RtrState::Down;
            if error.is_some() {
                r.last_error = error;
            }
        }
    }

    /// An event of server `i`'s client; `session` and `version` are the client's
    /// afterwards. True if the server's ROAs changed.
    pub fn rtr_event(
        &mut self,
        i: usize,
        now: Instant,
        event: &Event,
        session: Option<(u16, u32)>,
        version: u8,
    ) -> bool {
        let Some(r) = self.rtr.get_mut(i) else {
            return false;
        };
        let changed = match event {
            Event::Update {
                announced,
                withdrawn,
                ..
            } => {
                let mut changed = false;
                for v in withdrawn.iter().filter_map(roa_of) {
                    changed |= r.vrps.remove(&v);
                }
                for v in announced.iter().filter_map(roa_of) {
                    changed |= r.vrps.insert(v);
                }
                r.state = RtrState::Synced;
                r.updated_at = Some(now);
                r.session = session;
                r.version = Some(version);
                changed
            }
            Event::Reset => {
                r.session = None;
                let changed = !r.vrps.is_empty();
                r.vrps.clear();
                changed
            }
            Event::Close(reason) => {
                r.last_error = Some(close_reason(reason));
                false
            }
        };
        self.changed(now, changed);
        changed
    }

    fn changed(&mut self, now: Instant, changed: bool) {
        if changed && self.dirty.is_none() {
            self.dirty = Some(now);
        }
    }

    /// The union of every source when it changed since the last call and the last
    /// publication is at least `min_interval` ago; else `None`.
    pub fn poll_publish(&mut self, now: Instant) -> Option<RoaSet> {
        match self.poll_timeout() {
            Some(due) if due <= now => {}
            _ => return None,
        }
        self.dirty = None;
        self.last_publish = Some(now);
        let files = self.files.iter().flat_map(|f| f.roas.iter());
        let rtr = self.rtr.iter().flat_map(|r| r.vrps.iter());
        let set = RoaSet::from_roas(files.chain(rtr).copied());
        let (v4, v6) = by_family(set.iter());
        self.in_use = (v4 as usize, v6 as usize);
        Some(set)
    }

    /// When [`RoaSources::poll_publish`] will have a set to give, if a change waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let since = self.dirty?;
        Some(match self.last_publish {
            Some(t) => since.max(t + self.min_interval),
            None => since,
        })
    }

    /// `show roa`: every source, then the set in use per family and whether a change
    /// waits to be applied.
    pub fn status(&self, now: Instant) -> (Vec<RoaSourceStatus>, (u64, u64), bool) {
        let ago = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t).as_secs());
        let files = self.files.iter().map(|f| {
            let (v4, v6) = by_family(f.roas.iter());
            RoaSourceStatus {
                kind: "file".into(),
                name: f.path.display().to_string(),
                state: match (f.loaded, &f.error) {
                    (true, None) => "loaded",
                    (true, Some(_)) => "kept",
                    (false, _) => "failed",
                }
                .into(),
                v4,
                v6,
                updated_secs: ago(f.updated_at),
                bad_lines: f.bad_lines as u64,
                last_error: f.error.clone(),
                ..RoaSourceStatus::default()
            }
        });
        let rtr = self.rtr.iter().map(|r| {
            let (v4, v6) = by_family(r.vrps.iter());
            RoaSourceStatus {
                kind: "rtr".into(),
                name: r.name.clone(),
                state: match r.state {
                    RtrState::Connecting => "connecting",
                    RtrState::Syncing => "syncing",
                    RtrState::Synced => "synced",
                    RtrState::Down => "down",
                }
                .into(),
                v4,
                v6,
                serial: r.session.map(|(_, s)| s),
                session_id: r.session.map(|(id, _)| id),
                version: r.version,
                updated_secs: ago(r.updated_at),
                last_error: r.last_error.clone(),
                ..RoaSourceStatus::default()
            }
        });
        let total = (self.in_use.0 as u64, self.in_use.1 as u64);
        (files.chain(rtr).collect(), total, self.dirty.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rr_rtr::pdu::{Pdu, Timing, Version};

    const BIRD: &str = "route 172.20.4.128/26 max 29 as 4242420049;\n\
                        route fd42:4242:2601::/48 max 64 as 4242420049;\n";
    const JSON: &str = r#"{"roas":[
        {"prefix":"172.20.4.128/26","maxLength":29,"asn":"AS4242420049"},
        {"prefix":"172.22.0.0/24","maxLength":28,"asn":"AS4242420001"}]}"#;
    const DEBOUNCE: Duration = Duration::from_millis(500);

    fn stamp(n: u64) -> FileStamp {
        FileStamp {
            inode: 7,
            len: n,
            modified_ns: i128::from(n) * 1_000_000,
        }
    }

    fn roa(p: &str, max: u8, asn: u32) -> Roa {
        Roa::new(p.parse().unwrap(), max, asn).unwrap()
    }

    fn vrp(p: &str, max: u8, asn: u32) -> Vrp {
        Vrp::new(p.parse().unwrap(), max, asn).unwrap()
    }

    fn two_files() -> RoaSources {
        RoaSources::new(
            vec!["a.conf".into(), "b.json".into()],
            vec!["127.0.0.1:8282".into()],
            DEBOUNCE,
        )
    }

    /// A look at a file modified `age` ago.
    fn seen(stamp: FileStamp, age: Duration) -> Result<FileStat, String> {
        Ok(FileStat {
            stamp,
            age: Some(age),
        })
    }

    /// A look at a file modified long ago.
    fn old(stamp: FileStamp) -> Result<FileStat, String> {
        seen(stamp, Duration::from_secs(60))
    }

    /// Stat then read, as the OS layer does.
    fn feed(s: &mut RoaSources, i: usize, now: Instant, st: FileStamp, text: &str) -> FileRead {
        assert_eq!(s.file_stat(i, now, old(st)), FileCheck::Read);
        s.file_read(i, now, st, text)
    }

    fn loaded(r: FileRead) -> (usize, bool) {
        match r {
            FileRead::Loaded { roas, changed, .. } => (roas, changed),
            other => panic!("not loaded: {other:?}"),
        }
    }

    #[test]
    fn reconfigure_keeps_what_stays_and_publishes_the_new_union() {
        let t0 = Instant::now();
        let mut s = two_files();
        feed(&mut s, 0, t0, stamp(1), BIRD);
        feed(&mut s, 1, t0, stamp(1), JSON);
        let session = Some((7, 1));
        s.rtr_connected(0);
        let announced = vec![vrp("172.23.0.0/24", 24, 4242420077)];
        let update = Event::Update {
            announced,
            withdrawn: Vec::new(),
            serial: 1,
        };
        assert!(s.rtr_event(0, t0, &update, session, 1));
        assert_eq!(s.poll_publish(t0).expect("first set").len(), 4);

        // b.json dropped, c.conf added, the RTR server kept and a second one added
        // before it.
        let t1 = t0 + DEBOUNCE * 4;
        let from = s.reconfigure(
            vec!["c.conf".into(), "a.conf".into()],
            vec!["127.0.0.1:9999".into(), "127.0.0.1:8282".into()],
            t1,
        );
        assert_eq!(from, [None, Some(0)]);
        let paths: Vec<_> = s.file_paths().map(|p| p.display().to_string()).collect();
        assert_eq!(paths, ["c.conf", "a.conf"]);
        // a.conf is not read again (same stamp); c.conf is new.
        assert_eq!(s.file_stat(1, t1, old(stamp(1))), FileCheck::Unchanged);
        assert_eq!(s.file_stat(0, t1, old(stamp(1))), FileCheck::Read);
        let set = s.poll_publish(t1).expect("the union changed");
        // a.conf's two and the kept server's one; b.json's 172.22.0.0/24 gone.
        assert_eq!(set.len(), 3);
        assert!(set.contains(&roa("172.23.0.0/24", 24, 4242420077)));
        assert!(!set.contains(&roa("172.22.0.0/24", 28, 4242420001)));
        assert_eq!(s.rtr_name(1), "127.0.0.1:8282");

        // Same name, another cache (the name resolves elsewhere): its ROAs dropped.
        s.rtr_reset(1, t1);
        let set = s.poll_publish(t1 + DEBOUNCE).expect("the union changed");
        assert_eq!(set.len(), 2);
        assert!(!set.contains(&roa("172.23.0.0/24", 24, 4242420077)));

        // The same sources again: nothing to publish.
        let t2 = t1 + DEBOUNCE * 4;
        let from = s.reconfigure(
            vec!["c.conf".into(), "a.conf".into()],
            vec!["127.0.0.1:9999".into(), "127.0.0.1:8282".into()],
            t2,
        );
        assert_eq!(from, [Some(0), Some(1)]);
        assert!(s.poll_publish(t2).is_none());
    }

    #[test]
    fn files_make_one_deduplicated_union() {
        let t0 = Instant::now();
        let mut s = two_files();
        assert_eq!(loaded(feed(&mut s, 0, t0, stamp(1), BIRD)), (2, true));
        assert_eq!(loaded(feed(&mut s, 1, t0, stamp(1), JSON)), (2, true));
        let set = s.poll_publish(t0).expect("a first set at once");
        // 172.20.4.128/26 is in both files.
        assert_eq!(set.len(), 3);
        assert!(set.contains(&roa("172.22.0.0/24", 28, 4242420001)));
        assert!(set.contains(&roa("fd42:4242:2601::/48", 64, 4242420049)));
        assert!(s.poll_publish(t0 + DEBOUNCE * 10).is_none(), "nothing new");
        let (sources, total, pending) = s.status(t0);
        assert_eq!((total, pending), ((2, 1), false));
        assert_eq!(
            (sources[0].state.as_str(), sources[0].v4, sources[0].v6),
            ("loaded", 1, 1)
        );
        assert_eq!(
            (
                sources[1].kind.as_str(),
                sources[1].name.as_str(),
                sources[1].v4
            ),
            ("file", "b.json", 2)
        );
        assert_eq!(
            (sources[2].kind.as_str(), sources[2].state.as_str()),
            ("rtr", "down")
        );
    }

    #[test]
    fn a_file_is_read_again_only_when_its_stamp_changes() {
        let t0 = Instant::now();
        let mut s = two_files();
        feed(&mut s, 0, t0, stamp(1), BIRD);
        assert!(s.poll_publish(t0).is_some());
        assert_eq!(s.file_stat(0, t0, old(stamp(1))), FileCheck::Unchanged);
        // Touched, same content: read, but nothing to publish.
        assert_eq!(loaded(feed(&mut s, 0, t0, stamp(2), BIRD)), (2, false));
        assert_eq!(s.poll_timeout(), None);
        // A rename over it: another inode.
        let renamed = FileStamp {
            inode: 8,
            ..stamp(2)
        };
        assert_eq!(s.file_stat(0, t0, old(renamed)), FileCheck::Read);
    }

    #[test]
    fn a_half_written_or_vanished_file_keeps_its_roas_and_says_so_once() {
        let t0 = Instant::now();
        let mut s = two_files();
        feed(&mut s, 0, t0, stamp(1), BIRD);
        let first = s.poll_publish(t0).unwrap();
        // Truncated to nothing while being rewritten.
        assert_eq!(
            feed(&mut s, 0, t0, stamp(2), "\n  \n"),
            FileRead::Kept {
                error: "the file is empty (being written?)".into(),
                first: true
            }
        );
        // Still empty at the next check: not reported again.
        assert!(matches!(
            feed(&mut s, 0, t0, stamp(3), ""),
            FileRead::Kept { first: false, .. }
        ));
        // Half a JSON document: not well-formed.
        let half = &JSON[..JSON.len() / 2];
        assert!(matches!(
            feed(&mut s, 1, t0, stamp(1), half),
            FileRead::Kept { first: true, .. }
        ));
        // Only garbage where ROAs were.
        assert!(matches!(
            feed(&mut s, 0, t0, stamp(4), "route 172.20.4.128/26 max"),
            FileRead::Kept { .. }
        ));
        // Gone (renamed away) for a moment: the same error is reported once.
        let gone = Err("No such file or directory".to_string());
        assert!(matches!(
            s.file_stat(0, t0, gone.clone()),
            FileCheck::Failed { first: false, .. }
        ));
        assert_eq!(s.file_stat(0, t0, gone), FileCheck::Unchanged);
        assert_eq!(s.poll_timeout(), None, "nothing changed");
        let (sources, total, _) = s.status(t0);
        assert_eq!((sources[0].state.as_str(), sources[0].v4), ("kept", 1));
        assert!(sources[0].last_error.is_some());
        assert_eq!(sources[1].state.as_str(), "failed");
        assert_eq!(total, (1, 1));
        // Written out in full: taken, fine again, and back with the same stamp as
        // before it vanished (its stamp was forgotten).
        assert_eq!(loaded(feed(&mut s, 0, t0, stamp(1), BIRD)), (2, false));
        assert_eq!(s.status(t0).0[0].state, "loaded");
        assert_eq!(s.status(t0).0[0].last_error, None);
        // A later failure is a first one again.
        assert!(matches!(
            feed(&mut s, 0, t0, stamp(5), ""),
            FileRead::Kept { first: true, .. }
        ));
        assert_eq!(s.poll_publish(t0 + DEBOUNCE), None);
        assert_eq!(first.len(), 2);
    }

    /// The wiki's cron downloads over the file in place: a changed file is read only
    /// once it was left alone for [`SETTLE`], and looked at again then, not a check
    /// interval later.
    #[test]
    fn a_file_being_written_in_place_is_read_once_it_settles() {
        let t0 = Instant::now();
        let mut s = two_files();
        feed(&mut s, 0, t0, stamp(1), BIRD);
        s.poll_publish(t0).unwrap();
        // Modified 300 ms ago: looked at again when it is 1 s old.
        let t1 = t0 + Duration::from_secs(5);
        let ms = Duration::from_millis;
        assert_eq!(
            s.file_stat(0, t1, seen(stamp(2), ms(300))),
            FileCheck::Wait {
                until: t1 + ms(700)
            }
        );
        // Still growing then: its new modification time counts.
        let t2 = t1 + ms(700);
        assert_eq!(
            s.file_stat(0, t2, seen(stamp(3), ms(100))),
            FileCheck::Wait {
                until: t2 + ms(900)
            }
        );
        let t3 = t2 + ms(900);
        assert_eq!(s.file_stat(0, t3, seen(stamp(3), SETTLE)), FileCheck::Read);
        assert_eq!(loaded(s.file_read(0, t3, stamp(3), BIRD)), (2, false));
        // Renamed over it from a file written long ago (tmp + mv): read at once.
        let renamed = FileStamp {
            inode: 9,
            ..stamp(1)
        };
        assert_eq!(s.file_stat(0, t3, old(renamed)), FileCheck::Read);
    }

    /// A modification time in the future (clock skew) never gets old: the file is read
    /// once its stamp was seen unchanged for [`SETTLE`].
    #[test]
    fn a_file_from_the_future_is_read_once_its_stamp_holds() {
        let t0 = Instant::now();
        let mut s = two_files();
        feed(&mut s, 0, t0, stamp(1), BIRD);
        let future = Ok(FileStat {
            stamp: stamp(2),
            age: None,
        });
        let until = t0 + SETTLE;
        assert_eq!(
            s.file_stat(0, t0, future.clone()),
            FileCheck::Wait { until }
        );
        assert_eq!(
            s.file_stat(0, until - Duration::from_millis(1), future.clone()),
            FileCheck::Wait { until }
        );
        assert_eq!(s.file_stat(0, until, future), FileCheck::Read);
    }

    /// Nothing to protect yet: a new file is read at once, however fresh, so that its
    /// ROAs are in place before routes arrive.
    #[test]
    fn a_file_never_read_is_read_at_once() {
        let t0 = Instant::now();
        let mut s = two_files();
        let fresh = seen(stamp(1), Duration::ZERO);
        assert_eq!(s.file_stat(0, t0, fresh.clone()), FileCheck::Read);
        // The half JSON document is not taken: still nothing loaded, still at once.
        let half = &JSON[..JSON.len() / 2];
        assert!(matches!(
            s.file_read(1, t0, stamp(1), half),
            FileRead::Kept { .. }
        ));
        assert_eq!(
            s.file_stat(1, t0, seen(stamp(2), Duration::ZERO)),
            FileCheck::Read
        );
    }

    /// A download cut mid-line: N good lines and a bad last one without a newline. The
    /// previous set stays; once the file is whole, it is taken.
    #[test]
    fn a_bird_file_cut_mid_line_keeps_the_previous_set() {
        let t0 = Instant::now();
        let mut s = two_files();
        let whole = "# DN42 ROAs\n\
                     route 172.20.0.0/24 max 28 as 4242420001;\n\
                     route 172.21.0.0/24 max 28 as 4242420002;\n\
                     route 172.22.0.0/24 max 28 as 4242420003;\n";
        feed(&mut s, 0, t0, stamp(1), whole);
        assert_eq!(s.poll_publish(t0).unwrap().len(), 3);
        // Cut inside the last statement's AS number, and before its `max`.
        for (n, at) in [(2, whole.len() - 4), (3, whole.len() - 25)] {
            let cut = &whole[..at];
            assert!(!cut.ends_with('\n'));
            let FileRead::Kept { error, .. } = feed(&mut s, 0, t0, stamp(n), cut) else {
                panic!("a cut file was taken: {cut:?}")
            };
            assert!(error.contains("line 4"), "{error}");
            assert!(error.contains("cut off"), "{error}");
        }
        assert_eq!(s.poll_timeout(), None, "the set stays");
        assert_eq!(s.status(t0).0[0].state, "kept");
        // The same bad last line with its newline: a typo, not a cut; taken.
        let typo = format!(
            "{}route 172.23.0.0/24 max 28 as AS1;\n",
            &whole[..whole.len() - 42]
        );
        let FileRead::Loaded { roas, errors, .. } = feed(&mut s, 0, t0, stamp(4), &typo) else {
            panic!("not loaded")
        };
        assert_eq!((roas, errors.len(), errors[0].line), (2, 1, 4));
        // Whole again.
        assert_eq!(loaded(feed(&mut s, 0, t0, stamp(5), whole)), (3, true));
        assert_eq!(s.status(t0).0[0].state, "loaded");
        // A cut JSON document is not well-formed: kept by the rule before.
        assert!(matches!(
            feed(&mut s, 1, t0, stamp(1), JSON.trim_end()),
            FileRead::Loaded { .. }
        ));
        assert!(matches!(
            feed(&mut s, 1, t0, stamp(2), &JSON[..JSON.len() - 3]),
            FileRead::Kept { .. }
        ));
    }

    #[test]
    fn emptied_on_purpose_is_taken() {
        let t0 = Instant::now();
        let mut s = two_files();
        feed(&mut s, 0, t0, stamp(1), BIRD);
        s.poll_publish(t0).unwrap();
        // Only comments: the publisher withdrew every ROA.
        assert_eq!(
            loaded(feed(&mut s, 0, t0, stamp(2), "# nothing today\n")),
            (0, true)
        );
        assert!(s.poll_publish(t0 + DEBOUNCE).unwrap().is_empty());
    }

    #[test]
    fn bad_lines_are_returned_with_their_line_and_counted() {
        let t0 = Instant::now();
        let mut s = two_files();
        let text = "route 172.20.0.0/24 max 28 as 4242420001;\n\
                    route  max 112 as 64654;\n\
                    route 172.21.0.0/24 max 20 as 4242420002;\n\
                    route 172.22.0.0/24 max 24 as 4242420003;\n";
        let FileRead::Loaded { roas, errors, .. } = feed(&mut s, 0, t0, stamp(1), text) else {
            panic!("not loaded")
        };
        assert_eq!(roas, 2);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3]);
        assert_eq!(s.status(t0).0[0].bad_lines, 2);
    }

    #[test]
    fn the_real_dn42_files_load() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/dn42_roa/"
        );
        let t0 = Instant::now();
        let mut s = RoaSources::new(
            vec![
                format!("{dir}burble_bird2_20221109_roa_dn42.conf").into(),
                format!("{dir}netravnen_export_dn42.json").into(),
            ],
            Vec::new(),
            DEBOUNCE,
        );
        for i in 0..2 {
            let path = s.file_paths().nth(i).unwrap().to_path_buf();
            let text = std::fs::read_to_string(path).unwrap();
            let r = feed(&mut s, i, t0, stamp(1), &text);
            assert!(matches!(r, FileRead::Loaded { changed: true, .. }), "{r:?}");
        }
        let (sources, _, _) = s.status(t0);
        assert_eq!((sources[0].v4, sources[0].v6), (2088, 0));
        // One entry of the JSON has no prefix, two the ASN "AS": bad entries, the rest
        // (3309) is taken, 3308 distinct ROAs.
        assert_eq!(sources[1].bad_lines, 3);
        let json = sources[1].v4 + sources[1].v6;
        assert_eq!(json, 3308);
        // The two snapshots are nine months apart: they share most ROAs, not all.
        let set = s.poll_publish(t0).unwrap();
        assert!(set.len() > 3309 && set.len() < 3309 + 2088, "{}", set.len());
    }

    #[test]
    fn publications_are_coalesced_on_the_virtual_clock() {
        let t0 = Instant::now();
        let mut s = two_files();
        feed(&mut s, 0, t0, stamp(1), BIRD);
        assert!(s.poll_publish(t0).is_some());
        // A burst: the second file, then an RTR update, 100 and 200 ms later.
        let t1 = t0 + Duration::from_millis(100);
        feed(&mut s, 1, t1, stamp(1), JSON);
        assert_eq!(s.poll_timeout(), Some(t0 + DEBOUNCE));
        assert!(s.poll_publish(t1).is_none());
        let t2 = t0 + Duration::from_millis(200);
        let up = Event::Update {
            announced: vec![vrp("10.0.0.0/16", 24, 64512)],
            withdrawn: vec![],
            serial: 1,
        };
        assert!(s.rtr_event(0, t2, &up, Some((9, 1)), 1));
        assert!(s
            .poll_publish(t0 + DEBOUNCE - Duration::from_millis(1))
            .is_none());
        assert!(s.status(t2).2, "pending");
        let set = s
            .poll_publish(t0 + DEBOUNCE)
            .expect("one set for the burst");
        assert_eq!(set.len(), 4);
        assert_eq!(s.poll_timeout(), None);
        // A lone change long after is published at once.
        let t3 = t0 + Duration::from_secs(60);
        let down = Event::Update {
            announced: vec![],
            withdrawn: vec![vrp("10.0.0.0/16", 24, 64512)],
            serial: 2,
        };
        assert!(s.rtr_event(0, t3, &down, Some((9, 2)), 1));
        assert_eq!(s.poll_timeout(), Some(t3));
        assert_eq!(s.poll_publish(t3).unwrap().len(), 3);
    }

    #[test]
    fn rtr_updates_resets_and_closes() {
        let t0 = Instant::now();
        let mut s = two_files();
        s.rtr_connecting(0);
        assert_eq!(s.status(t0).0[2].state, "connecting");
        s.rtr_connected(0);
        assert_eq!(s.status(t0).0[2].state, "syncing");
        let full = Event::Update {
            announced: vec![
                vrp("172.20.0.0/24", 28, 4242420001),
                vrp("fd00:1::/48", 64, 4242420001),
            ],
            withdrawn: vec![],
            serial: 5,
        };
        assert!(s.rtr_event(0, t0, &full, Some((77, 5)), 1));
        let st = &s.status(t0).0[2];
        assert_eq!(
            (
                st.state.as_str(),
                st.v4,
                st.v6,
                st.serial,
                st.session_id,
                st.version
            ),
            ("synced", 1, 1, Some(5), Some(77), Some(1))
        );
        assert_eq!(s.poll_publish(t0).unwrap().len(), 2);
        // An empty End of Data: fresh, unchanged.
        let empty = Event::Update {
            announced: vec![],
            withdrawn: vec![],
            serial: 5,
        };
        assert!(!s.rtr_event(0, t0, &empty, Some((77, 5)), 1));
        // The cache goes away: the data stays.
        let close = Event::Close(CloseReason::Timeout);
        assert!(!s.rtr_event(0, t0, &close, Some((77, 5)), 1));
        s.rtr_down(0, None);
        let st = &s.status(t0).0[2];
        assert_eq!((st.state.as_str(), st.v4), ("down", 1));
        assert!(st.last_error.as_deref().unwrap().contains("did not answer"));
        // It expired: dropped, and the union follows.
        assert!(s.rtr_event(0, t0, &Event::Reset, None, 1));
        assert!(s.poll_publish(t0 + DEBOUNCE).unwrap().is_empty());
        let st = &s.status(t0).0[2];
        assert_eq!((st.v4, st.v6, st.serial), (0, 0, None));
    }

    /// The real client's expiry: data of a closed connection is kept until the
    /// expire interval of its last End of Data, then dropped.
    #[test]
    fn rtr_data_expires_through_the_client() {
        let t0 = Instant::now();
        let mut s = two_files();
        let mut c = rr_rtr::Client::new();
        c.connection_opened(t0);
        assert!(c.poll_transmit().is_some(), "a Reset Query");
        let mut bytes = Vec::new();
        let v = Version::V1;
        Pdu::CacheResponse { session_id: 3 }.encode(v, &mut bytes);
        Pdu::Prefix {
            announce: true,
            vrp: vrp("172.20.0.0/24", 28, 4242420001),
        }
        .encode(v, &mut bytes);
        let timing = Timing {
            refresh: 60,
            retry: 30,
            expire: 900,
        };
        Pdu::EndOfData {
            session_id: 3,
            serial: 1,
            timing: Some(timing),
        }
        .encode(v, &mut bytes);
        c.handle_bytes(t0, &bytes);
        let pump = |s: &mut RoaSources, c: &mut rr_rtr::Client, now| {
            while let Some(e) = c.poll_event() {
                s.rtr_event(0, now, &e, c.session(), c.version().number());
            }
        };
        pump(&mut s, &mut c, t0);
        assert_eq!(s.poll_publish(t0).unwrap().len(), 1);
        c.connection_closed(t0);
        s.rtr_down(0, Some("connection closed by the cache".into()));
        let before = t0 + Duration::from_secs(899);
        c.handle_timeout(before);
        pump(&mut s, &mut c, before);
        assert_eq!(s.poll_timeout(), None, "kept until it expires");
        let expired = c.poll_timeout().expect("the expiry");
        assert_eq!(expired, t0 + Duration::from_secs(900));
        c.handle_timeout(expired);
        pump(&mut s, &mut c, expired);
        assert!(s.poll_publish(expired).unwrap().is_empty());
        assert_eq!(
            s.status(expired).0[2].last_error.as_deref(),
            Some("connection closed by the cache")
        );
    }
}

//! The router side of an RTR session (RFC 8210 section 8, RFC 6810 section 6), sans-IO.
//!
//! What it is: [`Client`], the state of one router-to-cache relation across connections:
//! the committed VRP table, the cache's session ID and serial, the negotiated protocol
//! version and the three timers of RFC 8210 section 6.
//!
//! - On each new connection it sends a Serial Query when it holds data of a session, else
//!   a Reset Query (section 8.1).
//! - Payload PDUs after a Cache Response are collected; End of Data commits them at once
//!   and emits one [`Event::Update`] with the net change against the previous table (also
//!   after a Reset Query: the full table is diffed against what was held, so a consumer
//!   re-evaluates only what changed).
//! - Serial Notify triggers a Serial Query when idle (section 8.2); Cache Reset a Reset
//!   Query (section 8.3); Error Report "No Data Available" a new query after the Retry
//!   Interval (section 8.4).
//! - Version negotiation (section 7): the first query is version 1. A version 0 Error
//!   Report "Unsupported Protocol Version" downgrades to version 0 and asks the caller to
//!   reconnect at once; a version 0 answer to a Reset Query is accepted in version 0 (a
//!   version 0 answer to a Serial Query downgrades and reconnects, since the serial was
//!   of a version 1 session). The version sticks to the [`Client`] for later connections.
//! - Timers (section 6): Refresh after each End of Data (then a Serial Query); Retry as
//!   the deadline for a query to complete (else [`CloseReason::Timeout`]) and as the
//!   reconnect delay; Expire after the last End of Data, after which the table is dropped
//!   ([`Event::Reset`]). Version 1 takes the cache's values, version 0 the defaults
//!   3600/600/7200 ([`Timing::DEFAULT`]).
//! - Protocol errors found in the cache's PDUs queue an Error Report (section 5.11; never
//!   in answer to an Error Report) and request a close ([`Event::Close`]). A Session ID
//!   that differs from ours also flushes the table (section 5.1).
//! - A fatal Error Report from the cache (sections 5.11 and 12) while we hold a session
//!   forgets the session but keeps the table and its Expire timer
//!   ([`CloseReason::SessionRefused`]): the next connection sends a Reset Query, and its
//!   End of Data is diffed against the kept table as above. A cache that lost our session
//!   should answer our Serial Query with Cache Reset (sections 5.9 and 8.3); StayRTR
//!   0.5.1, after a restart, sends "Corrupt Data: Session ID mismatch" instead, and
//!   asking with the same Serial Query again would fail the same way forever.
//!
//! What it is not: a transport or a reconnect loop (the caller's, see the crate docs),
//! nor a cache (it never answers queries).

use crate::pdu::{frame, pdu_type, ErrorCode, Pdu, Timing, Version, MAX_PDU_LEN};
use crate::Vrp;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// What the client tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An End of Data committed these changes; the table is now at `serial`. Both lists
    /// are sorted and disjoint, and are relative to the table as last reported (empty
    /// after [`Event::Reset`]). Emitted for every End of Data, even an empty one: it also
    /// says the data is fresh.
    Update {
        announced: Vec<Vrp>,
        withdrawn: Vec<Vrp>,
        serial: u32,
    },
    /// The table was dropped: the data expired (RFC 8210 section 6) or the cache's
    /// Session ID changed under us (section 5.1). Every VRP reported so far is gone;
    /// the full table follows in the next [`Event::Update`] once a Reset Query completes.
    Reset,
    /// The caller should close the connection, after sending what
    /// [`Client::poll_transmit`] still holds (an Error Report, maybe). Bytes received
    /// until [`Client::connection_closed`] are ignored.
    Close(CloseReason),
}

/// Why the client asks for the connection to be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The cache broke the protocol; an Error Report with `code` is queued.
    ProtocolError { code: ErrorCode, reason: String },
    /// The cache sent a fatal Error Report while we held no session (in answer to a
    /// Reset Query, typically).
    CacheError { code: ErrorCode, text: String },
    /// The cache sent a fatal Error Report while we held a session, typically its answer
    /// to our Serial Query when it no longer knows the session (StayRTR 0.5.1 after a
    /// restart: Corrupt Data "Session ID mismatch", where RFC 8210 sections 5.9 and 8.3
    /// want a Cache Reset). The session is forgotten, the VRPs kept until they expire
    /// (section 6): the next connection sends a Reset Query (section 8.1) and its
    /// [`Event::Update`] is the difference to the kept table.
    SessionRefused { code: ErrorCode, text: String },
    /// The cache speaks only version 0: the next connection uses it (RFC 8210 section 7).
    Downgrade,
    /// A query did not complete within the Retry Interval, or the data expired while one
    /// was in flight.
    Timeout,
}

impl CloseReason {
    /// True when the caller should reconnect right away rather than after
    /// [`Client::retry_interval`]: after a [`CloseReason::Downgrade`] (RFC 8210 section
    /// 7: the next connection speaks version 0) and a [`CloseReason::SessionRefused`].
    ///
    /// The latter because the Retry Interval (section 6) paces the retry of a query that
    /// failed, while the next connection sends another one, the Reset Query that a Cache
    /// Reset would have asked for on the spot (sections 5.9 and 8.3); it is only on a new
    /// connection because a fatal Error Report ends this one (sections 5.11 and 12). It
    /// cannot loop: the session is gone, so a fatal answer to that Reset Query is a
    /// [`CloseReason::CacheError`], retried after the Retry Interval.
    pub fn reconnect_at_once(&self) -> bool {
        matches!(
            self,
            CloseReason::Downgrade | CloseReason::SessionRefused { .. }
        )
    }
}

/// Where a connection is.
#[derive(Debug)]
enum Conn {
    /// No connection, or one the client asked to close.
    Closed,
    /// Connected; `negotiated` once the cache answered a query in our version.
    Open { negotiated: bool, phase: Phase },
}

/// What an open connection waits for.
#[derive(Debug)]
enum Phase {
    /// Synchronized (or waiting out a No Data Available): query again at `next_query`.
    Idle { next_query: Instant },
    /// A query is out; the Cache Response has not come.
    Queried { reset: bool, deadline: Instant },
    /// Between Cache Response and End of Data: `delta` maps each VRP changed so far to
    /// true (announced) or false (withdrawn), relative to the table (to nothing after a
    /// Reset Query).
    Receiving {
        reset: bool,
        session_id: u16,
        delta: HashMap<Vrp, bool>,
        deadline: Instant,
    },
}

/// The router end of an RTR session with one cache. See the module docs.
#[derive(Debug)]
pub struct Client {
    version: Version,
    conn: Conn,
    rx: Vec<u8>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    table: HashSet<Vrp>,
    /// Session ID and serial of the committed table.
    session: Option<(u16, u32)>,
    timing: Timing,
    expire_at: Option<Instant>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl Client {
    /// A client with no data that will start at protocol version 1.
    pub fn new() -> Client {
        Client {
            version: Version::V1,
            conn: Conn::Closed,
            rx: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            table: HashSet::new(),
            session: None,
            timing: Timing::DEFAULT,
            expire_at: None,
        }
    }

    /// The protocol version the next query uses.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Session ID and serial of the data held, if any.
    pub fn session(&self) -> Option<(u16, u32)> {
        self.session
    }

    /// The committed VRPs (what all events so far add up to).
    pub fn vrps(&self) -> impl Iterator<Item = &Vrp> {
        self.table.iter()
    }

    /// The timing in force: the cache's (clamped) in version 1, else the defaults.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// How long to wait after a close or a failed connection attempt before connecting
    /// again (RFC 8210 section 6 Retry Interval), unless
    /// [`CloseReason::reconnect_at_once`].
    pub fn retry_interval(&self) -> Duration {
        secs(self.timing.retry)
    }

    /// The transport connected: sends the first query (RFC 8210 section 8.1).
    pub fn connection_opened(&mut self, now: Instant) {
        self.rx.clear();
        self.conn = Conn::Open {
            negotiated: false,
            phase: Phase::Idle { next_query: now },
        };
        self.send_query(now);
    }

    /// The transport closed (whoever closed it). Data is kept until it expires.
    pub fn connection_closed(&mut self, _now: Instant) {
        self.rx.clear();
        self.conn = Conn::Closed;
    }

    /// Bytes received from the cache, split anywhere.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if !matches!(self.conn, Conn::Open { .. }) {
            return;
        }
        self.rx.extend_from_slice(bytes);
        let rx = std::mem::take(&mut self.rx);
        let mut at = 0;
        while matches!(self.conn, Conn::Open { .. }) {
            let rest = &rx[at..];
            match frame(rest) {
                Ok(None) => break,
                Ok(Some(n)) => {
                    self.handle_pdu(now, &rest[..n]);
                    at += n;
                }
                Err(e) => {
                    let header = rest.get(..8).unwrap_or(rest);
                    self.fail(e.error_code(), e.to_string(), header);
                }
            }
        }
        if matches!(self.conn, Conn::Open { .. }) {
            self.rx = rx;
            self.rx.drain(..at);
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.expire_at.is_some_and(|t| t <= now) {
            self.flush();
            if let Conn::Open { phase, .. } = &self.conn {
                if !matches!(phase, Phase::Idle { .. }) {
                    self.close(CloseReason::Timeout);
                }
            }
        }
        let Conn::Open { phase, .. } = &self.conn else {
            return;
        };
        match phase {
            Phase::Idle { next_query } if *next_query <= now => self.send_query(now),
            Phase::Queried { deadline, .. } | Phase::Receiving { deadline, .. }
                if *deadline <= now =>
            {
                self.close(CloseReason::Timeout)
            }
            _ => {}
        }
    }

    /// The next instant [`Client::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conn = match &self.conn {
            Conn::Open { phase, .. } => Some(match phase {
                Phase::Idle { next_query } => *next_query,
                Phase::Queried { deadline, .. } | Phase::Receiving { deadline, .. } => *deadline,
            }),
            Conn::Closed => None,
        };
        match (conn, self.expire_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next PDU to send to the cache (one whole PDU per call).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Sends a Serial Query if we hold a session, else a Reset Query, and waits for the
    /// answer for one Retry Interval.
    fn send_query(&mut self, now: Instant) {
        let (pdu, reset) = match self.session {
            Some((session_id, serial)) => (Pdu::SerialQuery { session_id, serial }, false),
            None => (Pdu::ResetQuery, true),
        };
        self.send_pdu(&pdu);
        self.set_phase(Phase::Queried {
            reset,
            deadline: now + self.retry_interval(),
        });
    }

    fn send_pdu(&mut self, pdu: &Pdu) {
        let mut out = Vec::new();
        pdu.encode(self.version, &mut out);
        self.transmits.push_back(out);
    }

    fn set_phase(&mut self, new: Phase) {
        if let Conn::Open { phase, .. } = &mut self.conn {
            *phase = new;
        }
    }

    fn close(&mut self, reason: CloseReason) {
        self.conn = Conn::Closed;
        self.rx.clear();
        self.events.push_back(Event::Close(reason));
    }

    /// A protocol error of the cache: Error Report quoting `offending` (when it fits),
    /// then close (RFC 8210 section 5.11).
    fn fail(&mut self, code: ErrorCode, reason: String, offending: &[u8]) {
        let room = MAX_PDU_LEN.saturating_sub(16 + reason.len());
        let quoted = if offending.len() <= room {
            offending
        } else {
            offending.get(..8).unwrap_or(offending)
        };
        self.send_pdu(&Pdu::ErrorReport {
            code,
            pdu: quoted.to_vec(),
            text: reason.clone(),
        });
        // The same Serial Query would likely get the same bad answer again: the next
        // connection starts over with a Reset Query (RFC 8210 section 8.4 lets the router
        // reset at any time); the table and its expiry stay until that one completes.
        self.session = None;
        self.close(CloseReason::ProtocolError { code, reason });
    }

    /// Drops the table and the session (expiry, or a Session ID mismatch).
    fn flush(&mut self) {
        self.expire_at = None;
        self.session = None;
        self.table.clear();
        self.events.push_back(Event::Reset);
    }

    fn handle_pdu(&mut self, now: Instant, bytes: &[u8]) {
        let (version, pdu) = match Pdu::decode(bytes) {
            Ok(v) => v,
            // Never answer an Error Report with one (RFC 8210 section 5.11).
            Err(_) if bytes.get(1) == Some(&pdu_type::ERROR_REPORT) => {
                let code = bytes.get(2..4).map_or(ErrorCode::CorruptData, |c| {
                    ErrorCode::from_number(u16::from_be_bytes([c[0], c[1]]))
                });
                return self.fatal_report(code, String::from("(malformed Error Report)"));
            }
            Err(e) => return self.fail(e.error_code(), e.to_string(), bytes),
        };
        if let Pdu::ErrorReport { code, text, .. } = pdu {
            return self.handle_error_report(now, version, code, text);
        }
        let Conn::Open { negotiated, phase } = &mut self.conn else {
            return;
        };
        // RFC 8210 section 7: Serial Notify is ignored until the version is settled.
        if !*negotiated && matches!(pdu, Pdu::SerialNotify { .. }) {
            return;
        }
        if version != self.version {
            let reset_query = matches!(phase, Phase::Queried { reset: true, .. });
            if *negotiated || version > self.version {
                let reason = format!("protocol version {} PDU", version.number());
                return self.fail(ErrorCode::UnexpectedProtocolVersion, reason, bytes);
            }
            // A version 0 answer to our version 1 query (section 7: downgrade or close).
            self.version = version;
            self.session = None;
            if !reset_query {
                return self.close(CloseReason::Downgrade);
            }
        }
        if let Conn::Open { negotiated, .. } = &mut self.conn {
            *negotiated = true;
        }
        match pdu {
            Pdu::SerialNotify { .. } => {
                if let Conn::Open {
                    phase: Phase::Idle { .. },
                    ..
                } = self.conn
                {
                    self.send_query(now);
                }
            }
            Pdu::CacheResponse { session_id } => self.cache_response(session_id, bytes),
            Pdu::Prefix { announce, vrp } => self.payload(announce, vrp, bytes),
            Pdu::RouterKey { .. } => {
                if !self.receiving() {
                    self.unexpected(bytes);
                }
            }
            Pdu::EndOfData {
                session_id,
                serial,
                timing,
            } => self.end_of_data(now, session_id, serial, timing, bytes),
            Pdu::CacheReset => match self.conn {
                Conn::Open {
                    phase: Phase::Queried { reset: false, .. },
                    ..
                } => {
                    self.session = None;
                    self.send_query(now);
                }
                _ => self.unexpected(bytes),
            },
            Pdu::SerialQuery { .. } | Pdu::ResetQuery => {
                let reason = String::from("query PDU sent to a router");
                self.fail(ErrorCode::UnsupportedPduType, reason, bytes)
            }
            Pdu::ErrorReport { .. } => {}
        }
    }

    fn receiving(&self) -> bool {
        matches!(
            self.conn,
            Conn::Open {
                phase: Phase::Receiving { .. },
                ..
            }
        )
    }

    /// A PDU that is valid but not in this state of the exchange.
    fn unexpected(&mut self, bytes: &[u8]) {
        let ty = bytes.get(1).copied().unwrap_or_default();
        let reason = format!("unexpected PDU type {ty}");
        self.fail(ErrorCode::CorruptData, reason, bytes);
    }

    fn cache_response(&mut self, session_id: u16, bytes: &[u8]) {
        let Conn::Open {
            phase: Phase::Queried { reset, deadline },
            ..
        } = self.conn
        else {
            return self.unexpected(bytes);
        };
        if !reset && self.session.map(|(id, _)| id) != Some(session_id) {
            // RFC 8210 section 5.1: a changed Session ID invalidates everything held.
            self.flush();
            let reason = format!("Session ID changed to {session_id}");
            return self.fail(ErrorCode::CorruptData, reason, bytes);
        }
        self.set_phase(Phase::Receiving {
            reset,
            session_id,
            delta: HashMap::new(),
            deadline,
        });
    }

    /// One announcement or withdrawal (RFC 8210 sections 5.6, 5.7 and 11: duplicate
    /// announcements and withdrawals of unknown records are errors).
    fn payload(&mut self, announce: bool, vrp: Vrp, bytes: &[u8]) {
        let Conn::Open {
            phase: Phase::Receiving { reset, delta, .. },
            ..
        } = &mut self.conn
        else {
            return self.unexpected(bytes);
        };
        let held = delta
            .get(&vrp)
            .copied()
            .unwrap_or(!*reset && self.table.contains(&vrp));
        if held == announce {
            let (code, what) = if announce {
                (ErrorCode::DuplicateAnnouncement, "duplicate announcement")
            } else {
                (
                    ErrorCode::WithdrawalOfUnknownRecord,
                    "withdrawal of unknown",
                )
            };
            let reason = format!("{what} {} max {} as {}", vrp.prefix, vrp.max_len, vrp.asn);
            return self.fail(code, reason, bytes);
        }
        if delta.get(&vrp) == Some(&!announce) {
            delta.remove(&vrp);
        } else {
            delta.insert(vrp, announce);
        }
    }

    fn end_of_data(
        &mut self,
        now: Instant,
        eod_session: u16,
        serial: u32,
        timing: Option<Timing>,
        bytes: &[u8],
    ) {
        let Conn::Open {
            phase:
                Phase::Receiving {
                    reset,
                    session_id,
                    delta,
                    ..
                },
            ..
        } = &mut self.conn
        else {
            return self.unexpected(bytes);
        };
        if eod_session != *session_id {
            let reason = format!("End of Data for session {eod_session}, not {session_id}");
            return self.fail(ErrorCode::CorruptData, reason, bytes);
        }
        let (reset, session_id, delta) = (*reset, *session_id, std::mem::take(delta));
        let (mut announced, mut withdrawn);
        if reset {
            let new: HashSet<Vrp> = delta.into_keys().collect();
            announced = new.difference(&self.table).copied().collect::<Vec<_>>();
            withdrawn = self.table.difference(&new).copied().collect::<Vec<_>>();
            self.table = new;
        } else {
            (announced, withdrawn) = (Vec::new(), Vec::new());
            for (vrp, announce) in delta {
                if announce {
                    self.table.insert(vrp);
                    announced.push(vrp);
                } else {
                    self.table.remove(&vrp);
                    withdrawn.push(vrp);
                }
            }
        }
        announced.sort_unstable();
        withdrawn.sort_unstable();
        self.timing = timing.map_or(Timing::DEFAULT, Timing::clamped);
        self.session = Some((session_id, serial));
        self.expire_at = Some(now + secs(self.timing.expire));
        self.set_phase(Phase::Idle {
            next_query: now + secs(self.timing.refresh),
        });
        self.events.push_back(Event::Update {
            announced,
            withdrawn,
            serial,
        });
    }

    fn handle_error_report(
        &mut self,
        now: Instant,
        version: Version,
        code: ErrorCode,
        text: String,
    ) {
        match code {
            // RFC 8210 section 7: the cache does not speak our version; retry lower.
            ErrorCode::UnsupportedProtocolVersion if version < self.version => {
                self.version = version;
                self.session = None;
                self.close(CloseReason::Downgrade);
            }
            // Section 8.4: not fatal; ask again after the Retry Interval.
            ErrorCode::NoDataAvailable => self.set_phase(Phase::Idle {
                next_query: now + self.retry_interval(),
            }),
            code => self.fatal_report(code, text),
        }
    }

    /// A fatal Error Report from the cache (RFC 8210 sections 5.11 and 12): the
    /// connection ends, and a session held is forgotten (see
    /// [`CloseReason::SessionRefused`]); the table and its expiry stay.
    fn fatal_report(&mut self, code: ErrorCode, text: String) {
        let reason = if self.session.take().is_some() {
            CloseReason::SessionRefused { code, text }
        } else {
            CloseReason::CacheError { code, text }
        };
        self.close(reason);
    }
}

//! One BGP neighbor: the session finite state machine of RFC 4271 section 8, its timers,
//! capability negotiation (RFC 5492) and connection collision handling (RFC 4271
//! section 6.8), sans-IO.
//!
//! What it is: [`Peer`], driven the quinn-proto way. Inputs are calls carrying `now`:
//! [`Peer::connection_opened`], [`Peer::connection_failed`], [`Peer::connection_closed`],
//! [`Peer::handle_bytes`], [`Peer::handle_timeout`], [`Peer::start`], [`Peer::stop`],
//! [`Peer::send_update`], [`Peer::send_route_refresh`]. Outputs are polled:
//! [`Peer::poll_transmit`] (bytes to write on a connection, in order),
//! [`Peer::poll_action`] (open a connection, close one), [`Peer::poll_event`] (session
//! up/down, received routes, state changes) and [`Peer::poll_timeout`] (when to call
//! [`Peer::handle_timeout`] next).
//!
//! What it is not: a socket owner, a clock reader, a RIB or a policy engine. It never
//! opens, reads or closes a connection itself, never looks at the time, and passes every
//! UPDATE it receives on as an [`Event::Update`] without judging the routes.
//!
//! # Contract with the caller
//!
//! - After any input, drain [`Peer::poll_transmit`] *before* [`Peer::poll_action`]: the
//!   bytes of a connection (a final NOTIFICATION in particular) are always queued before
//!   the [`Action::Close`] of that connection, and a `Close` means "flush what was
//!   written, then close".
//! - Every connection that [`Peer::connection_opened`] accepted ends with exactly one
//!   [`Action::Close`] for it, whoever ended it (that includes
//!   [`Peer::connection_closed`]). A refused connection (`false`) is the caller's to close.
//! - [`Action::Connect`] asks for one outgoing connection. The caller reports its fate
//!   with `connection_opened(.., Direction::Outgoing)` or `connection_failed`. If neither
//!   has come after `connect_retry` seconds, the peer gives that attempt up
//!   ("Connect timeout") and later asks again; the caller should abort a connect still
//!   pending by then. A late success for an attempt given up on is refused (or taken as
//!   the answer to a newer attempt, if one is pending: any outgoing connection will do).
//! - Call [`Peer::poll_action`] once after [`Peer::new`] and [`Peer::start`]: starting
//!   queues the first `Connect`.
//!
//! # Behaviour
//!
//! RFC 4271 section 8, simplified the way BIRD does it:
//!
//! - One state machine per neighbor with at most one connection per direction; the
//!   reported [`State`] is that of the most advanced connection, or, with none, `Connect`
//!   (an outgoing attempt is pending), `Active` (waiting: for the connect retry timer,
//!   or, passive, for the neighbor) or `Idle` (stopped, or the restart delay after an
//!   error is running).
//! - Started (by [`Peer::new`] or [`Peer::start`]): an active peer asks for a connection
//!   (`Connect`), a passive one waits (`Active`). A failed connect makes it `Active`
//!   until the connect retry timer (`connect_retry` seconds) asks again (BIRD: "Active,
//!   Socket: Connection refused").
//! - Incoming connections are accepted whenever the peer is administratively up, not
//!   `Established`, and has no other incoming connection; that includes `Idle` while the
//!   restart delay runs. Administratively stopped, everything is refused.
//! - On every connection the OPEN goes out at once (RFC 4271 section 8.2.2, Connect and
//!   Active states), then `OpenSent` with a 4-minute hold timer. A valid OPEN is answered
//!   with a KEEPALIVE (`OpenConfirm`); the neighbor's KEEPALIVE makes it `Established`.
//! - OPEN checks (RFC 4271 section 6.2): the decoder refuses versions other than 4
//!   (2/1), identifier 0 (2/3) and hold times of 1 or 2 s (2/6); here the neighbor AS must
//!   equal `remote_asn` (else 2/2) and, on iBGP, the identifier must differ from ours
//!   (RFC 6286 section 2.2; else 2/3).
//! - Collision (RFC 4271 section 6.8): when an OPEN arrives on one connection while the
//!   other is in `OpenSent` or `OpenConfirm`, the connection initiated by the speaker
//!   with the higher BGP identifier (the larger AS on a tie, RFC 6286 section 2.3) stays;
//!   the other is closed with Cease/7 (RFC 4486). Both sides thus keep the same TCP
//!   connection. An OPEN on a new connection while another is `Established` closes the
//!   new one (Cease/7). Collisions are no error: neither closing a loser nor receiving
//!   Cease/7 on one while another connection goes on touches `last_error`. When the
//!   established connection goes down, a second one still opening is closed with it.
//! - Established: every UPDATE becomes [`Event::Update`] (End-of-RIB markers and RFC 7606
//!   treat-as-withdraw ones included), ROUTE-REFRESH for a negotiated family becomes
//!   [`Event::RouteRefresh`]. Any message received restarts the hold timer; KEEPALIVEs go
//!   out every keepalive interval, skipped when an UPDATE went out since the last one
//!   (RFC 4271 section 4.4; the skip is decided at the timer, since [`Peer::send_update`]
//!   carries no time).
//! - Errors: a message that does not decode gets the NOTIFICATION the decoder names
//!   (RFC 4271 section 6); a message that is not expected in the state gets an FSM
//!   error (RFC 6608 section 3: subcode by state, data = the message type); hold timer
//!   expiry sends 4/0. In every case the connection closes and `last_error` says why
//!   (`Received: ...` for a NOTIFICATION from the neighbor).
//! - After the session goes down (or fails while opening): `Idle` for `connect_retry`
//!   seconds, then started again (BIRD's error wait); a passive peer goes straight back
//!   to `Active`. [`Event::Down`] is emitted only when leaving `Established`: it means
//!   "withdraw every route from this neighbor".
//! - Hold time 0 (RFC 4271 section 4.2): no KEEPALIVEs, no hold timer once
//!   `Established`; in `OpenConfirm` the neighbor still has 4 minutes to confirm.
//! - [`Event::StateChanged`] reports every change of [`Peer::state`];
//!   `StateChanged(Established)` comes just before [`Event::Established`], and
//!   [`Event::Down`] just before the `StateChanged` that leaves `Established`.
//! - Input framing survives any chunking; per connection at most one partial message
//!   is kept between calls (bounded by the negotiated maximum message length).

use crate::packet::{
    error_code, frame, Capability, Codec, ExtendedNextHopEntry, Family, Message, Notification,
    Open, RouteRefresh, Update, AFI_IPV4, AFI_IPV6, SAFI_UNICAST,
};
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Identifies one transport connection; chosen by the caller, unique per connection.
pub type ConnId = u64;

/// Who opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We connected to the neighbor (after [`Action::Connect`]).
    Outgoing,
    /// The neighbor connected to us.
    Incoming,
}

/// What one session offers and expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our AS number (4-byte; sent as AS_TRANS in the 2-byte field when above 65535).
    pub local_asn: u32,
    /// Our BGP identifier (RFC 4271 section 4.2, RFC 6286).
    pub router_id: Ipv4Addr,
    /// The neighbor's AS number; an OPEN with another one is refused (2/2).
    pub remote_asn: u32,
    /// Families we offer, one multiprotocol capability each (RFC 4760 section 8).
    pub families: Vec<Family>,
    /// Offer the extended next hop capability (RFC 8950) for IPv4 unicast with IPv6 next
    /// hops; only sent when `families` holds IPv4 unicast.
    pub extended_next_hop: bool,
    /// Hold time offered, seconds (0 = no keepalives and no hold timer; 1 and 2, which
    /// RFC 4271 section 4.2 forbids, are offered as 3).
    pub hold_time: u16,
    /// Keepalive interval, seconds; `None` = a third of the negotiated hold time.
    pub keepalive: Option<u16>,
    /// Seconds between outgoing connection attempts, the give-up time of one attempt,
    /// and the restart delay after an error (0 is taken as 1).
    pub connect_retry: u16,
    /// Never connect; wait for the neighbor.
    pub passive: bool,
}

impl SessionConfig {
    /// A config with BIRD-like defaults: both unicast families, extended next hop
    /// offered, hold time 240 s, keepalive a third of it, connect retry 120 s (RFC 4271
    /// section 10), active.
    pub fn new(local_asn: u32, router_id: Ipv4Addr, remote_asn: u32) -> SessionConfig {
        SessionConfig {
            local_asn,
            router_id,
            remote_asn,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            extended_next_hop: true,
            hold_time: 240,
            keepalive: None,
            connect_retry: 120,
            passive: false,
        }
    }

    /// The hold time we put in our OPEN.
    fn offered_hold_time(&self) -> u16 {
        match self.hold_time {
            1 | 2 => 3,
            h => h,
        }
    }

    /// The families our OPEN announces: the configured ones, or IPv4 unicast alone
    /// when none is configured (no multiprotocol capability at all, RFC 4760 section 8).
    fn offered_families(&self) -> Vec<Family> {
        let mut v = self.families.clone();
        v.sort();
        v.dedup();
        if v.is_empty() {
            v.push(Family::Ipv4Unicast);
        }
        v
    }

    /// Whether our OPEN carries the extended next hop capability.
    fn offers_extended_next_hop(&self) -> bool {
        self.extended_next_hop && self.families.contains(&Family::Ipv4Unicast)
    }
}

/// Session states (RFC 4271 section 8.2.2), as birdc shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Stopped, or waiting out the restart delay after an error.
    Idle,
    /// An outgoing connection attempt is pending.
    Connect,
    /// Waiting for the connect retry timer or for the neighbor to connect.
    Active,
    /// Our OPEN is sent, the neighbor's is awaited.
    OpenSent,
    /// OPENs exchanged, the neighbor's KEEPALIVE is awaited.
    OpenConfirm,
    /// Up: routes flow.
    Established,
}

impl State {
    /// The state's name as birdc prints it ("Idle", "Connect", ..., "Established").
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the two OPENs of an established session agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The neighbor's AS (4-byte when it sent the capability).
    pub remote_asn: u32,
    /// The neighbor's BGP identifier.
    pub remote_router_id: Ipv4Addr,
    /// min(ours, theirs), seconds; 0 = no hold timer.
    pub hold_time: u16,
    /// Seconds between our KEEPALIVEs; 0 when the hold time is 0.
    pub keepalive: u16,
    /// Families both offered (a neighbor without any multiprotocol capability offers
    /// IPv4 unicast only, RFC 4760 section 8), sorted.
    pub families: Vec<Family>,
    /// Both sides have (IPv4 unicast, next hop AFI 2) in the extended next hop
    /// capability (RFC 8950 section 4) and IPv4 unicast is negotiated.
    pub extended_next_hop: bool,
    /// Both sent the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
    /// The neighbor accepts ROUTE-REFRESH (RFC 2918; we always offer it).
    pub route_refresh: bool,
    /// Both sent the extended message capability (RFC 8654).
    pub extended_message: bool,
    /// The wire format of later messages.
    pub codec: Codec,
}

/// Something the caller must do for the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open an outgoing connection to the neighbor, then call
    /// [`Peer::connection_opened`] (with [`Direction::Outgoing`]) or
    /// [`Peer::connection_failed`].
    Connect,
    /// Close this connection once the bytes already polled for it are written.
    Close(ConnId),
}

/// Something that happened to the session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "UPDATEs are the bulk of the events; boxing would add an allocation to each"
)]
pub enum Event {
    /// The session reached `Established` with these parameters.
    Established(Negotiated),
    /// An UPDATE received in `Established`, as decoded: End-of-RIB markers and RFC 7606
    /// treat-as-withdraw updates included.
    Update(Update),
    /// The neighbor asked for our routes of this family again (RFC 2918).
    RouteRefresh(Family),
    /// The session left `Established`: every route learned from it must go.
    Down {
        /// Why, as [`Peer::last_error`] says it.
        reason: String,
    },
    /// [`Peer::state`] changed to this.
    StateChanged(State),
}

/// RFC 4271 section 8: the hold timer while waiting for the neighbor's OPEN, "a large
/// value" with 4 minutes suggested.
const OPEN_HOLD: Duration = Duration::from_secs(240);

/// The only BGP version there is (RFC 4271 section 4.2).
const BGP_VERSION: u8 = 4;

/// OPEN message error subcodes (RFC 4271 section 6.2).
const OPEN_BAD_PEER_AS: u8 = 2;
const OPEN_BAD_BGP_IDENTIFIER: u8 = 3;

/// Cease subcodes (RFC 4486 section 4).
const CEASE_ADMINISTRATIVE_SHUTDOWN: u8 = 2;
const CEASE_PEER_DECONFIGURED: u8 = 3;
const CEASE_OTHER_CONFIGURATION_CHANGE: u8 = 6;
const CEASE_CONNECTION_COLLISION: u8 = 7;

/// Why a session is stopped: the Cease subcode its peer receives (RFC 4486 section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// Administrative Shutdown (2): the operator, or the node shutting down.
    AdministrativeShutdown,
    /// Peer De-configured (3): the session was removed from the configuration.
    PeerDeconfigured,
    /// Other Configuration Change (6): restarted with new settings.
    ConfigurationChange,
}

impl StopCause {
    fn subcode(self) -> u8 {
        match self {
            StopCause::AdministrativeShutdown => CEASE_ADMINISTRATIVE_SHUTDOWN,
            StopCause::PeerDeconfigured => CEASE_PEER_DECONFIGURED,
            StopCause::ConfigurationChange => CEASE_OTHER_CONFIGURATION_CHANGE,
        }
    }

    fn words(self) -> &'static str {
        match self {
            StopCause::AdministrativeShutdown => "Administrative shutdown",
            StopCause::PeerDeconfigured => "Peer de-configured",
            StopCause::ConfigurationChange => "Other configuration change",
        }
    }
}

/// Longest RFC 9003 shutdown communication, bytes.
const SHUTDOWN_COMMUNICATION_MAX: usize = 255;

/// Where one connection is (states before a connection exists are the peer's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ConnState {
    OpenSent,
    OpenConfirm,
    Established,
}

/// One transport connection to the neighbor.
#[derive(Debug)]
struct Conn {
    id: ConnId,
    dir: Direction,
    state: ConnState,
    /// Codec for this connection: [`Codec::INITIAL`] until the neighbor's OPEN.
    codec: Codec,
    /// At most one partial message, kept between `handle_bytes` calls.
    buf: Vec<u8>,
    /// Hold timer deadline.
    hold_at: Option<Instant>,
    /// Keepalive timer deadline.
    keepalive_at: Option<Instant>,
    /// An UPDATE went out since the keepalive timer was last armed.
    sent_update: bool,
    /// Set on the neighbor's OPEN.
    negotiated: Option<Negotiated>,
}

impl Conn {
    /// Restarts the hold timer after a message from the neighbor (RFC 4271 section
    /// 8.2.2: KeepAliveMsg and UpdateMsg in OpenConfirm/Established; BIRD does it for
    /// every message, and so do we).
    fn restart_hold(&mut self, now: Instant) {
        if let Some(n) = &self.negotiated {
            self.hold_at = (n.hold_time > 0).then(|| now + secs(n.hold_time));
        }
    }
}

/// The peer-level part of the state machine, below any connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Administratively down: `Idle`, refuses connections.
    Stopped,
    /// Restart delay after an error: `Idle` until then, incoming connections accepted.
    Delay(Instant),
    /// An outgoing attempt is pending, given up at the deadline.
    Connecting(Instant),
    /// Up, no attempt pending; the next one at the deadline, if any.
    Waiting(Option<Instant>),
}

/// One BGP neighbor's session; see the module documentation.
#[derive(Debug)]
pub struct Peer {
    config: SessionConfig,
    phase: Phase,
    conns: Vec<Conn>,
    state: State,
    since: Instant,
    last_error: Option<String>,
    transmits: VecDeque<(ConnId, Vec<u8>)>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// The RFC 9003 data of a Cease/Administrative Shutdown: a length byte and up to 255
/// bytes of UTF-8, cut at a character boundary. An empty reason sends no data (RFC 4486).
fn shutdown_communication(reason: &str) -> Vec<u8> {
    if reason.is_empty() {
        return Vec::new();
    }
    let mut end = reason.len().min(SHUTDOWN_COMMUNICATION_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let text = reason.as_bytes().get(..end).unwrap_or_default();
    let mut data = Vec::with_capacity(text.len() + 1);
    // `end` <= 255, so this is exact.
    data.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
    data.extend_from_slice(text);
    data
}

/// The type code of a message (RFC 4271 section 4.1, RFC 2918), for RFC 6608 data.
fn message_type(msg: &Message) -> u8 {
    match msg {
        Message::Open(_) => 1,
        Message::Update(_) => 2,
        Message::Notification(_) => 3,
        Message::Keepalive => 4,
        Message::RouteRefresh(_) => 5,
    }
}

fn notification(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
    Notification {
        code,
        subcode,
        data,
    }
}

impl Peer {
    /// A peer for `config`, started at once (RFC 4271 ManualStart): an active one has
    /// queued [`Action::Connect`] (state `Connect`), a passive one waits (`Active`).
    pub fn new(config: SessionConfig, now: Instant) -> Peer {
        let mut peer = Peer {
            config,
            phase: Phase::Stopped,
            conns: Vec::new(),
            state: State::Idle,
            since: now,
            last_error: None,
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        peer.begin(now);
        peer.refresh_state(now);
        peer
    }

    /// The configuration this peer runs with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The session state, as birdc would show it.
    pub fn state(&self) -> State {
        self.state
    }

    /// When [`Peer::state`] last changed.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Why the session last failed, birdc's "Last error" style: "Hold timer expired",
    /// "Received: Hold timer expired", "Connection closed", "Connection refused", ...
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// What was negotiated, while `Established`.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.conns
            .iter()
            .find(|c| c.state == ConnState::Established)
            .and_then(|c| c.negotiated.as_ref())
    }

    /// Administratively up again after [`Peer::stop`]; no-op when already up.
    pub fn start(&mut self, now: Instant) {
        if self.phase == Phase::Stopped {
            self.begin(now);
            self.refresh_state(now);
        }
    }

    /// Administratively down: every connection gets Cease/Administrative Shutdown
    /// (RFC 4486 section 4) with `reason` as the RFC 9003 shutdown communication, then is
    /// closed; the peer stays `Idle` and refuses connections until [`Peer::start`].
    pub fn stop(&mut self, now: Instant, reason: &str) {
        self.stop_for(now, StopCause::AdministrativeShutdown, reason);
    }

    /// [`Peer::stop`] with the Cease subcode of `cause`. RFC 9003 defines the shutdown
    /// communication for subcodes 2 and 4 only: `reason` is sent with those, and kept
    /// as the last error with every cause.
    pub fn stop_for(&mut self, now: Instant, cause: StopCause, reason: &str) {
        if self.phase == Phase::Stopped {
            return;
        }
        self.phase = Phase::Stopped;
        let text = if reason.is_empty() {
            cause.words().to_string()
        } else {
            format!("{}: {reason}", cause.words())
        };
        let data = if cause == StopCause::AdministrativeShutdown {
            shutdown_communication(reason)
        } else {
            Vec::new()
        };
        let cease = notification(error_code::CEASE, cause.subcode(), data);
        // The established connection last, so that its going down finds no other
        // connection left to close without this Cease.
        let mut ids: Vec<(bool, ConnId)> = self
            .conns
            .iter()
            .map(|c| (c.state == ConnState::Established, c.id))
            .collect();
        ids.sort_unstable();
        for (_, id) in ids {
            self.close_conn(now, id, Some(cease.clone()), &text);
        }
        self.last_error = Some(text);
        self.refresh_state(now);
    }

    /// A connection to the neighbor is up: ours (after [`Action::Connect`]) or theirs.
    /// Returns false when the peer does not want it (stopped, already `Established`,
    /// already one in that direction, no attempt pending for an outgoing one, or a
    /// duplicate id); the caller then closes it.
    pub fn connection_opened(&mut self, now: Instant, id: ConnId, dir: Direction) -> bool {
        let acceptable = self.phase != Phase::Stopped
            && !self
                .conns
                .iter()
                .any(|c| c.id == id || c.dir == dir || c.state == ConnState::Established)
            && (dir == Direction::Incoming || matches!(self.phase, Phase::Connecting(_)));
        if !acceptable {
            return false;
        }
        // RFC 4271 section 8.2.2, Connect/Active: the connection is up, the connect retry
        // timer stops (an outgoing attempt still pending keeps its own deadline).
        if !matches!(self.phase, Phase::Connecting(_)) || dir == Direction::Outgoing {
            self.phase = Phase::Waiting(None);
        }
        self.conns.push(Conn {
            id,
            dir,
            state: ConnState::OpenSent,
            codec: Codec::INITIAL,
            buf: Vec::new(),
            hold_at: Some(now + OPEN_HOLD),
            keepalive_at: None,
            sent_update: false,
            negotiated: None,
        });
        let open = Message::Open(self.our_open());
        self.send(id, &open, &Codec::INITIAL);
        self.refresh_state(now);
        true
    }

    /// An outgoing connection attempt failed (`why`: "Connection refused", ...): the peer
    /// goes `Active` and asks again after `connect_retry` seconds.
    pub fn connection_failed(&mut self, now: Instant, id: ConnId, why: &str) {
        if self.index(id).is_some() {
            // Not an attempt but a connection we know: it is gone.
            self.close_conn(now, id, None, why);
        } else if matches!(self.phase, Phase::Connecting(_)) {
            self.last_error = Some(why.to_string());
            self.attempt_over(now);
        }
        self.refresh_state(now);
    }

    /// The neighbor closed or reset the connection. Unknown ids are ignored.
    pub fn connection_closed(&mut self, now: Instant, id: ConnId) {
        self.close_conn(now, id, None, "Connection closed");
        self.refresh_state(now);
    }

    /// Bytes received on a connection, in any chunking. Unknown ids are ignored.
    pub fn handle_bytes(&mut self, now: Instant, id: ConnId, bytes: &[u8]) {
        let Some(c) = self.index(id).and_then(|i| self.conns.get_mut(i)) else {
            return;
        };
        let mut buf = std::mem::take(&mut c.buf);
        buf.extend_from_slice(bytes);
        let mut used = 0;
        // Each message may close the connection: read on only while it is there.
        while let Some(codec) = self
            .index(id)
            .and_then(|i| self.conns.get(i))
            .map(|c| c.codec)
        {
            let rest = buf.get(used..).unwrap_or_default();
            match frame(rest, &codec) {
                Ok(Some(len)) => {
                    let message = rest.get(..len).unwrap_or_default();
                    used += len;
                    match Message::decode(message, &codec) {
                        Ok(msg) => self.handle_message(now, id, msg),
                        Err(e) => self.close_conn(now, id, Some(e.notification), &e.reason),
                    }
                }
                Ok(None) => break,
                Err(e) => self.close_conn(now, id, Some(e.notification), &e.reason),
            }
        }
        if let Some(c) = self.index(id).and_then(|i| self.conns.get_mut(i)) {
            buf.drain(..used);
            // Keep the memory of one message, not that of the largest read.
            buf.shrink_to(c.codec.max_len());
            c.buf = buf;
        }
        self.refresh_state(now);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Delay(t) | Phase::Waiting(Some(t)) if now >= t => self.begin(now),
            Phase::Connecting(t) if now >= t => {
                // RFC 4271 section 8.2.2, Connect: ConnectRetryTimer_Expires.
                self.last_error = Some("Connect timeout".to_string());
                self.attempt_over(now);
            }
            _ => {}
        }
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            let Some(c) = self.index(id).and_then(|i| self.conns.get_mut(i)) else {
                continue;
            };
            if c.hold_at.is_some_and(|t| now >= t) {
                // RFC 4271 section 6.5.
                let n = notification(error_code::HOLD_TIMER_EXPIRED, 0, Vec::new());
                self.close_conn(now, id, Some(n), "Hold timer expired");
                continue;
            }
            if c.keepalive_at.is_none_or(|t| now < t) {
                continue;
            }
            let interval = c.negotiated.as_ref().map_or(0, |n| n.keepalive);
            c.keepalive_at = (interval > 0).then(|| now + secs(interval));
            let codec = c.codec;
            // RFC 4271 section 4.4: an UPDATE sent meanwhile did the KEEPALIVE's job.
            if !std::mem::take(&mut c.sent_update) {
                self.send(id, &Message::Keepalive, &codec);
            }
        }
        self.refresh_state(now);
    }

    /// When [`Peer::handle_timeout`] must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Stopped | Phase::Waiting(None) => None,
            Phase::Delay(t) | Phase::Connecting(t) | Phase::Waiting(Some(t)) => Some(t),
        };
        self.conns
            .iter()
            .flat_map(|c| [c.hold_at, c.keepalive_at])
            .chain([phase])
            .flatten()
            .min()
    }

    /// The next bytes to write on a connection, in order.
    pub fn poll_transmit(&mut self) -> Option<(ConnId, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next thing the caller must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Sends `update` (split to the negotiated maximum message length) while
    /// `Established`; ignored otherwise.
    pub fn send_update(&mut self, update: &Update) {
        let Some(c) = self
            .conns
            .iter_mut()
            .find(|c| c.state == ConnState::Established)
        else {
            return;
        };
        c.sent_update = true;
        let (id, codec) = (c.id, c.codec);
        let mut out = self.take_out(id);
        update.encode_split(&codec, &mut out);
        self.put_out(id, out);
    }

    /// Asks the neighbor to send its routes of `family` again (RFC 2918 section 3), if
    /// `Established`, it offered route refresh and `family` was negotiated; ignored
    /// otherwise.
    pub fn send_route_refresh(&mut self, family: Family) {
        let Some(c) = self
            .conns
            .iter()
            .find(|c| c.state == ConnState::Established)
        else {
            return;
        };
        let Some(n) = &c.negotiated else {
            return;
        };
        if !n.route_refresh || !n.families.contains(&family) {
            return;
        }
        let (afi, safi) = family.afi_safi();
        let msg = Message::RouteRefresh(RouteRefresh {
            afi,
            subtype: 0,
            safi,
        });
        let (id, codec) = (c.id, c.codec);
        self.send(id, &msg, &codec);
    }

    // ---- internals ----

    fn index(&self, id: ConnId) -> Option<usize> {
        self.conns.iter().position(|c| c.id == id)
    }

    fn retry_delay(&self) -> Duration {
        secs(self.config.connect_retry.max(1))
    }

    /// Starts (or restarts) the peer: RFC 4271 section 8.2.2, Idle, ManualStart /
    /// AutomaticStart. An active peer asks for a connection unless one is already in
    /// progress; a passive one waits.
    fn begin(&mut self, now: Instant) {
        if self.config.passive || !self.conns.is_empty() {
            self.phase = Phase::Waiting(None);
        } else {
            self.phase = Phase::Connecting(now + self.retry_delay());
            self.actions.push_back(Action::Connect);
        }
    }

    /// The pending outgoing attempt is over without a connection: wait `connect_retry`
    /// before the next one (RFC 4271 section 8.2.2, Connect: TcpConnectionFails).
    fn attempt_over(&mut self, now: Instant) {
        self.phase = if self.conns.is_empty() {
            Phase::Waiting(Some(now + self.retry_delay()))
        } else {
            Phase::Waiting(None)
        };
    }

    fn current_state(&self) -> State {
        match self.conns.iter().map(|c| c.state).max() {
            Some(ConnState::Established) => State::Established,
            Some(ConnState::OpenConfirm) => State::OpenConfirm,
            Some(ConnState::OpenSent) => State::OpenSent,
            None => match self.phase {
                Phase::Stopped | Phase::Delay(_) => State::Idle,
                Phase::Connecting(_) => State::Connect,
                Phase::Waiting(_) => State::Active,
            },
        }
    }

    fn refresh_state(&mut self, now: Instant) {
        let s = self.current_state();
        if s != self.state {
            self.state = s;
            self.since = now;
            self.events.push_back(Event::StateChanged(s));
        }
    }

    /// The transmit buffer to append to for `id`: the last queued one if it is for the
    /// same connection (fewer, larger writes), else a new one.
    fn take_out(&mut self, id: ConnId) -> Vec<u8> {
        if matches!(self.transmits.back(), Some((last, _)) if *last == id) {
            if let Some((_, buf)) = self.transmits.pop_back() {
                return buf;
            }
        }
        Vec::new()
    }

    fn put_out(&mut self, id: ConnId, buf: Vec<u8>) {
        if !buf.is_empty() {
            self.transmits.push_back((id, buf));
        }
    }

    fn send(&mut self, id: ConnId, msg: &Message, codec: &Codec) {
        let mut out = self.take_out(id);
        msg.encode(codec, &mut out);
        self.put_out(id, out);
    }

    /// Our OPEN (RFC 4271 section 4.2) with its capabilities (RFC 5492).
    fn our_open(&self) -> Open {
        let mut capabilities: Vec<Capability> = Vec::new();
        if !self.config.families.is_empty() {
            // RFC 4760 section 8: one capability per family.
            for f in self.config.offered_families() {
                let (afi, safi) = f.afi_safi();
                capabilities.push(Capability::Multiprotocol { afi, safi });
            }
        }
        capabilities.push(Capability::RouteRefresh); // RFC 2918 section 2
        if self.config.offers_extended_next_hop() {
            // RFC 8950 section 3: IPv4 unicast NLRI with IPv6 next hops.
            capabilities.push(Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
                afi: AFI_IPV4,
                safi: u16::from(SAFI_UNICAST),
                nh_afi: AFI_IPV6,
            }]));
        }
        capabilities.push(Capability::ExtendedMessage); // RFC 8654 section 3
        capabilities.push(Capability::FourOctetAs(self.config.local_asn)); // RFC 6793 section 3
        Open {
            version: BGP_VERSION,
            asn: self.config.local_asn,
            hold_time: self.config.offered_hold_time(),
            router_id: self.config.router_id,
            capabilities,
        }
    }

    /// Closes connection `id`: `notif` (if any) is queued, then
    /// [`Action::Close`]. `reason` becomes `last_error`, and the [`Event::Down`] reason if
    /// the connection was `Established`. Unknown ids are ignored.
    fn close_conn(&mut self, now: Instant, id: ConnId, notif: Option<Notification>, reason: &str) {
        let Some(was_established) = self.drop_conn(id, notif) else {
            return;
        };
        self.last_error = Some(reason.to_string());
        if was_established {
            self.events.push_back(Event::Down {
                reason: reason.to_string(),
            });
            // A connection still opening beside the established one goes too: the
            // session restarts from scratch.
            let others: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
            for o in others {
                let n = notification(error_code::CEASE, CEASE_CONNECTION_COLLISION, Vec::new());
                self.drop_conn(o, Some(n));
            }
        }
        if self.conns.is_empty() {
            match self.phase {
                Phase::Stopped | Phase::Connecting(_) => {}
                _ if self.config.passive => self.phase = Phase::Waiting(None),
                _ => self.phase = Phase::Delay(now + self.retry_delay()),
            }
        }
        self.refresh_state(now);
    }

    /// Removes connection `id`, queueing `notif` and then its [`Action::Close`].
    /// Returns whether it was `Established`, `None` for an unknown id.
    fn drop_conn(&mut self, id: ConnId, notif: Option<Notification>) -> Option<bool> {
        let i = self.index(id)?;
        let conn = self.conns.remove(i);
        if let Some(n) = notif {
            self.send(id, &Message::Notification(n), &conn.codec);
        }
        self.actions.push_back(Action::Close(id));
        Some(conn.state == ConnState::Established)
    }

    fn handle_message(&mut self, now: Instant, id: ConnId, msg: Message) {
        let Some(c) = self.index(id).and_then(|i| self.conns.get_mut(i)) else {
            return;
        };
        let state = c.state;
        if state != ConnState::OpenSent {
            c.restart_hold(now);
        }
        match (state, msg) {
            (_, Message::Notification(n)) => {
                // RFC 4271 section 6.4: the connection closes, nothing is sent back. The
                // neighbor closing the loser of a collision (RFC 4271 section 6.8) while
                // another connection goes on is no error to report.
                let collision = n.code == error_code::CEASE
                    && n.subcode == CEASE_CONNECTION_COLLISION
                    && state != ConnState::Established
                    && self.conns.len() > 1;
                if collision {
                    self.drop_conn(id, None);
                    self.refresh_state(now);
                } else {
                    let reason = format!("Received: {}", n.describe());
                    self.close_conn(now, id, None, &reason);
                }
            }
            (ConnState::OpenSent, Message::Open(open)) => self.handle_open(now, id, open),
            (ConnState::OpenConfirm, Message::Keepalive) => {
                // RFC 4271 section 8.2.2, OpenConfirm: KeepAliveMsg.
                c.state = ConnState::Established;
                let negotiated = c.negotiated.clone();
                // An outgoing attempt still pending is not wanted any more.
                self.phase = Phase::Waiting(None);
                self.refresh_state(now);
                if let Some(n) = negotiated {
                    self.events.push_back(Event::Established(n));
                }
            }
            (ConnState::Established, Message::Keepalive) => {}
            (ConnState::Established, Message::Update(u)) => {
                self.events.push_back(Event::Update(u));
            }
            (ConnState::Established, Message::RouteRefresh(r)) => {
                // RFC 2918 section 4 / RFC 7313 section 5: unknown families and
                // subtypes (we do not offer enhanced route refresh) are ignored.
                let family = Family::from_afi_safi(r.afi, r.safi);
                let negotiated = c.negotiated.as_ref();
                if let Some(f) = family {
                    if r.subtype == 0 && negotiated.is_some_and(|n| n.families.contains(&f)) {
                        self.events.push_back(Event::RouteRefresh(f));
                    }
                }
            }
            (state, msg) => {
                // RFC 6608 section 3.
                let subcode = match state {
                    ConnState::OpenSent => 1,
                    ConnState::OpenConfirm => 2,
                    ConnState::Established => 3,
                };
                let t = message_type(&msg);
                let n = notification(error_code::FSM, subcode, vec![t]);
                let reason = format!(
                    "Unexpected message (type {t}) in {}",
                    match state {
                        ConnState::OpenSent => "OpenSent",
                        ConnState::OpenConfirm => "OpenConfirm",
                        ConnState::Established => "Established",
                    }
                );
                self.close_conn(now, id, Some(n), &reason);
            }
        }
    }

    /// The neighbor's OPEN on a connection in `OpenSent`.
    fn handle_open(&mut self, now: Instant, id: ConnId, open: Open) {
        if let Some((n, reason)) = self.check_open(&open) {
            self.close_conn(now, id, Some(n), &reason);
            return;
        }
        if !self.resolve_collision(now, id, &open) {
            return;
        }
        let negotiated = self.negotiate(&open);
        let Some(c) = self.index(id).and_then(|i| self.conns.get_mut(i)) else {
            return;
        };
        // RFC 4271 section 8.2.2, OpenSent: BGPOpen received. Timers with the
        // negotiated hold time; none when it is 0, except that the neighbor still has
        // the 4 minutes of the OpenSent hold timer to confirm (RFC 4271 starts no timer
        // here; a neighbor that never confirms would block its direction for good).
        c.codec = negotiated.codec;
        c.state = ConnState::OpenConfirm;
        if negotiated.hold_time > 0 {
            c.hold_at = Some(now + secs(negotiated.hold_time));
            c.keepalive_at = Some(now + secs(negotiated.keepalive));
        } else {
            c.hold_at = Some(now + OPEN_HOLD);
            c.keepalive_at = None;
        }
        c.negotiated = Some(negotiated);
        let codec = c.codec;
        self.send(id, &Message::Keepalive, &codec);
        self.refresh_state(now);
    }

    /// The checks of the neighbor's OPEN that need our configuration (RFC 4271 section
    /// 6.2; the decoder already refused versions other than 4, hold times of 1 and 2 s
    /// and identifier 0): the NOTIFICATION to send and the reason, if one fails.
    fn check_open(&self, open: &Open) -> Option<(Notification, String)> {
        let open_error = |sub| notification(error_code::OPEN_MESSAGE, sub, Vec::new());
        if open.asn != self.config.remote_asn {
            let reason = format!("Bad peer AS: {}", open.asn);
            return Some((open_error(OPEN_BAD_PEER_AS), reason));
        }
        // RFC 6286 section 2.2: within an AS the identifiers must differ.
        let ibgp = self.config.local_asn == self.config.remote_asn;
        if ibgp && open.router_id == self.config.router_id {
            let reason = format!("Bad BGP identifier: {} is ours", open.router_id);
            return Some((open_error(OPEN_BAD_BGP_IDENTIFIER), reason));
        }
        None
    }

    /// RFC 4271 section 6.8 on the arrival of `open` on connection `id`. Returns whether
    /// `id` survives.
    fn resolve_collision(&mut self, now: Instant, id: ConnId, open: &Open) -> bool {
        let Some(this) = self.conns.iter().find(|c| c.id == id) else {
            return false;
        };
        let Some(other) = self.conns.iter().find(|c| c.id != id) else {
            return true;
        };
        let loser = if other.state == ConnState::Established {
            id
        } else {
            // The connection initiated by the higher identifier stays; equal identifiers
            // (possible on eBGP): the larger AS (RFC 6286 section 2.3).
            let local = (u32::from(self.config.router_id), self.config.local_asn);
            let remote = (u32::from(open.router_id), open.asn);
            let keep = if local > remote {
                Direction::Outgoing
            } else {
                Direction::Incoming
            };
            if this.dir == keep {
                other.id
            } else {
                id
            }
        };
        let n = notification(error_code::CEASE, CEASE_CONNECTION_COLLISION, Vec::new());
        // A normal part of opening a session: not an error worth reporting.
        self.drop_conn(loser, Some(n));
        self.refresh_state(now);
        loser != id
    }

    /// What our OPEN and theirs agree on.
    fn negotiate(&self, open: &Open) -> Negotiated {
        let mut theirs: Vec<Family> = Vec::new();
        let mut any_mp = false;
        let (mut four_octet_as, mut route_refresh, mut extended_message) = (false, false, false);
        let mut their_enh = false;
        for cap in &open.capabilities {
            match cap {
                Capability::Multiprotocol { afi, safi } => {
                    any_mp = true;
                    theirs.extend(Family::from_afi_safi(*afi, *safi));
                }
                Capability::RouteRefresh => route_refresh = true,
                Capability::ExtendedNextHop(entries) => {
                    their_enh |= entries.iter().any(|e| {
                        e.afi == AFI_IPV4
                            && e.safi == u16::from(SAFI_UNICAST)
                            && e.nh_afi == AFI_IPV6
                    });
                }
                Capability::ExtendedMessage => extended_message = true,
                Capability::FourOctetAs(_) => four_octet_as = true,
                Capability::AddPath(_) | Capability::Other(..) => {}
            }
        }
        if !any_mp {
            // RFC 4760 section 8: a speaker without the capability does IPv4 unicast.
            theirs.push(Family::Ipv4Unicast);
        }
        let families: Vec<Family> = self
            .config
            .offered_families()
            .into_iter()
            .filter(|f| theirs.contains(f))
            .collect();
        let extended_next_hop = self.config.offers_extended_next_hop()
            && their_enh
            && families.contains(&Family::Ipv4Unicast);
        // RFC 4271 section 4.2: the smaller hold time; the keepalive a third of it
        // unless configured, never below 1 s nor up to the hold time.
        let hold_time = self.config.offered_hold_time().min(open.hold_time);
        let keepalive = if hold_time == 0 {
            0
        } else {
            self.config
                .keepalive
                .unwrap_or(hold_time / 3)
                .min(hold_time - 1)
                .max(1)
        };
        Negotiated {
            remote_asn: open.asn,
            remote_router_id: open.router_id,
            hold_time,
            keepalive,
            families,
            extended_next_hop,
            four_octet_as,
            route_refresh,
            extended_message,
            codec: Codec {
                four_octet_as,
                extended_message,
            },
        }
    }
}

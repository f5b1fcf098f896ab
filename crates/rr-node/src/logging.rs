//! Logs that an attacker cannot turn into a flood, and the tunnels' state changes.
//!
//! What it is: [`LogLimit`], a per-call-site budget (a burst of lines per window; what
//! is over the budget is counted and the count goes out with the next line that is
//! allowed, as `suppressed = N`), and [`TunnelWatch`], which compares a tunnel's
//! counters from one timer tick to the next and says what changed (handshake completed,
//! endpoint moved, keys expired) so that each change is one log line.
//!
//! What it is not: a logger (lines go through `tracing`) nor a reader of the clock: the
//! caller passes the time in, so both are tested on a virtual clock.

use rr_dataplane::tunnel::TunnelStats;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// At most `burst` lines per `window` from one call site.
#[derive(Debug)]
pub(crate) struct LogLimit {
    burst: u32,
    window: Duration,
    started: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogLimit {
    pub(crate) const fn new(burst: u32, window: Duration) -> LogLimit {
        LogLimit {
            burst,
            window,
            started: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be written now (`n` lines were suppressed since the
    /// last one written); `None` when it is over the budget (it is counted).
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .started
            .is_none_or(|s| now.saturating_duration_since(s) >= self.window);
        if fresh {
            self.started = Some(now);
            self.used = 0;
        }
        if self.used < self.burst {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// WireGuard rejects a session's keys this long after its handshake (the protocol's
/// Reject-After-Time): past it, and without a newer handshake, the tunnel carries nothing.
pub(crate) const KEYS_EXPIRE: Duration = Duration::from_secs(180);

/// A change of a tunnel worth one log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TunnelChange {
    /// A handshake completed and the tunnel had no live session before.
    Up { endpoint: Option<SocketAddr> },
    /// The peer's endpoint moved (roaming, or learned for the first time).
    Endpoint {
        from: Option<SocketAddr>,
        to: Option<SocketAddr>,
    },
    /// The last handshake is older than [`KEYS_EXPIRE`].
    Down { since_handshake: Duration },
}

/// What was seen of one tunnel at the last tick.
#[derive(Debug, Default)]
pub(crate) struct TunnelWatch {
    up: bool,
    endpoint: Option<SocketAddr>,
}

impl TunnelWatch {
    /// The changes between the last call and `now`'s counters, in the order they happened
    /// (the endpoint first: a roaming peer's handshake comes from its new address).
    pub(crate) fn observe(&mut self, st: &TunnelStats) -> Vec<TunnelChange> {
        let mut out = Vec::new();
        if st.endpoint != self.endpoint {
            out.push(TunnelChange::Endpoint {
                from: self.endpoint,
                to: st.endpoint,
            });
            self.endpoint = st.endpoint;
        }
        let live = st.since_last_handshake.is_some_and(|d| d < KEYS_EXPIRE);
        match (self.up, live) {
            (false, true) => out.push(TunnelChange::Up {
                endpoint: st.endpoint,
            }),
            (true, false) => out.push(TunnelChange::Down {
                since_handshake: st.since_last_handshake.unwrap_or_default(),
            }),
            _ => {}
        }
        self.up = live;
        out
    }
}

/// An endpoint for a log line: the address, or `none`.
fn ep(e: &Option<SocketAddr>) -> String {
    e.map_or_else(|| "none".to_string(), |a| a.to_string())
}

/// Logs `changes` of tunnel `name`, one line each.
pub(crate) fn log_tunnel_changes(name: &str, changes: &[TunnelChange]) {
    for c in changes {
        match c {
            TunnelChange::Up { endpoint } => tracing::info!(
                tunnel = %name,
                endpoint = %ep(endpoint),
                "WireGuard session up: handshake completed"
            ),
            TunnelChange::Endpoint { from: None, to } => {
                tracing::info!(tunnel = %name, endpoint = %ep(to), "peer endpoint")
            }
            TunnelChange::Endpoint { from, to } => tracing::info!(
                tunnel = %name,
                from = %ep(from),
                to = %ep(to),
                "peer endpoint changed"
            ),
            TunnelChange::Down { since_handshake } => tracing::warn!(
                tunnel = %name,
                last_handshake_secs = since_handshake.as_secs(),
                "WireGuard session down: no handshake for 180 s, keys expired"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_budget_and_the_rest_counted() {
        let t0 = Instant::now();
        let mut l = LogLimit::new(3, Duration::from_secs(10));
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let allowed: Vec<Option<u64>> = (0..1000).map(|i| l.allow(at(i))).collect();
        assert_eq!(allowed.iter().filter(|a| a.is_some()).count(), 3);
        assert_eq!(allowed[..3], [Some(0), Some(0), Some(0)]);
        // The next window: the first line carries the count of what was dropped.
        assert_eq!(l.allow(at(10_000)), Some(997));
        assert_eq!(l.allow(at(10_001)), Some(0));
        assert_eq!(l.allow(at(10_002)), Some(0));
        assert_eq!(l.allow(at(10_003)), None);
        assert_eq!(l.allow(at(25_000)), Some(1));
    }

    fn st(endpoint: Option<&str>, since: Option<u64>) -> TunnelStats {
        TunnelStats {
            endpoint: endpoint.map(|e| e.parse().unwrap()),
            since_last_handshake: since.map(Duration::from_secs),
            ..TunnelStats::default()
        }
    }

    #[test]
    fn tunnel_changes_are_reported_once_each() {
        let mut w = TunnelWatch::default();
        assert!(w.observe(&st(None, None)).is_empty(), "nothing yet");
        let a: SocketAddr = "192.0.2.1:51820".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:4000".parse().unwrap();
        assert_eq!(
            w.observe(&st(Some("192.0.2.1:51820"), Some(0))),
            [
                TunnelChange::Endpoint {
                    from: None,
                    to: Some(a)
                },
                TunnelChange::Up { endpoint: Some(a) }
            ]
        );
        // Rekeys and keepalives: nothing to say.
        assert!(w
            .observe(&st(Some("192.0.2.1:51820"), Some(100)))
            .is_empty());
        assert!(w.observe(&st(Some("192.0.2.1:51820"), Some(5))).is_empty());
        // Roaming.
        assert_eq!(
            w.observe(&st(Some("192.0.2.2:4000"), Some(1))),
            [TunnelChange::Endpoint {
                from: Some(a),
                to: Some(b)
            }]
        );
        // Silence past Reject-After-Time, then a new handshake.
        assert_eq!(
            w.observe(&st(Some("192.0.2.2:4000"), Some(180))),
            [TunnelChange::Down {
                since_handshake: Duration::from_secs(180)
            }]
        );
        assert!(w.observe(&st(Some("192.0.2.2:4000"), Some(400))).is_empty());
        assert_eq!(
            w.observe(&st(Some("192.0.2.2:4000"), Some(0))),
            [TunnelChange::Up { endpoint: Some(b) }]
        );
    }
}

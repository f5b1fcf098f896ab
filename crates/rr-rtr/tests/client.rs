//! The session on a virtual clock: `Instant`s are a fixed origin plus offsets, bytes go
//! in by hand, and what the client sends is decoded and checked.

use rr_rtr::pdu::{ErrorCode, Pdu, Timing, Version};
use rr_rtr::{Client, CloseReason, Event, Vrp};
use std::time::{Duration, Instant};

fn vrp(prefix: &str, max_len: u8, asn: u32) -> Vrp {
    Vrp::new(prefix.parse().unwrap(), max_len, asn).unwrap()
}

fn bytes(version: Version, pdus: &[Pdu]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pdus {
        p.encode(version, &mut out);
    }
    out
}

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const TIMING: Timing = Timing {
    refresh: 1800,
    retry: 300,
    expire: 3600,
};

fn ann(v: Vrp) -> Pdu {
    Pdu::Prefix {
        announce: true,
        vrp: v,
    }
}

fn wd(v: Vrp) -> Pdu {
    Pdu::Prefix {
        announce: false,
        vrp: v,
    }
}

fn eod(session_id: u16, serial: u32) -> Pdu {
    Pdu::EndOfData {
        session_id,
        serial,
        timing: Some(TIMING),
    }
}

struct T {
    c: Client,
    t0: Instant,
}

impl T {
    fn new() -> T {
        T {
            c: Client::new(),
            t0: Instant::now(),
        }
    }

    fn at(&self, s: u64) -> Instant {
        self.t0 + Duration::from_secs(s)
    }

    fn open(&mut self, s: u64) {
        self.c.connection_opened(self.at(s));
    }

    fn feed(&mut self, s: u64, b: &[u8]) {
        self.c.handle_bytes(self.at(s), b);
    }

    fn feed_pdus(&mut self, s: u64, version: Version, pdus: &[Pdu]) {
        self.feed(s, &bytes(version, pdus));
    }

    /// Everything sent since the last call, decoded.
    fn sent(&mut self) -> Vec<(Version, Pdu)> {
        let mut out = Vec::new();
        while let Some(b) = self.c.poll_transmit() {
            let mut rest = &b[..];
            while !rest.is_empty() {
                let n = rr_rtr::pdu::frame(rest).unwrap().unwrap();
                out.push(Pdu::decode(&rest[..n]).unwrap());
                rest = &rest[n..];
            }
        }
        out
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.c.poll_event()).collect()
    }

    /// A v1 full sync of `vrps` in session 7 at serial 1, at time `s`.
    fn synced(vrps: &[Vrp]) -> T {
        let mut t = T::new();
        t.open(0);
        assert_eq!(t.sent(), [(Version::V1, Pdu::ResetQuery)]);
        let mut pdus = vec![Pdu::CacheResponse { session_id: 7 }];
        pdus.extend(vrps.iter().copied().map(ann));
        pdus.push(eod(7, 1));
        t.feed_pdus(0, Version::V1, &pdus);
        let mut announced = vrps.to_vec();
        announced.sort();
        assert_eq!(
            t.events(),
            [Event::Update {
                announced,
                withdrawn: vec![],
                serial: 1
            }]
        );
        t
    }
}

fn a() -> Vrp {
    vrp("172.20.4.128/26", 29, 4242420049)
}
fn b() -> Vrp {
    vrp("fd42:d42:d42::/48", 64, 4242422601)
}
fn c() -> Vrp {
    vrp("172.20.0.0/24", 28, 0)
}

#[test]
fn full_sync_sets_session_timers_and_table() {
    let mut t = T::synced(&[b(), a(), c()]);
    assert_eq!(t.c.session(), Some((7, 1)));
    assert_eq!(t.c.timing(), TIMING);
    assert_eq!(t.c.retry_interval(), Duration::from_secs(300));
    assert_eq!(t.c.vrps().count(), 3);
    // Next: the Refresh Interval (1800 s) before Expire (3600 s).
    assert_eq!(t.c.poll_timeout(), Some(t.at(1800)));
    t.c.handle_timeout(t.at(1799));
    assert!(t.sent().is_empty());
    t.c.handle_timeout(t.at(1800));
    assert_eq!(
        t.sent(),
        [(
            Version::V1,
            Pdu::SerialQuery {
                session_id: 7,
                serial: 1
            }
        )]
    );
    // Query deadline: the Retry Interval.
    assert_eq!(t.c.poll_timeout(), Some(t.at(2100)));
    // Nothing changed: an empty update still renews Expire.
    t.feed_pdus(
        1900,
        Version::V1,
        &[Pdu::CacheResponse { session_id: 7 }, eod(7, 1)],
    );
    assert_eq!(
        t.events(),
        [Event::Update {
            announced: vec![],
            withdrawn: vec![],
            serial: 1
        }]
    );
    assert_eq!(t.c.poll_timeout(), Some(t.at(1900 + 1800)));
}

#[test]
fn incremental_update_commits_at_end_of_data() {
    let mut t = T::synced(&[a(), b()]);
    t.c.handle_timeout(t.at(1800));
    t.sent();
    let d = vrp("fd00::/8", 64, 1);
    // Withdraw a, announce c, announce and withdraw d in the same batch (nets out).
    t.feed_pdus(
        1801,
        Version::V1,
        &[
            Pdu::CacheResponse { session_id: 7 },
            wd(a()),
            ann(c()),
            ann(d),
            wd(d),
        ],
    );
    assert!(t.events().is_empty(), "nothing before End of Data");
    assert_eq!(t.c.vrps().count(), 2);
    t.feed_pdus(1801, Version::V1, &[eod(7, 2)]);
    assert_eq!(
        t.events(),
        [Event::Update {
            announced: vec![c()],
            withdrawn: vec![a()],
            serial: 2
        }]
    );
    assert_eq!(t.c.session(), Some((7, 2)));
    let mut now: Vec<Vrp> = t.c.vrps().copied().collect();
    now.sort();
    assert_eq!(now, [c(), b()]);
}

/// A bad increment (withdrawal of a VRP we do not hold, RFC 8210 section 12 code 6)
/// gets an Error Report and a close; the table stays, and the next connection starts
/// over with a Reset Query rather than the Serial Query that got the bad increment.
#[test]
fn bad_increment_keeps_the_table_and_resets_next_time() {
    let mut t = T::synced(&[a(), b()]);
    t.c.handle_timeout(t.at(1800));
    t.sent();
    t.feed_pdus(
        1801,
        Version::V1,
        &[Pdu::CacheResponse { session_id: 7 }, wd(c())],
    );
    assert!(matches!(
        t.events()[..],
        [Event::Close(CloseReason::ProtocolError {
            code: ErrorCode::WithdrawalOfUnknownRecord,
            ..
        })]
    ));
    assert!(matches!(
        t.sent()[..],
        [(
            Version::V1,
            Pdu::ErrorReport {
                code: ErrorCode::WithdrawalOfUnknownRecord,
                ..
            }
        )]
    ));
    assert_eq!(t.c.vrps().count(), 2, "the table stays");
    assert_eq!(t.c.session(), None);
    t.c.connection_closed(t.at(1801));
    t.open(1802);
    assert_eq!(t.sent(), [(Version::V1, Pdu::ResetQuery)]);
}

#[test]
fn stayrtr_capture_full_sync_notify_and_increment() {
    let mut t = T::new();
    t.open(0);
    t.sent();
    t.feed(0, &data("v1_reset.response.bin"));
    let [Event::Update {
        announced,
        withdrawn,
        serial: 0,
    }] = &t.events()[..]
    else {
        panic!("no update")
    };
    assert_eq!(announced, &[c(), a(), b()]);
    assert!(withdrawn.is_empty());
    let (session_id, 0) = t.c.session().unwrap() else {
        panic!()
    };
    // Serial Notify while idle: Serial Query at once (RFC 8210 section 8.2).
    t.feed(10, &data("v1_notify.bin"));
    assert_eq!(
        t.sent(),
        [(
            Version::V1,
            Pdu::SerialQuery {
                session_id,
                serial: 0
            }
        )]
    );
    t.feed(10, &data("v1_serial.response.bin"));
    assert_eq!(
        t.events(),
        [Event::Update {
            announced: vec![vrp("fdcf:8538:9ad5::/48", 64, 4242423914)],
            withdrawn: vec![c()],
            serial: 1
        }]
    );
}

#[test]
fn notify_is_ignored_before_negotiation_and_during_a_query() {
    let mut t = T::new();
    t.open(0);
    t.sent();
    let notify = Pdu::SerialNotify {
        session_id: 7,
        serial: 5,
    };
    t.feed_pdus(0, Version::V1, std::slice::from_ref(&notify));
    // Even one in another version (RFC 8210 section 7).
    t.feed_pdus(0, Version::V0, std::slice::from_ref(&notify));
    assert!(t.sent().is_empty());
    assert!(t.events().is_empty());
    t.feed_pdus(0, Version::V1, &[Pdu::CacheResponse { session_id: 7 }]);
    t.feed_pdus(0, Version::V1, std::slice::from_ref(&notify));
    assert!(t.sent().is_empty(), "no query while one is in flight");
    t.feed_pdus(0, Version::V1, &[eod(7, 5)]);
    t.feed_pdus(1, Version::V1, std::slice::from_ref(&notify));
    assert_eq!(
        t.sent(),
        [(
            Version::V1,
            Pdu::SerialQuery {
                session_id: 7,
                serial: 5
            }
        )]
    );
}

#[test]
fn cache_reset_leads_to_reset_query_and_a_diffed_full_table() {
    let mut t = T::synced(&[a(), b()]);
    t.c.handle_timeout(t.at(1800));
    t.sent();
    t.feed_pdus(1800, Version::V1, &[Pdu::CacheReset]);
    assert_eq!(t.sent(), [(Version::V1, Pdu::ResetQuery)]);
    assert!(
        t.events().is_empty(),
        "data kept until the new table is complete"
    );
    assert_eq!(t.c.vrps().count(), 2);
    t.feed_pdus(
        1801,
        Version::V1,
        &[
            Pdu::CacheResponse { session_id: 8 },
            ann(b()),
            ann(c()),
            eod(8, 40),
        ],
    );
    assert_eq!(
        t.events(),
        [Event::Update {
            announced: vec![c()],
            withdrawn: vec![a()],
            serial: 40
        }]
    );
    assert_eq!(t.c.session(), Some((8, 40)));
}

#[test]
fn session_id_change_flushes_reports_and_closes() {
    let mut t = T::synced(&[a()]);
    t.c.handle_timeout(t.at(1800));
    t.sent();
    let response = bytes(Version::V1, &[Pdu::CacheResponse { session_id: 99 }]);
    t.feed(1800, &response);
    let ev = t.events();
    assert_eq!(ev[0], Event::Reset);
    assert!(matches!(
        &ev[1],
        Event::Close(CloseReason::ProtocolError {
            code: ErrorCode::CorruptData,
            ..
        })
    ));
    let sent = t.sent();
    let [(
        Version::V1,
        Pdu::ErrorReport {
            code: ErrorCode::CorruptData,
            pdu,
            ..
        },
    )] = &sent[..]
    else {
        panic!("{sent:?}")
    };
    assert_eq!(pdu, &response);
    assert_eq!(t.c.vrps().count(), 0);
    assert_eq!(t.c.session(), None);
    // The next connection starts over.
    t.c.connection_closed(t.at(1800));
    t.open(2100);
    assert_eq!(t.sent(), [(Version::V1, Pdu::ResetQuery)]);
}

#[test]
fn reconnect_with_data_sends_serial_query() {
    let mut t = T::synced(&[a()]);
    t.c.connection_closed(t.at(5));
    assert_eq!(
        t.c.poll_timeout(),
        Some(t.at(3600)),
        "only Expire runs while closed"
    );
    t.open(300);
    assert_eq!(
        t.sent(),
        [(
            Version::V1,
            Pdu::SerialQuery {
                session_id: 7,
                serial: 1
            }
        )]
    );
}

/// A restarted cache (StayRTR 0.5.1) answers the Serial Query of its old session with a
/// fatal Error Report instead of Cache Reset (RFC 8210 section 5.9).
fn refused_serial_query(t: &mut T, at: u64) {
    t.open(at);
    let query = t.sent();
    assert_eq!(
        query,
        [(
            Version::V1,
            Pdu::SerialQuery {
                session_id: 7,
                serial: 1
            }
        )]
    );
    let report = Pdu::ErrorReport {
        code: ErrorCode::CorruptData,
        pdu: bytes(Version::V1, &[query[0].1.clone()]),
        text: "Session ID mismatch".into(),
    };
    t.feed_pdus(at, Version::V1, &[report]);
}

#[test]
fn refused_serial_query_forgets_the_session_and_resyncs_against_the_kept_table() {
    let mut t = T::synced(&[a(), b()]);
    t.c.connection_closed(t.at(10));
    refused_serial_query(&mut t, 20);
    let ev = t.events();
    assert_eq!(
        ev,
        [Event::Close(CloseReason::SessionRefused {
            code: ErrorCode::CorruptData,
            text: "Session ID mismatch".into()
        })]
    );
    let Event::Close(reason) = &ev[0] else {
        unreachable!()
    };
    assert!(reason.reconnect_at_once());
    assert!(t.sent().is_empty(), "no Error Report for an Error Report");
    assert_eq!(t.c.session(), None);
    assert_eq!(t.c.vrps().count(), 2, "the data stays in use");
    t.c.connection_closed(t.at(20));
    assert_eq!(
        t.c.poll_timeout(),
        Some(t.at(3600)),
        "Expire of serial 1 runs"
    );
    // The next connection starts over with a Reset Query ...
    t.open(20);
    assert_eq!(t.sent(), [(Version::V1, Pdu::ResetQuery)]);
    assert!(t.events().is_empty(), "no Reset: nothing was dropped");
    assert_eq!(t.c.vrps().count(), 2);
    // ... and the new session's whole table is reported relative to the kept one.
    t.feed_pdus(
        21,
        Version::V1,
        &[
            Pdu::CacheResponse { session_id: 8 },
            ann(c()),
            ann(b()),
            eod(8, 0),
        ],
    );
    assert_eq!(
        t.events(),
        [Event::Update {
            announced: vec![c()],
            withdrawn: vec![a()],
            serial: 0
        }]
    );
    assert_eq!(t.c.session(), Some((8, 0)));
    assert_eq!(t.c.poll_timeout(), Some(t.at(21 + 1800)), "Refresh");
    t.c.connection_closed(t.at(22));
    assert_eq!(t.c.poll_timeout(), Some(t.at(21 + 3600)), "Expire renewed");
}

#[test]
fn refused_session_data_still_expires() {
    let mut t = T::synced(&[a(), b()]);
    t.c.connection_closed(t.at(10));
    refused_serial_query(&mut t, 20);
    t.events();
    t.c.connection_closed(t.at(20));
    // The cache fails the Reset Query too: no session to forget, so no hurry.
    t.open(20);
    assert_eq!(t.sent(), [(Version::V1, Pdu::ResetQuery)]);
    let report = Pdu::ErrorReport {
        code: ErrorCode::InternalError,
        pdu: vec![],
        text: "broken".into(),
    };
    t.feed_pdus(20, Version::V1, &[report]);
    let ev = t.events();
    let [Event::Close(reason @ CloseReason::CacheError { .. })] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert!(!reason.reconnect_at_once());
    t.c.connection_closed(t.at(20));
    // Expire of the last End of Data (serial 1 at 0 s, 3600 s) still holds.
    t.c.handle_timeout(t.at(3599));
    assert!(t.events().is_empty());
    assert_eq!(t.c.vrps().count(), 2);
    t.c.handle_timeout(t.at(3600));
    assert_eq!(t.events(), [Event::Reset]);
    assert_eq!(t.c.vrps().count(), 0);
    assert_eq!(t.c.poll_timeout(), None);
}

#[test]
fn v0_downgrade_after_unsupported_version_error_report() {
    let mut t = T::new();
    t.open(0);
    assert_eq!(t.sent(), [(Version::V1, Pdu::ResetQuery)]);
    // StayRTR's real answer to a version it does not speak: v0 Error Report, code 4.
    t.feed(0, &data("v3_query.response.bin"));
    let ev = t.events();
    assert_eq!(ev, [Event::Close(CloseReason::Downgrade)]);
    let Event::Close(reason) = &ev[0] else {
        unreachable!()
    };
    assert!(reason.reconnect_at_once());
    assert!(t.sent().is_empty(), "no Error Report for an Error Report");
    assert_eq!(t.c.version(), Version::V0);
    t.c.connection_closed(t.at(0));
    t.open(0);
    let mut raw = Vec::new();
    while let Some(b) = t.c.poll_transmit() {
        raw.extend(b);
    }
    assert_eq!(raw, [0, 2, 0, 0, 0, 0, 0, 8], "RFC 6810 Reset Query");
    t.feed(1, &data("v0_reset.response.bin"));
    let ev = t.events();
    assert!(
        matches!(&ev[..], [Event::Update { announced, serial: 1, .. }] if announced.len() == 3)
    );
    // Version 0: the RFC 8210 section 6 defaults.
    assert_eq!(t.c.timing(), Timing::DEFAULT);
    assert_eq!(t.c.poll_timeout(), Some(t.at(1 + 3600)));
    t.c.handle_timeout(t.at(3601));
    let sent = t.sent();
    assert!(matches!(
        sent[..],
        [(Version::V0, Pdu::SerialQuery { serial: 1, .. })]
    ));
}

#[test]
fn v0_answer_to_reset_query_is_accepted() {
    // StayRTR -protocol 0 answering our version 1 Reset Query with version 0 data.
    let mut t = T::new();
    t.open(0);
    t.sent();
    t.feed(0, &data("v0_cache_v1_query.response.bin"));
    let ev = t.events();
    assert!(
        matches!(&ev[..], [Event::Update { announced, serial: 1, .. }] if announced.len() == 3),
        "{ev:?}"
    );
    assert_eq!(t.c.version(), Version::V0);
}

#[test]
fn v0_answer_to_serial_query_downgrades_and_reconnects() {
    let mut t = T::synced(&[a()]);
    t.c.connection_closed(t.at(1));
    t.open(2);
    t.sent();
    t.feed_pdus(2, Version::V0, &[Pdu::CacheResponse { session_id: 7 }]);
    assert_eq!(t.events(), [Event::Close(CloseReason::Downgrade)]);
    assert!(t.sent().is_empty());
    t.open(2);
    assert_eq!(t.sent(), [(Version::V0, Pdu::ResetQuery)]);
}

#[test]
fn other_version_after_negotiation_is_an_error() {
    let mut t = T::new();
    t.open(0);
    t.sent();
    t.feed_pdus(0, Version::V1, &[Pdu::CacheResponse { session_id: 7 }]);
    t.feed_pdus(0, Version::V0, &[ann(a())]);
    let sent = t.sent();
    assert!(matches!(
        sent[..],
        [(
            Version::V1,
            Pdu::ErrorReport {
                code: ErrorCode::UnexpectedProtocolVersion,
                ..
            }
        )]
    ));
    assert!(matches!(
        t.events()[..],
        [Event::Close(CloseReason::ProtocolError {
            code: ErrorCode::UnexpectedProtocolVersion,
            ..
        })]
    ));
}

#[test]
fn expire_drops_the_data() {
    let mut t = T::synced(&[a(), b()]);
    t.c.connection_closed(t.at(10));
    t.c.handle_timeout(t.at(3599));
    assert!(t.events().is_empty());
    t.c.handle_timeout(t.at(3600));
    assert_eq!(t.events(), [Event::Reset]);
    assert_eq!(t.c.vrps().count(), 0);
    assert_eq!(t.c.session(), None);
    assert_eq!(t.c.poll_timeout(), None);
    t.open(4000);
    assert_eq!(t.sent(), [(Version::V1, Pdu::ResetQuery)]);
}

#[test]
fn expire_while_a_query_is_in_flight_closes() {
    let mut t = T::synced(&[a()]);
    // Refresh at 1800 sends a query; the cache answers only the Cache Response.
    t.c.handle_timeout(t.at(1800));
    t.sent();
    t.feed_pdus(1800, Version::V1, &[Pdu::CacheResponse { session_id: 7 }]);
    // Retry (300 s) ends the query first.
    assert_eq!(t.c.poll_timeout(), Some(t.at(2100)));
    t.c.handle_timeout(t.at(2100));
    assert_eq!(t.events(), [Event::Close(CloseReason::Timeout)]);
    t.c.connection_closed(t.at(2100));
    // Reconnected, the query hangs again past Expire.
    t.open(3500);
    t.sent();
    t.c.handle_timeout(t.at(3600));
    assert_eq!(
        t.events(),
        [Event::Reset, Event::Close(CloseReason::Timeout)]
    );
}

#[test]
fn query_without_answer_times_out_after_retry() {
    let mut t = T::new();
    t.open(0);
    t.sent();
    assert_eq!(t.c.poll_timeout(), Some(t.at(600)), "default Retry");
    t.c.handle_timeout(t.at(599));
    assert!(t.events().is_empty());
    t.c.handle_timeout(t.at(600));
    assert_eq!(t.events(), [Event::Close(CloseReason::Timeout)]);
    assert_eq!(t.c.poll_timeout(), None);
}

#[test]
fn no_data_available_retries_on_the_same_connection() {
    let mut t = T::new();
    t.open(0);
    t.sent();
    let report = Pdu::ErrorReport {
        code: ErrorCode::NoDataAvailable,
        pdu: bytes(Version::V1, &[Pdu::ResetQuery]),
        text: "no data".into(),
    };
    t.feed_pdus(5, Version::V1, &[report]);
    assert!(t.events().is_empty());
    assert!(t.sent().is_empty());
    assert_eq!(t.c.poll_timeout(), Some(t.at(605)));
    t.c.handle_timeout(t.at(605));
    assert_eq!(t.sent(), [(Version::V1, Pdu::ResetQuery)]);
}

#[test]
fn fatal_error_report_from_cache_closes_without_answer() {
    let mut t = T::new();
    t.open(0);
    t.sent();
    let report = Pdu::ErrorReport {
        code: ErrorCode::InternalError,
        pdu: vec![],
        text: "oops".into(),
    };
    t.feed_pdus(
        0,
        Version::V1,
        &[report, Pdu::CacheResponse { session_id: 1 }],
    );
    assert_eq!(
        t.events(),
        [Event::Close(CloseReason::CacheError {
            code: ErrorCode::InternalError,
            text: "oops".into()
        })]
    );
    assert!(t.sent().is_empty());
    // A malformed Error Report is not answered either.
    let mut t = T::new();
    t.open(0);
    t.sent();
    t.feed(0, &[1, 10, 0, 3, 0, 0, 0, 16, 0, 0, 0, 9, 0, 0, 0, 0]);
    assert!(matches!(
        t.events()[..],
        [Event::Close(CloseReason::CacheError {
            code: ErrorCode::InvalidRequest,
            ..
        })]
    ));
    assert!(t.sent().is_empty());
}

/// Feeds `input` after a v1 Reset Query (and, if `in_response`, a Cache Response) and
/// expects an Error Report with `code` quoting `quoted`, and a close.
fn expect_protocol_error(in_response: bool, input: &[u8], code: ErrorCode, quoted: &[u8]) {
    let mut t = T::new();
    t.open(0);
    t.sent();
    if in_response {
        t.feed_pdus(
            0,
            Version::V1,
            &[Pdu::CacheResponse { session_id: 7 }, ann(a())],
        );
    }
    t.feed(0, input);
    let sent = t.sent();
    let [(
        Version::V1,
        Pdu::ErrorReport {
            code: got,
            pdu,
            text,
        },
    )] = &sent[..]
    else {
        panic!("{input:?}: {sent:?}")
    };
    assert_eq!((*got, &pdu[..]), (code, quoted), "{input:?}: {text}");
    assert!(!text.is_empty());
    assert!(matches!(
        &t.events()[..],
        [Event::Close(CloseReason::ProtocolError { code: c, .. })] if *c == code
    ));
    // Anything after the close is ignored.
    t.feed_pdus(
        0,
        Version::V1,
        &[Pdu::CacheResponse { session_id: 7 }, eod(7, 1)],
    );
    assert!(t.events().is_empty() && t.sent().is_empty());
    assert_eq!(t.c.vrps().count(), 0);
}

#[test]
fn malformed_or_misplaced_pdus_get_an_error_report_and_a_close() {
    use ErrorCode::*;
    // Bad prefix (max length below length).
    let bad = [
        1, 4, 0, 0, 0, 0, 0, 20, 1, 24, 16, 0, 10, 0, 0, 0, 0, 0, 0, 1,
    ];
    expect_protocol_error(true, &bad, CorruptData, &bad);
    // Absurd length: the header is quoted, the stream is lost.
    let huge = [1, 4, 0, 0, 0x10, 0, 0, 0, 1, 2, 3];
    expect_protocol_error(false, &huge, CorruptData, &huge[..8]);
    let short = [1, 3, 0, 0, 0, 0, 0, 4];
    expect_protocol_error(false, &short, CorruptData, &short);
    // Unknown type, type not for routers, unknown version.
    let unknown = [1, 42, 0, 0, 0, 0, 0, 8];
    expect_protocol_error(false, &unknown, UnsupportedPduType, &unknown);
    let query = bytes(Version::V1, &[Pdu::ResetQuery]);
    expect_protocol_error(false, &query, UnsupportedPduType, &query);
    let v2 = [2, 3, 0, 0, 0, 0, 0, 8];
    expect_protocol_error(false, &v2, UnsupportedProtocolVersion, &v2);
    // Duplicate announcement and withdrawal of unknown (RFC 8210 section 5.6).
    let dup = bytes(Version::V1, &[ann(a())]);
    expect_protocol_error(true, &dup, DuplicateAnnouncement, &dup);
    let unknown_wd = bytes(Version::V1, &[wd(b())]);
    expect_protocol_error(true, &unknown_wd, WithdrawalOfUnknownRecord, &unknown_wd);
    // Payload, End of Data or Cache Reset outside their place.
    let payload = bytes(Version::V1, &[ann(a())]);
    expect_protocol_error(false, &payload, CorruptData, &payload);
    let end = bytes(Version::V1, &[eod(7, 1)]);
    expect_protocol_error(false, &end, CorruptData, &end);
    let reset = bytes(Version::V1, &[Pdu::CacheReset]);
    expect_protocol_error(false, &reset, CorruptData, &reset);
    let key = bytes(
        Version::V1,
        &[Pdu::RouterKey {
            announce: true,
            ski: [1; 20],
            asn: 1,
            spki: vec![],
        }],
    );
    expect_protocol_error(false, &key, CorruptData, &key);
    let second_response = bytes(Version::V1, &[Pdu::CacheResponse { session_id: 7 }]);
    expect_protocol_error(true, &second_response, CorruptData, &second_response);
    // End of Data of another session than the Cache Response.
    let other = bytes(Version::V1, &[eod(8, 1)]);
    expect_protocol_error(true, &other, CorruptData, &other);
}

#[test]
fn router_keys_are_skipped() {
    let mut t = T::new();
    t.open(0);
    t.sent();
    let key = Pdu::RouterKey {
        announce: true,
        ski: [1; 20],
        asn: 64512,
        spki: vec![0x30; 91],
    };
    t.feed_pdus(
        0,
        Version::V1,
        &[
            Pdu::CacheResponse { session_id: 7 },
            key,
            ann(a()),
            eod(7, 1),
        ],
    );
    assert_eq!(
        t.events(),
        [Event::Update {
            announced: vec![a()],
            withdrawn: vec![],
            serial: 1
        }]
    );
}

/// The whole real v1 exchange, fed in two pieces split at `split` (or byte by byte).
fn run_split(chunks: &[&[u8]]) -> (Vec<Event>, Vec<(Version, Pdu)>) {
    let mut t = T::new();
    t.open(0);
    t.sent();
    for c in chunks {
        t.feed(0, c);
    }
    (t.events(), t.sent())
}

#[test]
fn bytes_split_at_every_offset() {
    let mut stream = data("v1_reset.response.bin");
    stream.extend(data("v1_notify.bin"));
    let whole = run_split(&[&stream]);
    assert_eq!(whole.0.len(), 1);
    assert_eq!(whole.1.len(), 1, "the Serial Query after the notify");
    for split in 0..=stream.len() {
        let (x, y) = stream.split_at(split);
        assert_eq!(run_split(&[x, y]), whole, "split at {split}");
    }
    let singles: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run_split(&singles), whole);
}

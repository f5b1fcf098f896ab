//! The feeder: a minimal BGP speaker (RFC 4271) that hands one receiver a pre-encoded
//! feed as fast as TCP takes it.
//!
//! What it is: one passive session on a listening socket: accept, OPEN with 4-octet AS
//! (RFC 6793) and multiprotocol IPv4 + IPv6 unicast (RFC 4760), KEEPALIVE, and once
//! Established the whole feed in one `write_all`, then KEEPALIVEs every hold time / 3 until
//! told to stop, then a Cease NOTIFICATION (RFC 4486 subcode 2, administrative shutdown).
//! A second thread reads whatever the receiver sends (KEEPALIVEs, an End-of-RIB, a
//! NOTIFICATION) so that its TCP window never closes, and reports a NOTIFICATION or the
//! connection's end. It tells the benchmark when the session came up (the start of the
//! clock) and when the last byte of the feed was handed to the kernel.
//!
//! What it is not: a BGP implementation. No FSM beyond the happy path, no collision
//! handling, no hold timer of its own (the receiver's is the one that matters), no
//! route processing of what the receiver sends. It refuses a receiver without 4-octet
//! AS support, because the feed is encoded for it.

use super::feed::CODEC;
use anyhow::{bail, Context, Result};
use rr_bgp::packet::{
    Capability, Codec, Message, Notification, Open, AFI_IPV4, AFI_IPV6, SAFI_UNICAST,
};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// The feeder's identity.
#[derive(Clone, Copy, Debug)]
pub struct FeederConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// Hold time offered in the OPEN (seconds).
    pub hold_time: u16,
}

/// What the feeder tells the benchmark while it runs.
#[derive(Debug)]
pub enum Event {
    /// Both OPENs and KEEPALIVEs exchanged; the first byte of the feed goes out right
    /// after `at`.
    Established { at: Instant },
    /// The whole feed was handed to the kernel's TCP at `at`.
    Sent { at: Instant },
    /// The session ended before the benchmark stopped it.
    Failed { why: String },
}

/// Reads one whole BGP message (RFC 4271 section 4.1: marker, length, type) from a
/// blocking stream; `Ok(None)` at a clean end of stream.
fn read_message(s: &mut impl Read, codec: &Codec) -> Result<Option<Message>> {
    let mut header = [0u8; rr_bgp::packet::HEADER_LEN];
    match s.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
    if !(rr_bgp::packet::HEADER_LEN..=codec.max_len()).contains(&len) {
        bail!("the receiver sent a message with length {len}");
    }
    let mut msg = header.to_vec();
    msg.resize(len, 0);
    s.read_exact(&mut msg[rr_bgp::packet::HEADER_LEN..])?;
    Ok(Some(Message::decode(&msg, codec)?))
}

fn send(s: &mut TcpStream, m: &Message, codec: &Codec) -> std::io::Result<()> {
    let mut out = Vec::new();
    m.encode(codec, &mut out);
    s.write_all(&out)
}

/// Our OPEN.
fn open(cfg: &FeederConfig) -> Message {
    Message::Open(Open {
        version: 4,
        asn: cfg.asn,
        hold_time: cfg.hold_time,
        router_id: cfg.router_id,
        capabilities: vec![
            Capability::Multiprotocol {
                afi: AFI_IPV4,
                safi: SAFI_UNICAST,
            },
            Capability::Multiprotocol {
                afi: AFI_IPV6,
                safi: SAFI_UNICAST,
            },
            Capability::RouteRefresh,
            Capability::FourOctetAs(cfg.asn),
        ],
    })
}

/// Accepts one receiver on `listener` (waiting at most `accept_timeout`), brings the
/// session up, sends `feed`, keeps the session alive until `stop`, then closes it.
/// Progress goes to `events`; an error before the feed is out is returned (and sent as
/// [`Event::Failed`]).
pub fn serve(
    listener: &TcpListener,
    cfg: &FeederConfig,
    feed: &[u8],
    accept_timeout: Duration,
    stop: &AtomicBool,
    events: &Sender<Event>,
) -> Result<()> {
    let r = session(listener, cfg, feed, accept_timeout, stop, events);
    if let Err(e) = &r {
        let _ = events.send(Event::Failed {
            why: format!("{e:#}"),
        });
    }
    r
}

fn session(
    listener: &TcpListener,
    cfg: &FeederConfig,
    feed: &[u8],
    accept_timeout: Duration,
    stop: &AtomicBool,
    events: &Sender<Event>,
) -> Result<()> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + accept_timeout;
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!("no receiver connected within {accept_timeout:?}");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).context("accepting the receiver"),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    send(&mut stream, &open(cfg), &Codec::INITIAL)?;
    let peer = match read_message(&mut stream, &Codec::INITIAL).context("waiting for OPEN")? {
        Some(Message::Open(o)) => o,
        Some(Message::Notification(n)) => bail!("the receiver refused: {}", n.describe()),
        other => bail!("expected OPEN, got {other:?}"),
    };
    if !peer
        .capabilities
        .iter()
        .any(|c| matches!(c, Capability::FourOctetAs(_)))
    {
        bail!("the receiver does not support 4-octet ASNs (RFC 6793)");
    }
    // RFC 4271 section 4.4: hold time is the smaller of the two; KEEPALIVE every third.
    let hold = cfg.hold_time.min(peer.hold_time);
    send(&mut stream, &Message::Keepalive, &CODEC)?;
    match read_message(&mut stream, &CODEC).context("waiting for KEEPALIVE")? {
        Some(Message::Keepalive) => {}
        Some(Message::Notification(n)) => bail!("the receiver refused: {}", n.describe()),
        other => bail!("expected KEEPALIVE, got {other:?}"),
    }
    stream.set_read_timeout(None)?;
    let mut reader = stream.try_clone()?;
    std::thread::scope(|s| {
        let events_r = events.clone();
        s.spawn(move || {
            // The receiver's KEEPALIVEs and End-of-RIB: read and dropped. A NOTIFICATION
            // or the end of the connection is reported unless we are shutting down.
            let why = loop {
                match read_message(&mut reader, &CODEC) {
                    Ok(Some(Message::Notification(n))) => {
                        break format!("the receiver sent NOTIFICATION: {}", n.describe())
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break "the receiver closed the connection".to_string(),
                    Err(e) => break format!("reading from the receiver: {e:#}"),
                }
            };
            if !stop.load(Ordering::Relaxed) {
                let _ = events_r.send(Event::Failed { why });
            }
        });
        let r = feed_and_wait(&mut stream, feed, hold, stop, events);
        if r.is_ok() {
            // RFC 4486: Cease, administrative shutdown.
            let cease = Message::Notification(Notification {
                code: rr_bgp::packet::error_code::CEASE,
                subcode: 2,
                data: Vec::new(),
            });
            let _ = send(&mut stream, &cease, &CODEC);
        }
        // Also ends the reader thread.
        let _ = stream.shutdown(Shutdown::Both);
        r
    })
}

/// Established: the feed, then KEEPALIVEs until `stop`.
fn feed_and_wait(
    stream: &mut TcpStream,
    feed: &[u8],
    hold: u16,
    stop: &AtomicBool,
    events: &Sender<Event>,
) -> Result<()> {
    let _ = events.send(Event::Established { at: Instant::now() });
    stream.write_all(feed).context("writing the feed")?;
    let _ = events.send(Event::Sent { at: Instant::now() });
    let keepalive = Duration::from_secs(u64::from(hold / 3).max(1));
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
        if hold > 0 && last.elapsed() >= keepalive {
            send(stream, &Message::Keepalive, &CODEC)?;
            last = Instant::now();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rr_bgp::packet::{Family, Update};
    use std::sync::mpsc;

    const CFG: FeederConfig = FeederConfig {
        asn: 4_242_420_002,
        router_id: Ipv4Addr::new(198, 18, 0, 1),
        hold_time: 240,
    };

    fn client_open(four_octet: bool) -> Message {
        let mut capabilities = vec![Capability::Multiprotocol {
            afi: AFI_IPV4,
            safi: SAFI_UNICAST,
        }];
        if four_octet {
            capabilities.push(Capability::FourOctetAs(4_242_420_001));
        }
        Message::Open(Open {
            version: 4,
            asn: if four_octet { 4_242_420_001 } else { 64_512 },
            hold_time: 90,
            router_id: Ipv4Addr::new(198, 18, 0, 2),
            capabilities,
        })
    }

    /// A receiver gets OPEN, KEEPALIVE, then exactly the feed's bytes, then (once the
    /// benchmark says stop) a Cease; the events come in order.
    #[test]
    fn a_receiver_gets_the_feed_byte_for_byte_then_a_cease() {
        let mut feed = Vec::new();
        for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            Message::Update(Update::end_of_rib(family)).encode(&CODEC, &mut feed);
        }
        // Bigger than a socket buffer, so the write really streams.
        let feed: Vec<u8> = feed.repeat(40_000);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let server =
                s.spawn(|| serve(&listener, &CFG, &feed, Duration::from_secs(10), &stop, &tx));
            let mut c = TcpStream::connect(addr).unwrap();
            let Some(Message::Open(o)) = read_message(&mut c, &Codec::INITIAL).unwrap() else {
                panic!("no OPEN");
            };
            assert_eq!(o.asn, CFG.asn);
            assert!(o.capabilities.contains(&Capability::FourOctetAs(CFG.asn)));
            assert!(o.capabilities.contains(&Capability::Multiprotocol {
                afi: AFI_IPV6,
                safi: SAFI_UNICAST
            }));
            send(&mut c, &client_open(true), &Codec::INITIAL).unwrap();
            send(&mut c, &Message::Keepalive, &CODEC).unwrap();
            assert_eq!(
                read_message(&mut c, &CODEC).unwrap(),
                Some(Message::Keepalive)
            );
            let mut got = vec![0u8; feed.len()];
            c.read_exact(&mut got).unwrap();
            assert!(got == feed, "the feed arrived altered");
            assert!(matches!(rx.recv().unwrap(), Event::Established { .. }));
            assert!(matches!(rx.recv().unwrap(), Event::Sent { .. }));
            stop.store(true, Ordering::Relaxed);
            let Some(Message::Notification(n)) = read_message(&mut c, &CODEC).unwrap() else {
                panic!("no NOTIFICATION");
            };
            assert_eq!((n.code, n.subcode), (6, 2));
            assert_eq!(read_message(&mut c, &CODEC).unwrap(), None);
            server.join().unwrap().unwrap();
        });
        assert!(rx.try_recv().is_err(), "an event after a clean stop");
    }

    /// The feed is encoded with 4-byte ASNs: a receiver without them is refused, and the
    /// benchmark is told why.
    #[test]
    fn a_receiver_without_four_octet_asns_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let server =
                s.spawn(|| serve(&listener, &CFG, &[], Duration::from_secs(10), &stop, &tx));
            let mut c = TcpStream::connect(addr).unwrap();
            assert!(matches!(
                read_message(&mut c, &Codec::INITIAL).unwrap(),
                Some(Message::Open(_))
            ));
            send(&mut c, &client_open(false), &Codec::INITIAL).unwrap();
            let err = server.join().unwrap().unwrap_err();
            assert!(format!("{err:#}").contains("4-octet"), "{err:#}");
        });
        assert!(matches!(rx.try_recv(), Ok(Event::Failed { why }) if why.contains("4-octet")));
    }

    /// Nobody connects: the feeder gives up after its timeout instead of hanging.
    #[test]
    fn no_receiver_is_an_error_after_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stop = AtomicBool::new(false);
        let (tx, _rx) = mpsc::channel();
        let t = Instant::now();
        let r = serve(&listener, &CFG, &[], Duration::from_millis(100), &stop, &tx);
        assert!(r.is_err());
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}

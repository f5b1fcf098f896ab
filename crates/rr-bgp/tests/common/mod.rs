//! Helpers shared by the integration tests: reading real captures (libpcap, pcapng),
//! MRT files (RFC 6396) and raw `.bgp` message files, cutting BGP messages out of TCP
//! byte streams, and the "canonical form" a message must re-encode to.
//!
//! What it is not: part of the codec. Everything here is written independently of
//! `rr_bgp::packet` (plain TLV walking), so that a test comparing the codec's output
//! with [`canonical`] compares two separate implementations.
#![allow(dead_code)] // each test binary uses a different part

use rr_bgp::packet::{self, Capability, Codec, Message};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// /work/shared/data, found relative to this crate.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// A file's bytes, gunzipped if the name ends in `.gz`.
pub fn read(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out
    } else {
        raw
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One TCP segment from a capture.
#[derive(Clone, Debug)]
pub struct Segment {
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    pub seq: u32,
    pub syn: bool,
    pub payload: Vec<u8>,
}

/// The TCP segments of a libpcap or pcapng capture, in capture order. Link types:
/// NULL (0, BSD loopback), EN10MB (1, with 802.1Q tags), RAW (101), C_HDLC (104),
/// LINUX_SLL (113). IPv4 and IPv6 (no extension headers).
pub fn tcp_segments(file: &[u8]) -> Vec<Segment> {
    let frames = if file.get(..4) == Some(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        pcapng_frames(file)
    } else {
        pcap_frames(file)
    };
    frames
        .iter()
        .filter_map(|(link, f)| link_payload(*link, f).and_then(ip_tcp))
        .collect()
}

/// (link type, frame) of a libpcap file (either byte order, µs or ns timestamps).
fn pcap_frames(file: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let magic = file.get(..4).expect("pcap header");
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        m => panic!("not a pcap file: magic {m:02x?}"),
    };
    let u32_at = |at: usize| {
        let b: [u8; 4] = file.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let link = u32_at(20).expect("pcap link type");
    let mut out = Vec::new();
    let mut at = 24;
    while let Some(incl) = u32_at(at + 8) {
        let start = at + 16;
        let Some(frame) = file.get(start..start + incl as usize) else {
            break;
        };
        out.push((link, frame.to_vec()));
        at = start + incl as usize;
    }
    out
}

/// (link type, frame) of a pcapng file: SHB, IDB, EPB and SPB blocks.
fn pcapng_frames(file: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut links = Vec::new();
    let mut le = true;
    let mut at = 0;
    while at + 12 <= file.len() {
        let raw = |o: usize| -> Option<[u8; 4]> { file.get(at + o..at + o + 4)?.try_into().ok() };
        let rd = |o: usize, le: bool| {
            raw(o).map(|b| {
                if le {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b)
                }
            })
        };
        let typ = rd(0, true).unwrap_or_default();
        if typ == 0x0a0d0d0a {
            le = raw(8) == Some([0x4d, 0x3c, 0x2b, 0x1a]);
            links.clear();
        }
        let Some(len) = rd(4, le).map(|l| l as usize).filter(|&l| l >= 12) else {
            break;
        };
        let body = file.get(at + 8..at + len - 4).unwrap_or_default();
        let r16 = |b: &[u8], o: usize| {
            let x: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
            Some(if le {
                u16::from_le_bytes(x)
            } else {
                u16::from_be_bytes(x)
            })
        };
        let r32 = |b: &[u8], o: usize| {
            let x: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
            Some(if le {
                u32::from_le_bytes(x)
            } else {
                u32::from_be_bytes(x)
            })
        };
        match rd(0, le).unwrap_or_default() {
            1 => links.push(u32::from(r16(body, 0).unwrap_or_default())),
            6 => {
                let iface = r32(body, 0).unwrap_or_default() as usize;
                let cap = r32(body, 12).unwrap_or_default() as usize;
                if let (Some(link), Some(data)) = (links.get(iface), body.get(20..20 + cap)) {
                    out.push((*link, data.to_vec()));
                }
            }
            3 => {
                let orig = r32(body, 0).unwrap_or_default() as usize;
                let data = body.get(4..).unwrap_or_default();
                if let Some(link) = links.first() {
                    out.push((
                        *link,
                        data.get(..orig.min(data.len()))
                            .unwrap_or_default()
                            .to_vec(),
                    ));
                }
            }
            _ => {}
        }
        at += len;
    }
    out
}

/// The IP packet inside a link-layer frame, as (is IPv6, bytes).
fn link_payload(link: u32, f: &[u8]) -> Option<(bool, &[u8])> {
    fn by_ethertype(t: u16, rest: &[u8]) -> Option<(bool, &[u8])> {
        match t {
            0x0800 => Some((false, rest)),
            0x86dd => Some((true, rest)),
            _ => None,
        }
    }
    match link {
        0 => {
            // BSD loopback: address family in the capturing host's byte order.
            let af = f.get(..4)?;
            let v = u32::from_le_bytes(af.try_into().ok()?)
                .min(u32::from_be_bytes(af.try_into().ok()?));
            match v {
                2 => Some((false, f.get(4..)?)),
                24 | 28 | 30 => Some((true, f.get(4..)?)),
                _ => None,
            }
        }
        1 => {
            let mut at = 12;
            let mut t = be16(f, at)?;
            while t == 0x8100 || t == 0x88a8 {
                at += 4;
                t = be16(f, at)?;
            }
            by_ethertype(t, f.get(at + 2..)?)
        }
        101 => Some((f.first()? >> 4 == 6, f)),
        104 => by_ethertype(be16(f, 2)?, f.get(4..)?),
        113 => by_ethertype(be16(f, 14)?, f.get(16..)?),
        _ => None,
    }
}

/// The TCP segment in an IP packet.
fn ip_tcp((v6, p): (bool, &[u8])) -> Option<Segment> {
    let (src, dst, tcp) = if v6 {
        if *p.get(6)? != 6 {
            return None;
        }
        let len = usize::from(be16(p, 4)?);
        let s: [u8; 16] = p.get(8..24)?.try_into().ok()?;
        let d: [u8; 16] = p.get(24..40)?.try_into().ok()?;
        (
            IpAddr::from(s),
            IpAddr::from(d),
            p.get(40..(40 + len).min(p.len()))?,
        )
    } else {
        let ihl = usize::from(p.first()? & 0x0f) * 4;
        if *p.get(9)? != 6 {
            return None;
        }
        let total = usize::from(be16(p, 2)?);
        let s: [u8; 4] = p.get(12..16)?.try_into().ok()?;
        let d: [u8; 4] = p.get(16..20)?.try_into().ok()?;
        // A frame cut by the snapshot length keeps what was captured.
        (
            IpAddr::from(s),
            IpAddr::from(d),
            p.get(ihl..total.min(p.len()))?,
        )
    };
    let doff = usize::from(tcp.get(12)? >> 4) * 4;
    Some(Segment {
        src: (src, be16(tcp, 0)?),
        dst: (dst, be16(tcp, 2)?),
        seq: be32(tcp, 4)?,
        syn: tcp.get(13)? & 0x02 != 0,
        payload: tcp.get(doff..)?.to_vec(),
    })
}

/// One direction of one TCP connection, reassembled by sequence number
/// (retransmitted bytes dropped).
#[derive(Clone, Debug)]
pub struct Stream {
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    pub bytes: Vec<u8>,
    /// Sequence gaps seen (bytes missing from the capture).
    pub gaps: usize,
}

/// The TCP streams to or from `ports`, in order of first appearance.
pub fn tcp_streams(segments: &[Segment], ports: &[u16]) -> Vec<Stream> {
    let mut streams: Vec<(Stream, Option<u32>)> = Vec::new();
    for s in segments {
        if !ports.contains(&s.src.1) && !ports.contains(&s.dst.1) {
            continue;
        }
        let i = match streams
            .iter()
            .position(|(t, _)| t.src == s.src && t.dst == s.dst)
        {
            Some(i) => i,
            None => {
                streams.push((
                    Stream {
                        src: s.src,
                        dst: s.dst,
                        bytes: Vec::new(),
                        gaps: 0,
                    },
                    None,
                ));
                streams.len() - 1
            }
        };
        let (t, next) = &mut streams[i];
        if s.syn {
            *next = Some(s.seq.wrapping_add(1));
        }
        if s.payload.is_empty() {
            continue;
        }
        let n = *next.get_or_insert(s.seq);
        let ahead = s.seq.wrapping_sub(n) as i32;
        if ahead > 0 {
            t.gaps += 1;
            t.bytes.extend_from_slice(&s.payload);
        } else {
            let skip = (-ahead) as usize;
            if let Some(tail) = s.payload.get(skip..) {
                t.bytes.extend_from_slice(tail);
            }
        }
        let end = s.seq.wrapping_add(s.payload.len() as u32);
        if (end.wrapping_sub(n) as i32) > 0 {
            *next = Some(end);
        }
    }
    streams.into_iter().map(|(t, _)| t).collect()
}

/// Both directions of one TCP connection, cut into messages, and the codec their
/// OPENs negotiate (2-byte ASNs, 4096-byte messages without both OPENs).
pub struct Session {
    pub codec: Codec,
    pub dirs: Vec<Vec<Vec<u8>>>,
}

/// The BGP sessions (TCP port 179 or 1179) of a capture file.
pub fn pcap_sessions(path: &Path) -> Vec<Session> {
    let segments = tcp_segments(&read(path));
    let streams = tcp_streams(&segments, &[179, 1179]);
    // (indexes of the streams, their messages)
    type Pairing = (Vec<usize>, Vec<Vec<Vec<u8>>>);
    let mut sessions: Vec<Pairing> = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        let (msgs, tail) = split_messages(&s.bytes);
        assert_eq!(tail, 0, "{}: incomplete last message", path.display());
        if msgs.is_empty() {
            continue;
        }
        let reverse = sessions.iter_mut().find(|(idx, _)| {
            idx.iter()
                .any(|&j| streams[j].src == s.dst && streams[j].dst == s.src)
        });
        match reverse {
            Some((idx, dirs)) => {
                idx.push(i);
                dirs.push(msgs);
            }
            None => sessions.push((vec![i], vec![msgs])),
        }
    }
    sessions
        .into_iter()
        .map(|(_, dirs)| {
            let opens: Vec<Vec<Capability>> = dirs
                .iter()
                .filter_map(|d| match Message::decode(d.first()?, &Codec::INITIAL) {
                    Ok(Message::Open(o)) => Some(o.capabilities),
                    _ => None,
                })
                .collect();
            let both = |f: &dyn Fn(&Capability) -> bool| {
                opens.len() == 2 && opens.iter().all(|caps| caps.iter().any(f))
            };
            let codec = Codec {
                four_octet_as: both(&|c| matches!(c, Capability::FourOctetAs(_))),
                extended_message: both(&|c| *c == Capability::ExtendedMessage),
            };
            Session { codec, dirs }
        })
        .collect()
}

/// Cuts a byte stream into messages with the codec's own [`packet::frame`]; returns
/// the messages and the length of an incomplete tail.
pub fn split_messages(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let codec = Codec {
        four_octet_as: true,
        extended_message: true,
    };
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match packet::frame(rest, &codec) {
            Ok(Some(n)) => {
                out.push(rest[..n].to_vec());
                rest = &rest[n..];
            }
            Ok(None) => break,
            Err(e) => panic!("framing error after {} messages: {e}", out.len()),
        }
    }
    (out, rest.len())
}

/// One BGP message from an MRT file.
#[derive(Clone, Debug)]
pub struct MrtMessage {
    /// BGP4MP subtype (1 MESSAGE, 4 MESSAGE_AS4, 6/7 LOCAL, 8-11 ADDPATH variants).
    pub subtype: u16,
    pub peer_as: u32,
    pub peer_ip: IpAddr,
    pub bgp: Vec<u8>,
}

impl MrtMessage {
    /// RFC 6396 4.4: the AS4 subtypes carry messages of 4-byte-AS sessions.
    pub fn four_octet_as(&self) -> bool {
        matches!(self.subtype, 4 | 7 | 9 | 11)
    }

    /// RFC 8050: the ADD-PATH subtypes carry NLRI with path identifiers.
    pub fn add_path(&self) -> bool {
        (8..=11).contains(&self.subtype)
    }
}

/// The BGP messages of BGP4MP (16) and BGP4MP_ET (17) records (RFC 6396 4.4).
pub fn mrt_messages(file: &[u8]) -> Vec<MrtMessage> {
    let mut out = Vec::new();
    let mut at = 0;
    while let (Some(typ), Some(sub), Some(len)) =
        (be16(file, at + 4), be16(file, at + 6), be32(file, at + 8))
    {
        let start = at + 12;
        let Some(mut body) = file.get(start..start + len as usize) else {
            break;
        };
        at = start + len as usize;
        if typ == 17 {
            body = &body[4..];
        }
        if !(typ == 16 || typ == 17) || !matches!(sub, 1 | 4 | 6..=11) {
            continue;
        }
        let as4 = matches!(sub, 4 | 7 | 9 | 11);
        let w = if as4 { 4 } else { 2 };
        let peer_as = if as4 {
            be32(body, 0).unwrap()
        } else {
            u32::from(be16(body, 0).unwrap())
        };
        let afi = be16(body, 2 * w + 2).unwrap();
        let a = 2 * w + 4;
        let (peer_ip, bgp) = if afi == 1 {
            let ip: [u8; 4] = body[a..a + 4].try_into().unwrap();
            (IpAddr::from(ip), &body[a + 8..])
        } else {
            let ip: [u8; 16] = body[a..a + 16].try_into().unwrap();
            (IpAddr::from(ip), &body[a + 32..])
        };
        out.push(MrtMessage {
            subtype: sub,
            peer_as,
            peer_ip,
            bgp: bgp.to_vec(),
        });
    }
    out
}

/// The messages of every `*.bgp` file in `dir` (raw messages back to back), by file
/// name; empty if the directory does not exist.
pub fn bgp_files(dir: &Path) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "bgp") {
            let (msgs, tail) = split_messages(&read(&p));
            assert_eq!(tail, 0, "{}: incomplete last message", p.display());
            out.insert(p.file_name().unwrap().to_string_lossy().into_owned(), msgs);
        }
    }
    out
}

/// Which normalizations [`canonical`] applied to a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Normalized {
    /// UPDATE attributes put in type-code order.
    pub reordered: bool,
    /// Extended-length flag dropped from values of at most 255 bytes (or set on longer ones).
    pub ext_len: bool,
    /// OPEN capabilities gathered into one optional parameter.
    pub regrouped: bool,
    /// Later copies of a repeated attribute dropped (RFC 7606 3 g).
    pub duplicate: bool,
    /// MP_REACH / MP_UNREACH of a family other than IPv4/IPv6 unicast dropped.
    pub other_family: bool,
    /// AS4_PATH / AS4_AGGREGATOR dropped on a 4-byte-AS session (RFC 6793 3).
    pub as4_on_new: bool,
    /// Partial bit cleared on an attribute the codec interprets.
    pub partial_known: bool,
    /// Repeated large communities dropped (RFC 8092 5).
    pub large_dup: bool,
    /// Host bits beyond a prefix length cleared.
    pub host_bits: bool,
    /// AGGREGATOR with AS 0 dropped (RFC 7607 2, RFC 7606 7.7).
    pub aggregator_as0: bool,
    /// OPEN "My AS" made consistent with the 4-octet AS capability (RFC 6793 4.1).
    pub open_as: bool,
}

/// Attribute codes the codec interprets (it re-encodes them with its own flags).
const KNOWN: [u8; 14] = [1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17, 18, 32];

/// The bytes `msg` should re-encode to: the same message with the encoding choices the
/// codec makes (attributes in type-code order, extended length only when needed, all
/// capabilities in one parameter) and the normalizations RFCs ask of a receiver (listed
/// in [`Normalized`]). Messages it cannot walk are returned unchanged.
pub fn canonical(msg: &[u8], four_octet_as: bool) -> (Vec<u8>, Normalized) {
    let mut n = Normalized::default();
    let out = match msg.get(18) {
        Some(1) => canonical_open(msg, &mut n),
        Some(2) => canonical_update(msg, four_octet_as, &mut n),
        _ => None,
    };
    (out.unwrap_or_else(|| msg.to_vec()), n)
}

fn with_header(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    m.push(typ);
    m.extend_from_slice(body);
    m
}

fn canonical_open(msg: &[u8], n: &mut Normalized) -> Option<Vec<u8>> {
    let body = msg.get(19..)?;
    let fixed = body.get(..9)?;
    let opt_len = usize::from(*body.get(9)?);
    let ext = opt_len > 0 && body.get(10) == Some(&255);
    let (params, hlen) = if ext {
        (body.get(13..13 + usize::from(be16(body, 11)?))?, 3)
    } else {
        (body.get(10..10 + opt_len)?, 2)
    };
    let mut caps = Vec::new();
    let mut count = 0;
    let mut at = 0;
    while at < params.len() {
        let typ = *params.get(at)?;
        let len = if ext {
            usize::from(be16(params, at + 1)?)
        } else {
            usize::from(*params.get(at + 1)?)
        };
        if typ != 2 {
            return None;
        }
        caps.extend_from_slice(params.get(at + hlen..at + hlen + len)?);
        at += hlen + len;
        count += 1;
    }
    let mut b = fixed.to_vec();
    // The codec takes the ASN from the 4-octet AS capability and writes AS_TRANS (or
    // the ASN itself, if small) in the 2-byte field.
    let mut c = 0;
    while c + 2 <= caps.len() {
        let (code, len) = (caps[c], usize::from(caps[c + 1]));
        if code == 65 && len == 4 {
            let asn = be32(&caps, c + 2)?;
            let two = u16::try_from(asn).unwrap_or(23456).to_be_bytes();
            if b[1..3] != two {
                b[1..3].copy_from_slice(&two);
                n.open_as = true;
            }
            break;
        }
        c += 2 + len;
    }
    if caps.is_empty() {
        b.push(0);
    } else if caps.len() + 2 <= 255 {
        b.extend_from_slice(&[(caps.len() + 2) as u8, 2, caps.len() as u8]);
        b.extend_from_slice(&caps);
    } else {
        b.extend_from_slice(&[255, 255]);
        b.extend_from_slice(&((caps.len() + 3) as u16).to_be_bytes());
        b.push(2);
        b.extend_from_slice(&(caps.len() as u16).to_be_bytes());
        b.extend_from_slice(&caps);
    }
    n.regrouped = count > 1 || (ext && caps.len() + 2 <= 255);
    Some(with_header(1, &b))
}

/// A prefix list with host bits cleared; `None` if it cannot be walked.
fn clean_prefixes(b: &[u8], max: usize, n: &mut Normalized) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut at = 0;
    while at < b.len() {
        let len = usize::from(b[at]);
        if len > max {
            return None;
        }
        let bytes = b.get(at + 1..at + 1 + len.div_ceil(8))?;
        out.push(b[at]);
        let mut v = bytes.to_vec();
        if len % 8 != 0 {
            if let Some(last) = v.last_mut() {
                let mask = 0xffu8 << (8 - len % 8);
                if *last & !mask != 0 {
                    n.host_bits = true;
                }
                *last &= mask;
            }
        }
        out.extend_from_slice(&v);
        at += 1 + len.div_ceil(8);
    }
    Some(out)
}

fn canonical_update(msg: &[u8], four_octet_as: bool, n: &mut Normalized) -> Option<Vec<u8>> {
    let body = msg.get(19..)?;
    let wlen = usize::from(be16(body, 0)?);
    let withdrawn = clean_prefixes(body.get(2..2 + wlen)?, 32, n)?;
    let alen = usize::from(be16(body, 2 + wlen)?);
    let attrs = body.get(4 + wlen..4 + wlen + alen)?;
    let nlri = clean_prefixes(body.get(4 + wlen + alen..)?, 32, n)?;
    let mut list: Vec<(u8, u8, Vec<u8>)> = Vec::new();
    let mut at = 0;
    let mut seen = [false; 256];
    let mut last = 0;
    while at < attrs.len() {
        let flags = *attrs.get(at)?;
        let code = *attrs.get(at + 1)?;
        let (len, h) = if flags & 0x10 != 0 {
            (usize::from(be16(attrs, at + 2)?), 4)
        } else {
            (usize::from(*attrs.get(at + 2)?), 3)
        };
        let value = attrs.get(at + h..at + h + len)?.to_vec();
        at += h + len;
        if (flags & 0x10 != 0) != (len > 255) {
            n.ext_len = true;
        }
        if seen[usize::from(code)] {
            n.duplicate = true;
            continue;
        }
        seen[usize::from(code)] = true;
        if code < last {
            n.reordered = true;
        }
        last = code;
        let mut flags = flags & 0xe0;
        if KNOWN.contains(&code) && flags & 0x20 != 0 {
            n.partial_known = true;
            flags &= !0x20;
        }
        match code {
            14 | 15 => {
                let afi = be16(&value, 0)?;
                let safi = *value.get(2)?;
                if !matches!((afi, safi), (1, 1) | (2, 1)) {
                    n.other_family = true;
                    continue;
                }
                let max = if afi == 1 { 32 } else { 128 };
                let (head, rest) = if code == 14 {
                    let nh = usize::from(*value.get(3)?);
                    value.split_at_checked(5 + nh)?
                } else {
                    value.split_at_checked(3)?
                };
                let mut v = head.to_vec();
                v.extend(clean_prefixes(rest, max, n)?);
                list.push((flags, code, v));
            }
            17 | 18 if four_octet_as => n.as4_on_new = true,
            7 if value
                .iter()
                .take(if four_octet_as { 4 } else { 2 })
                .all(|&b| b == 0) =>
            {
                n.aggregator_as0 = true;
            }
            32 => {
                let mut v = Vec::new();
                for lc in value.chunks(12) {
                    if v.chunks(12).any(|x| x == lc) {
                        n.large_dup = true;
                    } else {
                        v.extend_from_slice(lc);
                    }
                }
                list.push((flags, code, v));
            }
            _ => list.push((flags, code, value)),
        }
    }
    list.sort_by_key(|(_, code, _)| *code);
    let mut a = Vec::new();
    for (flags, code, v) in list {
        if v.len() > 255 {
            a.extend_from_slice(&[flags | 0x10, code]);
            a.extend_from_slice(&(v.len() as u16).to_be_bytes());
        } else {
            a.extend_from_slice(&[flags, code, v.len() as u8]);
        }
        a.extend_from_slice(&v);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    b.extend_from_slice(&withdrawn);
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(&nlri);
    Some(with_header(2, &b))
}

/// What happened to one message in a decode / re-encode round trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roundtrip {
    /// Re-encoded to the very same bytes.
    Identical,
    /// Re-encoded to the canonical form of the original (not the same bytes).
    Canonical(Normalized),
    /// A 2-byte-AS session's UPDATE with AS4_PATH: the codec merges it into the path
    /// (RFC 6793 4.2.3) and re-encodes AS4_PATH from the merged path (4.2.2), which
    /// differs from the original whenever an OLD speaker prepended itself. Only the
    /// decoded values are compared.
    As4Merged,
    /// Decoded as treat-as-withdraw: no byte comparison (the values are partial).
    TreatAsWithdraw(String),
}

/// True if the UPDATE `msg` carries attribute `code` (raw walk).
pub fn has_attribute(msg: &[u8], code: u8) -> bool {
    let Some(body) = msg.get(19..) else {
        return false;
    };
    let Some(wlen) = be16(body, 0).map(usize::from) else {
        return false;
    };
    let Some(alen) = be16(body, 2 + wlen).map(usize::from) else {
        return false;
    };
    let attrs = body.get(4 + wlen..4 + wlen + alen).unwrap_or_default();
    let mut at = 0;
    while at + 3 <= attrs.len() {
        if attrs[at + 1] == code {
            return true;
        }
        let (len, h) = if attrs[at] & 0x10 != 0 {
            (be16(attrs, at + 2).map_or(usize::MAX / 2, usize::from), 4)
        } else {
            (usize::from(attrs[at + 2]), 3)
        };
        at += h + len;
    }
    false
}

/// Decodes `msg`, re-encodes it, checks the re-encoding against [`canonical`] and
/// decodes it again to the same value. Returns the outcome or a description of the
/// failure.
pub fn roundtrip(msg: &[u8], codec: &Codec) -> Result<(Message, Roundtrip), String> {
    let m = Message::decode(msg, codec).map_err(|e| {
        format!(
            "decode failed: {e} ({}/{}) on {:02x?}",
            e.notification.code, e.notification.subcode, msg
        )
    })?;
    if let Message::Update(u) = &m {
        if let Some(why) = &u.treat_as_withdraw {
            return Ok((m.clone(), Roundtrip::TreatAsWithdraw(why.clone())));
        }
    }
    let mut out = Vec::new();
    m.encode(codec, &mut out);
    let (canon, n) = canonical(msg, codec.four_octet_as);
    let again = Message::decode(&out, codec).map_err(|e| format!("re-decode failed: {e}"))?;
    // An UPDATE whose only attributes were MP attributes of a family the codec ignores
    // decodes with empty (default) attributes; re-encoded, it has none at all.
    let mut expect = m.clone();
    if let Message::Update(u) = &mut expect {
        let ignored_only = u.mp_reach.is_none() && u.mp_unreach.is_none();
        if n.other_family && ignored_only && u.attrs == Some(Default::default()) {
            u.attrs = None;
        }
    }
    if again != expect {
        return Err(format!("re-decoded value differs:\n{m:?}\n{again:?}"));
    }
    if out == msg {
        return Ok((m, Roundtrip::Identical));
    }
    if out == canon {
        Ok((m, Roundtrip::Canonical(n)))
    } else if !codec.four_octet_as && has_attribute(msg, 17) {
        Ok((m, Roundtrip::As4Merged))
    } else {
        Err(format!(
            "re-encoding differs from the canonical form:\norig  {msg:02x?}\ncanon {canon:02x?}\nours  {out:02x?}\n{m:?}"
        ))
    }
}

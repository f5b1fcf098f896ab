//! A reader for the BGP messages inside an MRT file (RFC 6396): the BGP4MP and BGP4MP_ET
//! records that carry one captured message each (section 4.4), with the peer they came
//! from.
//!
//! What it is: enough of MRT to replay a captured UPDATE stream — the common header
//! (section 2), the extended-timestamp header (section 3) and the BGP4MP_MESSAGE /
//! BGP4MP_MESSAGE_AS4 records (sections 4.4.2 and 4.4.3, and the `_LOCAL` subtypes 6 and 7
//! of section 4.4). Every other record (state changes, RIB dumps, RFC 8050 ADD-PATH
//! messages) is skipped and counted.
//!
//! What it is not: a general MRT library. It does not decode the BGP message (that is
//! `rr_bgp::packet`), nor TABLE_DUMP / TABLE_DUMP_V2 RIB records. A truncated or
//! malformed record ends the walk with an error naming its offset; nothing panics on
//! bad input.

use anyhow::{bail, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// MRT type BGP4MP (RFC 6396 section 4.4).
const BGP4MP: u16 = 16;
/// MRT type BGP4MP_ET: BGP4MP with a microsecond timestamp after the header (section 3).
const BGP4MP_ET: u16 = 17;
/// BGP4MP subtypes carrying one BGP message (section 4.4): 2-byte AS fields (1, and 6
/// for a locally generated message) or 4-byte ones (4, and 7 local).
const MESSAGE: u16 = 1;
const MESSAGE_AS4: u16 = 4;
const MESSAGE_LOCAL: u16 = 6;
const MESSAGE_AS4_LOCAL: u16 = 7;

/// One captured BGP message and the peer of the captured session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Captured<'a> {
    /// The peer's AS, from the record (2-byte fields widened).
    pub peer_as: u32,
    /// The peer's address.
    pub peer_ip: IpAddr,
    /// The whole BGP message, marker and header included.
    pub message: &'a [u8],
}

/// What [`messages`] found in a file.
#[derive(Debug, Default)]
pub struct Walk<'a> {
    /// The BGP messages, in file order.
    pub messages: Vec<Captured<'a>>,
    /// Records of other types or subtypes (state changes, RIB entries, ...).
    pub skipped: usize,
}

/// Bytes `at..at + n` of `data`, or an error naming what was cut short.
fn take<'a>(data: &'a [u8], at: usize, n: usize, what: &str) -> Result<&'a [u8]> {
    match at.checked_add(n).and_then(|end| data.get(at..end)) {
        Some(s) => Ok(s),
        None => bail!(
            "MRT: {what} at byte {at} runs past the end ({} bytes)",
            data.len()
        ),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Every BGP message in an (uncompressed) MRT byte stream, in order.
pub fn messages(data: &[u8]) -> Result<Walk<'_>> {
    let mut walk = Walk::default();
    let mut at = 0;
    while at < data.len() {
        // RFC 6396 section 2: timestamp (4), type (2), subtype (2), length (4).
        let header = take(data, at, 12, "record header")?;
        let (Some(kind), Some(subtype), Some(len)) =
            (u16_at(header, 4), u16_at(header, 6), u32_at(header, 8))
        else {
            bail!("MRT: record header at byte {at} is short");
        };
        let body = take(data, at + 12, len as usize, "record body")?;
        let record_at = at;
        at += 12 + len as usize;
        let body = match kind {
            BGP4MP => body,
            // Section 3: the microsecond timestamp is counted in the length.
            BGP4MP_ET => match body.get(4..) {
                Some(b) => b,
                None => bail!("MRT: BGP4MP_ET record at byte {record_at} has no timestamp"),
            },
            _ => {
                walk.skipped += 1;
                continue;
            }
        };
        let as_len = match subtype {
            MESSAGE | MESSAGE_LOCAL => 2,
            MESSAGE_AS4 | MESSAGE_AS4_LOCAL => 4,
            _ => {
                walk.skipped += 1;
                continue;
            }
        };
        match parse_message(body, as_len) {
            Some(m) => walk.messages.push(m),
            None => bail!("MRT: BGP4MP message record at byte {record_at} is malformed"),
        }
    }
    Ok(walk)
}

/// RFC 6396 section 4.4.2 / 4.4.3: peer AS, local AS, interface index (2), address
/// family (2), peer IP, local IP (4 or 16 bytes each), then the BGP message.
fn parse_message(body: &[u8], as_len: usize) -> Option<Captured<'_>> {
    let peer_as = if as_len == 2 {
        u32::from(u16_at(body, 0)?)
    } else {
        u32_at(body, 0)?
    };
    let afi_at = 2 * as_len + 2;
    let afi = u16_at(body, afi_at)?;
    let ip_at = afi_at + 2;
    let (peer_ip, ip_len) = match afi {
        1 => {
            let b: [u8; 4] = body.get(ip_at..ip_at + 4)?.try_into().ok()?;
            (IpAddr::V4(Ipv4Addr::from(b)), 4)
        }
        2 => {
            let b: [u8; 16] = body.get(ip_at..ip_at + 16)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(b)), 16)
        }
        _ => return None,
    };
    let message = body.get(ip_at + 2 * ip_len..)?;
    Some(Captured {
        peer_as,
        peer_ip,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A BGP4MP_ET record around `payload` (already holding the BGP4MP fields).
    fn et_record(subtype: u16, payload: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&0x5629_94eeu32.to_be_bytes());
        r.extend_from_slice(&BGP4MP_ET.to_be_bytes());
        r.extend_from_slice(&subtype.to_be_bytes());
        r.extend_from_slice(&(payload.len() as u32 + 4).to_be_bytes());
        r.extend_from_slice(&123_456u32.to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    #[test]
    fn as4_message_record_over_ipv6() {
        let mut p = Vec::new();
        p.extend_from_slice(&4_242_420_002u32.to_be_bytes());
        p.extend_from_slice(&4_242_420_001u32.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 2]);
        let peer: Ipv6Addr = "fe80::1".parse().unwrap();
        p.extend_from_slice(&peer.octets());
        p.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let keepalive = [[0xffu8; 16].as_slice(), &[0, 19, 4]].concat();
        p.extend_from_slice(&keepalive);
        let data = et_record(MESSAGE_AS4, &p);
        let walk = messages(&data).unwrap();
        assert_eq!(walk.skipped, 0);
        assert_eq!(
            walk.messages,
            vec![Captured {
                peer_as: 4_242_420_002,
                peer_ip: IpAddr::V6(peer),
                message: &keepalive,
            }]
        );
    }

    /// The real capture: one OPEN (BGP4MP_MESSAGE, 2-byte AS fields), 89,679 UPDATEs and
    /// 2 KEEPALIVEs (BGP4MP_MESSAGE_AS4), all in BGP4MP_ET records, and 4 state changes;
    /// counts as its README gives them.
    #[test]
    fn the_real_capture() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data")
            .join(super::super::feed::MRT_FILE);
        let data = super::super::feed::gunzip(&path).unwrap();
        let walk = messages(&data).unwrap();
        assert_eq!(walk.skipped, 4);
        let kind = |t: u8| {
            walk.messages
                .iter()
                .filter(|m| m.message.get(18) == Some(&t))
                .count()
        };
        assert_eq!((kind(1), kind(2), kind(4)), (1, 89_679, 2));
        assert_eq!(walk.messages.len(), 89_682);
        let peer = IpAddr::V4(Ipv4Addr::new(206, 220, 231, 55));
        assert!(walk
            .messages
            .iter()
            .all(|m| m.peer_as == 3856 && m.peer_ip == peer));
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let mut p = vec![0x0f, 0x10, 0x0f, 0x10, 0, 0, 0, 1];
        p.extend_from_slice(&[206, 220, 231, 55, 10, 0, 0, 1]);
        p.extend_from_slice(&[0xff; 16]);
        let data = et_record(MESSAGE, &p);
        assert_eq!(messages(&data).unwrap().messages.len(), 1);
        for cut in 1..data.len() {
            assert!(messages(&data[..cut]).is_err(), "cut at {cut}");
        }
        // An address family that is neither 1 nor 2.
        let mut bad = p.clone();
        bad[7] = 9;
        assert!(messages(&et_record(MESSAGE, &bad)).is_err());
    }
}

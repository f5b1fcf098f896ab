//! Bytes to messages: framing, the message header, OPEN, NOTIFICATION, KEEPALIVE,
//! ROUTE-REFRESH and the outer structure of UPDATE (its path attributes are in
//! [`super::attrs`]).
//!
//! What it is: a [`Reader`] cursor that cannot read past its slice, and functions that
//! turn one whole message into a [`Message`] or a [`DecodeError`] carrying the
//! NOTIFICATION RFC 4271 section 6 asks for. Nothing here panics, whatever the bytes:
//! every read is checked, and no input-derived value is unwrapped.
//!
//! What it is not: a stream buffer (the caller keeps bytes until [`frame`] says a
//! message is complete) nor a session (what to do with a decoded message, or with an
//! error, is `session`'s business).

use super::{
    attrs, error_code, Capability, Codec, DecodeError, ExtendedNextHopEntry, Family, Message,
    Notification, Open, RouteRefresh, Update, HEADER_LEN, MAX_MESSAGE_LEN,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A cursor over a byte slice. Every read returns `None` instead of going past the end.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when everything was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next `n` bytes, or `None` (and nothing consumed) if fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n)?;
        self.buf = tail;
        Some(head)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    /// A big-endian u16.
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// A big-endian u32.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

/// A [`DecodeError`] for NOTIFICATION `code`/`subcode` with `data`.
pub(crate) fn error(
    code: u8,
    subcode: u8,
    data: Vec<u8>,
    reason: impl Into<String>,
) -> DecodeError {
    DecodeError {
        notification: Notification {
            code,
            subcode,
            data,
        },
        reason: reason.into(),
    }
}

/// Message type codes (RFC 4271 section 4.1, RFC 2918 section 3).
pub(crate) mod msg_type {
    pub(crate) const OPEN: u8 = 1;
    pub(crate) const UPDATE: u8 = 2;
    pub(crate) const NOTIFICATION: u8 = 3;
    pub(crate) const KEEPALIVE: u8 = 4;
    pub(crate) const ROUTE_REFRESH: u8 = 5;
}

/// Finds the first message in a byte stream.
///
/// Returns the total length of the message `buf` starts with once all of it is there,
/// `Ok(None)` while more bytes are needed, and an error for a header that can never
/// become a valid message (RFC 4271 section 6.1): a marker that is not all ones
/// (1/1 Connection Not Synchronized, detected as soon as a wrong byte arrives), a length
/// below 19, above `codec.max_len()` or wrong for the type (1/2 Bad Message Length, with
/// the length field as data), or an unknown type (1/3 Bad Message Type, with the type as
/// data). OPEN and KEEPALIVE are never longer than 4096 bytes, extended messages or not
/// (RFC 8654 section 4).
pub fn frame(buf: &[u8], codec: &Codec) -> Result<Option<usize>, DecodeError> {
    let marker = buf.get(..16).unwrap_or(buf);
    if marker.iter().any(|&b| b != 0xff) {
        return Err(error(
            error_code::MESSAGE_HEADER,
            1,
            Vec::new(),
            "message header marker is not all ones",
        ));
    }
    let mut r = Reader::new(buf);
    let (Some(_), Some(len_field), Some(typ)) = (r.take(16), r.array::<2>(), r.u8()) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes(len_field));
    let bad_len = |why: &str| {
        Err(error(
            error_code::MESSAGE_HEADER,
            2,
            len_field.to_vec(),
            format!("bad message length {len}: {why}"),
        ))
    };
    // Smallest and largest length for each type (RFC 4271 sections 4.2-4.5, RFC 2918 3).
    let (min, max) = match typ {
        msg_type::OPEN => (29, MAX_MESSAGE_LEN),
        msg_type::UPDATE => (23, codec.max_len()),
        msg_type::NOTIFICATION => (21, codec.max_len()),
        msg_type::KEEPALIVE => (HEADER_LEN, HEADER_LEN),
        msg_type::ROUTE_REFRESH => (23, codec.max_len()),
        _ => {
            return Err(error(
                error_code::MESSAGE_HEADER,
                3,
                vec![typ],
                format!("unknown message type {typ}"),
            ))
        }
    };
    if len < min {
        return bad_len(&format!("below {min} for message type {typ}"));
    }
    if len > max {
        return bad_len(&format!("above {max} for message type {typ}"));
    }
    Ok((buf.len() >= len).then_some(len))
}

/// Decodes one whole message, exactly as delimited by [`frame`].
pub(crate) fn message(bytes: &[u8], codec: &Codec) -> Result<Message, DecodeError> {
    match frame(bytes, codec)? {
        Some(len) if len == bytes.len() => {}
        _ => {
            let field = bytes.get(16..18).unwrap_or_default().to_vec();
            return Err(error(
                error_code::MESSAGE_HEADER,
                2,
                field,
                format!(
                    "length field does not match the {} bytes given",
                    bytes.len()
                ),
            ));
        }
    }
    let typ = bytes.get(18).copied().unwrap_or_default();
    let body = bytes.get(HEADER_LEN..).unwrap_or_default();
    match typ {
        msg_type::OPEN => open(body).map(Message::Open),
        msg_type::UPDATE => update(body, codec).map(Message::Update),
        msg_type::NOTIFICATION => Ok(Message::Notification(notification(body))),
        msg_type::KEEPALIVE => Ok(Message::Keepalive),
        _ => route_refresh(bytes).map(Message::RouteRefresh),
    }
}

/// RFC 4271 section 4.5: code, subcode, data (whatever is left).
fn notification(body: &[u8]) -> Notification {
    let mut r = Reader::new(body);
    Notification {
        code: r.u8().unwrap_or_default(),
        subcode: r.u8().unwrap_or_default(),
        data: r.rest().to_vec(),
    }
}

/// RFC 2918 section 3 (RFC 7313 section 3 names the third byte "subtype"). Anything but
/// exactly 4 bytes, ORF entries (RFC 5291, never negotiated here) included, is 7/1
/// Invalid Message Length (RFC 7313 section 5), with the message as data, as BIRD does.
fn route_refresh(whole: &[u8]) -> Result<RouteRefresh, DecodeError> {
    let body = whole.get(HEADER_LEN..).unwrap_or_default();
    let mut r = Reader::new(body);
    match (r.u16(), r.u8(), r.u8(), r.is_empty()) {
        (Some(afi), Some(subtype), Some(safi), true) => Ok(RouteRefresh { afi, subtype, safi }),
        _ => Err(error(
            error_code::ROUTE_REFRESH,
            1,
            whole.iter().copied().take(2048).collect(),
            format!("ROUTE-REFRESH of {} bytes instead of 4", body.len()),
        )),
    }
}

/// OPEN errors are code 2 (RFC 4271 section 6.2).
fn open_error(subcode: u8, data: Vec<u8>, reason: impl Into<String>) -> DecodeError {
    error(error_code::OPEN_MESSAGE, subcode, data, reason)
}

/// RFC 4271 section 4.2 with RFC 5492 capabilities and RFC 9072 extended parameters.
fn open(body: &[u8]) -> Result<Open, DecodeError> {
    let malformed = |why: &str| open_error(0, Vec::new(), format!("malformed OPEN: {why}"));
    let mut r = Reader::new(body);
    let (Some(version), Some(my_as), Some(hold_time), Some(id), Some(opt_len)) =
        (r.u8(), r.u16(), r.u16(), r.array::<4>(), r.u8())
    else {
        return Err(malformed("shorter than 10 bytes"));
    };
    // RFC 4271 6.2: the data is the largest version we support.
    if version != 4 {
        return Err(open_error(
            1,
            4u16.to_be_bytes().to_vec(),
            format!("unsupported BGP version {version}"),
        ));
    }
    let mut capabilities = Vec::new();
    // RFC 9072 section 2: a first parameter type of 255 announces 2-byte lengths.
    let extended = opt_len > 0 && body.get(10) == Some(&255);
    let params = if extended {
        let _ = r.u8();
        let len = r
            .u16()
            .ok_or_else(|| malformed("truncated extended parameters length"))?;
        r.take(usize::from(len))
    } else {
        r.take(usize::from(opt_len))
    }
    .ok_or_else(|| malformed("optional parameters overrun the message"))?;
    if !r.is_empty() {
        return Err(malformed("bytes after the optional parameters"));
    }
    let mut p = Reader::new(params);
    while !p.is_empty() {
        let header = p.remaining();
        let typ = p.u8();
        let len = if extended {
            p.u16()
        } else {
            p.u8().map(u16::from)
        };
        let (Some(typ), Some(len)) = (typ, len) else {
            return Err(malformed("truncated optional parameter header"));
        };
        let value = p
            .take(usize::from(len))
            .ok_or_else(|| malformed("optional parameter overruns the parameters"))?;
        if typ != 2 {
            // RFC 4271 6.2: data is the parameter (RFC 5492: only type 2 is in use).
            let start = params.len() - header;
            let raw = params.get(start..params.len() - p.remaining());
            return Err(open_error(
                4,
                raw.unwrap_or_default().to_vec(),
                format!("unsupported optional parameter type {typ}"),
            ));
        }
        capabilities_into(value, &mut capabilities)?;
    }
    // RFC 4271 4.2: zero, or at least three seconds.
    if hold_time == 1 || hold_time == 2 {
        return Err(open_error(
            6,
            hold_time.to_be_bytes().to_vec(),
            format!("unacceptable hold time {hold_time}"),
        ));
    }
    // RFC 6286 2.2: any non-zero 4-byte value.
    let router_id = Ipv4Addr::from(id);
    if router_id.is_unspecified() {
        return Err(open_error(3, id.to_vec(), "BGP identifier 0.0.0.0"));
    }
    // RFC 6793 4.1: the capability carries the real ASN, the 2-byte field AS_TRANS (or
    // the same ASN). Like BIRD, a disagreement is not an error: the capability wins.
    // RFC 7607 section 2: AS 0 in either place is Bad Peer AS.
    let four = capabilities.iter().find_map(|c| match c {
        Capability::FourOctetAs(asn) => Some(*asn),
        _ => None,
    });
    if my_as == 0 {
        return Err(open_error(2, my_as.to_be_bytes().to_vec(), "peer AS 0"));
    }
    let asn = match four {
        Some(0) => {
            return Err(open_error(
                2,
                vec![0; 4],
                "peer AS 0 in 4-octet AS capability",
            ))
        }
        Some(asn) => asn,
        None => u32::from(my_as),
    };
    Ok(Open {
        version,
        asn,
        hold_time,
        router_id,
        capabilities,
    })
}

/// The capabilities in one optional parameter of type 2 (RFC 5492 section 4); several
/// may share one parameter. A known capability with a malformed value is 2/0, as in BIRD.
fn capabilities_into(value: &[u8], out: &mut Vec<Capability>) -> Result<(), DecodeError> {
    let mut r = Reader::new(value);
    while !r.is_empty() {
        let (Some(code), Some(len)) = (r.u8(), r.u8()) else {
            return Err(open_error(0, Vec::new(), "truncated capability header"));
        };
        let v = r.take(usize::from(len)).ok_or_else(|| {
            open_error(
                0,
                Vec::new(),
                format!("capability {code} overruns its parameter"),
            )
        })?;
        let bad = || {
            open_error(
                0,
                Vec::new(),
                format!("capability {code} with a malformed value of {len} bytes"),
            )
        };
        let mut c = Reader::new(v);
        let cap = match code {
            // RFC 4760 section 8: AFI, reserved, SAFI.
            1 => match (c.u16(), c.u8(), c.u8(), c.is_empty()) {
                (Some(afi), Some(_), Some(safi), true) => Capability::Multiprotocol { afi, safi },
                _ => return Err(bad()),
            },
            // RFC 2918 section 2.
            2 if v.is_empty() => Capability::RouteRefresh,
            // RFC 8950 section 3: (AFI, SAFI, next hop AFI) triples of 2 bytes each.
            5 if v.len() % 6 == 0 => {
                let mut entries = Vec::with_capacity(v.len() / 6);
                while let (Some(afi), Some(safi), Some(nh_afi)) = (c.u16(), c.u16(), c.u16()) {
                    entries.push(ExtendedNextHopEntry { afi, safi, nh_afi });
                }
                Capability::ExtendedNextHop(entries)
            }
            // RFC 8654 section 3.
            6 if v.is_empty() => Capability::ExtendedMessage,
            // RFC 6793 section 3.
            65 => match (c.u32(), c.is_empty()) {
                (Some(asn), true) => Capability::FourOctetAs(asn),
                _ => return Err(bad()),
            },
            // RFC 7911 section 4: (AFI, SAFI, send/receive) of 4 bytes each.
            69 if v.len() % 4 == 0 => {
                let mut entries = Vec::with_capacity(v.len() / 4);
                while let (Some(afi), Some(safi), Some(sr)) = (c.u16(), c.u8(), c.u8()) {
                    entries.push((afi, safi, sr));
                }
                Capability::AddPath(entries)
            }
            2 | 5 | 6 | 69 => return Err(bad()),
            _ => Capability::Other(code, v.to_vec()),
        };
        out.push(cap);
    }
    Ok(())
}

/// UPDATE errors are code 3 (RFC 4271 section 6.3).
pub(crate) fn update_error(subcode: u8, data: Vec<u8>, reason: impl Into<String>) -> DecodeError {
    error(error_code::UPDATE_MESSAGE, subcode, data, reason)
}

/// RFC 4271 section 4.3, with the RFC 7606 error handling described in [`super::attrs`].
fn update(body: &[u8], codec: &Codec) -> Result<Update, DecodeError> {
    let overrun = |what: &str| {
        update_error(
            1,
            Vec::new(),
            format!("malformed attribute list: {what} overruns the message"),
        )
    };
    let mut r = Reader::new(body);
    let withdrawn_len = r.u16().ok_or_else(|| overrun("withdrawn routes length"))?;
    let withdrawn = r
        .take(usize::from(withdrawn_len))
        .ok_or_else(|| overrun("withdrawn routes"))?;
    let attrs_len = r
        .u16()
        .ok_or_else(|| overrun("total path attribute length"))?;
    let attr_bytes = r
        .take(usize::from(attrs_len))
        .ok_or_else(|| overrun("path attributes"))?;
    let withdrawn = prefixes_v4(withdrawn, "withdrawn routes")?;
    let parsed = attrs::parse(attr_bytes, codec)?;
    let nlri = prefixes_v4(r.rest(), "NLRI")?;

    let mut treat_as_withdraw = parsed.withdraw;
    // RFC 7606 3 (d): the mandatory attributes are only required with reachable NLRI.
    let classic = !nlri.is_empty();
    let mp = parsed.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty());
    if treat_as_withdraw.is_none() && (classic || mp) {
        let missing = if !parsed.seen.has(attrs::code::ORIGIN) {
            Some("ORIGIN")
        } else if !parsed.seen.has(attrs::code::AS_PATH) {
            Some("AS_PATH")
        } else if classic && !parsed.seen.has(attrs::code::NEXT_HOP) {
            Some("NEXT_HOP")
        } else {
            None
        };
        treat_as_withdraw = missing.map(|a| format!("missing mandatory attribute {a}"));
    }
    // RFC 7606 5.2 as BIRD applies it: an error that would withdraw, in an UPDATE that
    // announces nothing (no NLRI, no MP_REACH_NLRI of any family), resets the session.
    if let Some(why) = &treat_as_withdraw {
        if nlri.is_empty() && !parsed.seen.has(attrs::code::MP_REACH) {
            return Err(update_error(
                1,
                Vec::new(),
                format!("malformed attribute list in an UPDATE without NLRI: {why}"),
            ));
        }
    }
    Ok(Update {
        withdrawn,
        attrs: (!attr_bytes.is_empty()).then_some(parsed.attrs),
        mp_reach: parsed.mp_reach,
        mp_unreach: parsed.mp_unreach,
        nlri,
        treat_as_withdraw,
    })
}

/// RFC 7606 5.3: a syntax error in an NLRI field (prefix length too long, or running
/// past the field) cannot be contained: session reset, 3/10 Invalid Network Field.
fn invalid_network(field: &str, why: String) -> DecodeError {
    update_error(
        10,
        Vec::new(),
        format!("invalid network field in {field}: {why}"),
    )
}

/// The prefixes of an NLRI field (RFC 4271 4.3, RFC 4760 5): length in bits, then just
/// enough bytes. Host bits beyond the length are cleared (seen from real speakers).
fn prefixes<const N: usize>(bytes: &[u8], field: &str) -> Result<Vec<([u8; N], u8)>, DecodeError> {
    let mut out = Vec::new();
    let mut r = Reader::new(bytes);
    while let Some(len) = r.u8() {
        if usize::from(len) > N * 8 {
            return Err(invalid_network(
                field,
                format!("prefix length {len} above {}", N * 8),
            ));
        }
        let n = usize::from(len).div_ceil(8);
        let part = r
            .take(n)
            .ok_or_else(|| invalid_network(field, format!("a /{len} prefix runs past the end")))?;
        let mut addr = [0u8; N];
        for (a, b) in addr.iter_mut().zip(part) {
            *a = *b;
        }
        out.push((addr, len));
    }
    Ok(out)
}

/// IPv4 prefixes of the classic withdrawn routes or NLRI field.
pub(crate) fn prefixes_v4(bytes: &[u8], field: &str) -> Result<Vec<Ipv4Net>, DecodeError> {
    Ok(prefixes::<4>(bytes, field)?
        .into_iter()
        .filter_map(|(a, len)| super::net_v4(Ipv4Addr::from(a), len))
        .collect())
}

/// Prefixes of `family` in MP_REACH_NLRI / MP_UNREACH_NLRI.
pub(crate) fn prefixes_mp(
    bytes: &[u8],
    family: Family,
    field: &str,
) -> Result<Vec<IpNet>, DecodeError> {
    Ok(match family {
        Family::Ipv4Unicast => prefixes::<4>(bytes, field)?
            .into_iter()
            .filter_map(|(a, len)| super::net_v4(Ipv4Addr::from(a), len).map(IpNet::V4))
            .collect(),
        Family::Ipv6Unicast => prefixes::<16>(bytes, field)?
            .into_iter()
            .filter_map(|(a, len)| {
                super::net_v6(Ipv6Addr::from(a), len).map(|n: Ipv6Net| IpNet::V6(n))
            })
            .collect(),
    })
}

/// Words for a NOTIFICATION, in the style birdc prints them: the error code, then the
/// subcode (RFC 4271 4.5 and 6, RFC 4486 Cease subcodes, RFC 7313, RFC 8538, RFC 9234),
/// then for Administrative Shutdown / Reset the RFC 9003 shutdown communication in
/// quotes. Unknown values are shown as numbers.
pub(crate) fn describe_notification(n: &Notification) -> String {
    let code = match n.code {
        error_code::MESSAGE_HEADER => "Error in message header",
        error_code::OPEN_MESSAGE => "Error in OPEN message",
        error_code::UPDATE_MESSAGE => "Error in UPDATE message",
        error_code::HOLD_TIMER_EXPIRED => "Hold timer expired",
        error_code::FSM => "Finite state machine error",
        error_code::CEASE => "Cease",
        error_code::ROUTE_REFRESH => "Error in ROUTE-REFRESH message",
        c => return format!("Unknown error {c}.{}", n.subcode),
    };
    let sub = match (n.code, n.subcode) {
        (_, 0) => None,
        (1, 1) => Some("Connection not synchronized"),
        (1, 2) => Some("Bad message length"),
        (1, 3) => Some("Bad message type"),
        (2, 1) => Some("Unsupported version number"),
        (2, 2) => Some("Bad peer AS"),
        (2, 3) => Some("Bad BGP identifier"),
        (2, 4) => Some("Unsupported optional parameter"),
        (2, 5) => Some("Authentication failure"),
        (2, 6) => Some("Unacceptable hold time"),
        (2, 7) => Some("Unsupported capability"),
        (2, 11) => Some("Role mismatch"),
        (3, 1) => Some("Malformed attribute list"),
        (3, 2) => Some("Unrecognized well-known attribute"),
        (3, 3) => Some("Missing mandatory attribute"),
        (3, 4) => Some("Invalid attribute flags"),
        (3, 5) => Some("Invalid attribute length"),
        (3, 6) => Some("Invalid ORIGIN attribute"),
        (3, 7) => Some("AS routing loop"),
        (3, 8) => Some("Invalid NEXT_HOP attribute"),
        (3, 9) => Some("Optional attribute error"),
        (3, 10) => Some("Invalid network field"),
        (3, 11) => Some("Malformed AS_PATH"),
        (5, 1) => Some("Unexpected message in OpenSent state"),
        (5, 2) => Some("Unexpected message in OpenConfirm state"),
        (5, 3) => Some("Unexpected message in Established state"),
        (6, 1) => Some("Maximum number of prefixes reached"),
        (6, 2) => Some("Administrative shutdown"),
        (6, 3) => Some("Peer de-configured"),
        (6, 4) => Some("Administrative reset"),
        (6, 5) => Some("Connection rejected"),
        (6, 6) => Some("Other configuration change"),
        (6, 7) => Some("Connection collision resolution"),
        (6, 8) => Some("Out of resources"),
        (6, 9) => Some("Hard reset"),
        (6, 10) => Some("BFD down"),
        (7, 1) => Some("Invalid message length"),
        _ => None,
    };
    let mut s = match (sub, n.subcode) {
        (Some(sub), _) => format!("{code}: {sub}"),
        (None, 0) => code.to_string(),
        (None, s) => format!("{code}: subcode {s}"),
    };
    if let Some(text) = n.shutdown_communication() {
        s.push_str(&format!(": {text:?}"));
    }
    s
}

/// RFC 9003 section 2: for Cease / Administrative Shutdown (2) and Administrative Reset
/// (4), the data may be a length byte and that many bytes of UTF-8.
pub(crate) fn shutdown_communication(n: &Notification) -> Option<&str> {
    if n.code != error_code::CEASE || !(n.subcode == 2 || n.subcode == 4) {
        return None;
    }
    let mut r = Reader::new(&n.data);
    let len = r.u8()?;
    let text = r.take(usize::from(len))?;
    if len == 0 {
        return None;
    }
    std::str::from_utf8(text).ok()
}

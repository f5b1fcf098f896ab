//! IPv4 fragmentation (RFC 791 §2.3 "Fragmentation", §3.2 "fragmentation procedure";
//! RFC 1812 §5.2.6 / §4.2.2.7).
//!
//! What it is: splitting one valid IPv4 packet into fragments that each fit an MTU,
//! written one at a time into a reusable buffer and handed to a callback.
//!
//! What it is not: reassembly (a router never reassembles transit traffic), nor IPv6
//! fragmentation (IPv6 routers never fragment, RFC 8200 §5).

use super::wire::{checksum, Ipv4Header, IPV4_HEADER_LEN};

/// Why a packet could not be fragmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FragError {
    /// An option's length runs past the options area or is < 2 (RFC 791 §3.1 "Options").
    BadOptions,
    /// A fragment's offset would not fit the 13-bit field: the datagram is bogus.
    OffsetOverflow,
    /// The MTU cannot carry the header plus 8 bytes of data (RFC 791 requires MTU >= 68,
    /// which always suffices), or there is no payload to split.
    MtuTooSmall,
}

/// Maximum IPv4 options length (IHL 15 → 60 bytes, minus the fixed 20).
const MAX_OPTIONS: usize = 40;

/// The options that RFC 791 §3.1 says go into every fragment: those whose type has the
/// copied flag (bit 0x80) set, in their original order, padded with End of Option List
/// (zeros) to a multiple of 4 bytes. Returns the buffer and the padded length.
fn copied_options(options: &[u8]) -> Result<([u8; MAX_OPTIONS], usize), FragError> {
    let mut out = [0u8; MAX_OPTIONS];
    let mut len = 0;
    let mut i = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            // End of Option List: the rest is padding.
            0 => break,
            // No Operation: one byte, copied flag clear.
            1 => i += 1,
            _ => {
                let opt_len = usize::from(*options.get(i + 1).ok_or(FragError::BadOptions)?);
                let opt = options
                    .get(i..i + opt_len)
                    .filter(|_| opt_len >= 2)
                    .ok_or(FragError::BadOptions)?;
                if kind & 0x80 != 0 {
                    // Cannot overflow: the copied options are a subset of <= 40 bytes.
                    out[len..len + opt_len].copy_from_slice(opt);
                    len += opt_len;
                }
                i += opt_len;
            }
        }
    }
    Ok((out, len.div_ceil(4) * 4))
}

/// Splits `packet` (exactly one valid IPv4 packet described by `hdr`) into fragments of at
/// most `mtu` bytes, builds each into `buf` and calls `emit` with it. Returns the number of
/// fragments emitted. Nothing is emitted on error.
///
/// Per RFC 791: the first fragment keeps all options, the others only the copied ones;
/// every fragment but the last carries a multiple of 8 data bytes; the identification is
/// kept; offsets are added to the packet's own offset and MF is set on all fragments but
/// the last, which keeps the original MF (so fragmenting a fragment composes correctly).
/// DF is cleared in the fragments (the caller decided fragmenting is allowed).
pub(crate) fn fragment_v4(
    packet: &[u8],
    hdr: &Ipv4Header,
    mtu: usize,
    buf: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, FragError> {
    let hl = hdr.header_len;
    let (header, payload) = packet
        .get(..hdr.total_len)
        .filter(|p| p.len() >= hl)
        .map(|p| p.split_at(hl))
        .ok_or(FragError::MtuTooSmall)?;
    let (copied, copied_len) = copied_options(&header[IPV4_HEADER_LEN..])?;
    let rest_hl = IPV4_HEADER_LEN + copied_len;

    // Validate everything before emitting anything.
    let first_room = mtu.saturating_sub(hl) & !7;
    let rest_room = mtu.saturating_sub(rest_hl) & !7;
    if payload.is_empty() || first_room == 0 || rest_room == 0 {
        return Err(FragError::MtuTooSmall);
    }
    let last_start = if payload.len() <= first_room {
        0
    } else {
        first_room + (payload.len() - first_room - 1) / rest_room * rest_room
    };
    if usize::from(hdr.frag_offset) + last_start / 8 > 0x1FFF {
        return Err(FragError::OffsetOverflow);
    }

    let mut offset = 0;
    let mut count = 0;
    while offset < payload.len() {
        let (this_hl, room) = if offset == 0 {
            (hl, first_room)
        } else {
            (rest_hl, rest_room)
        };
        let chunk = room.min(payload.len() - offset);
        let last = offset + chunk == payload.len();

        buf.clear();
        if offset == 0 {
            buf.extend_from_slice(header);
        } else {
            buf.extend_from_slice(&header[..IPV4_HEADER_LEN]);
            buf.extend_from_slice(&copied[..copied_len]);
        }
        buf[0] = 0x40 | (this_hl / 4) as u8;
        // Cannot fail: this_hl + chunk <= mtu <= u16::MAX.
        let total = u16::try_from(this_hl + chunk).map_err(|_| FragError::MtuTooSmall)?;
        buf[2..4].copy_from_slice(&total.to_be_bytes());
        let units = usize::from(hdr.frag_offset) + offset / 8;
        let mf = !last || hdr.mf;
        // Checked above: units <= 0x1FFF.
        let field = (units as u16 & 0x1FFF) | if mf { 0x2000 } else { 0 };
        buf[6..8].copy_from_slice(&field.to_be_bytes());
        buf[10..12].copy_from_slice(&[0, 0]);
        let csum = checksum(&buf[..this_hl]);
        buf[10..12].copy_from_slice(&csum.to_be_bytes());
        buf.extend_from_slice(&payload[offset..offset + chunk]);
        emit(buf);
        count += 1;
        offset += chunk;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copied_options_filters_and_pads() {
        // NOP, Record Route (0x07, not copied, len 7), Router Alert (0x94, copied, len 4),
        // LSRR (0x83, copied, len 7), EOL.
        let opts = [
            1, 0x07, 7, 4, 0, 0, 0, 0, 0x94, 4, 0, 0, 0x83, 7, 4, 1, 2, 3, 4, 0,
        ];
        let (out, len) = copied_options(&opts).expect("valid");
        assert_eq!(len, 12);
        assert_eq!(&out[..12], &[0x94, 4, 0, 0, 0x83, 7, 4, 1, 2, 3, 4, 0]);
    }

    #[test]
    fn bad_options() {
        assert_eq!(copied_options(&[0x94]), Err(FragError::BadOptions));
        assert_eq!(copied_options(&[0x94, 1, 0, 0]), Err(FragError::BadOptions));
        assert_eq!(copied_options(&[0x94, 9, 0, 0]), Err(FragError::BadOptions));
        assert_eq!(copied_options(&[1, 1, 1, 0]).map(|(_, l)| l), Ok(0));
    }
}

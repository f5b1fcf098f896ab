#!/usr/bin/env python3
"""Extract BGP message streams from a packet capture (classic pcap, as `tcpdump -w` writes).

What it is: a small offline tool for making codec test vectors from real sessions. It
reassembles each TCP direction by sequence number (retransmissions and reordering are
tolerated; a hole in the stream is an error), splits the payload into BGP messages
(RFC 4271 section 4.1: 16-byte all-ones marker, 2-byte length 19..4096, or up to 65535
with RFC 8654 extended messages) and writes them back to back, starting at a message
boundary.

What it is not: a general pcap library. It reads link types Ethernet (1), raw IP
(101, 228, 229), Linux cooked v1 (113) and v2 (276); no pcapng, no IP fragments,
no VLAN stacks beyond one 802.1Q tag.

Usage:
  pcap_bgp_streams.py CAPTURE list
      one line per TCP connection direction: src -> dst, messages by type
  pcap_bgp_streams.py CAPTURE extract --src ADDR[:PORT] --dst ADDR[:PORT] -o OUT
      [--connection all|longest|N] [--types OPEN,UPDATE,...] [--max-bytes N]
      the connections from src to dst (default all, in capture order, concatenated;
      "longest": the one with the most messages, i.e. not a collision loser or a refused
      reconnect; N: the Nth, from 0), optionally only the named message types; fails if
      none matched or OUT would exceed --max-bytes.
"""
import argparse
import ipaddress
import struct
import sys

TYPES = {1: "OPEN", 2: "UPDATE", 3: "NOTIFICATION", 4: "KEEPALIVE", 5: "ROUTE-REFRESH"}


def read_pcap(path):
    """Yields (linktype, timestamp, frame bytes)."""
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            raise SystemExit(f"{path}: too short for a pcap header")
        magic = hdr[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            end = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            end = ">"
        else:
            raise SystemExit(f"{path}: not a classic pcap file (pcapng is not supported)")
        linktype = struct.unpack(end + "I", hdr[20:24])[0] & 0x0FFFFFFF
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _orig = struct.unpack(end + "IIII", rec)
            data = f.read(incl)
            if len(data) < incl:
                return
            yield linktype, sec + frac / 1e6, data


def l3_of(linktype, frame):
    """Returns (ethertype-ish version, l3 bytes) or None."""
    if linktype == 1:  # Ethernet
        if len(frame) < 14:
            return None
        etype = struct.unpack("!H", frame[12:14])[0]
        off = 14
        if etype == 0x8100 and len(frame) >= 18:
            etype = struct.unpack("!H", frame[16:18])[0]
            off = 18
        return etype, frame[off:]
    if linktype == 113:  # Linux cooked v1
        if len(frame) < 16:
            return None
        return struct.unpack("!H", frame[14:16])[0], frame[16:]
    if linktype == 276:  # Linux cooked v2
        if len(frame) < 20:
            return None
        return struct.unpack("!H", frame[0:2])[0], frame[20:]
    if linktype in (101, 228, 229):  # raw IP
        if not frame:
            return None
        v = frame[0] >> 4
        return (0x0800 if v == 4 else 0x86DD), frame
    return None


def tcp_of(etype, pkt):
    """Returns (src, dst, sport, dport, seq, flags, payload) or None."""
    if etype == 0x0800:
        if len(pkt) < 20 or pkt[9] != 6:
            return None
        ihl = (pkt[0] & 0x0F) * 4
        total = struct.unpack("!H", pkt[2:4])[0]
        frag = struct.unpack("!H", pkt[6:8])[0]
        if frag & 0x3FFF:
            return None  # fragments are not reassembled
        src, dst = ipaddress.ip_address(pkt[12:16]), ipaddress.ip_address(pkt[16:20])
        seg = pkt[ihl:total]
    elif etype == 0x86DD:
        if len(pkt) < 40 or pkt[6] != 6:
            return None  # extension headers are not walked
        plen = struct.unpack("!H", pkt[4:6])[0]
        src, dst = ipaddress.ip_address(pkt[8:24]), ipaddress.ip_address(pkt[24:40])
        seg = pkt[40:40 + plen]
    else:
        return None
    if len(seg) < 20:
        return None
    sport, dport, seq = struct.unpack("!HHI", seg[:8])
    doff = (seg[12] >> 4) * 4
    flags = seg[13]
    return src, dst, sport, dport, seq, flags, seg[doff:]


class Stream:
    """One direction of one TCP connection."""

    def __init__(self, key, isn, t):
        self.key = key
        self.isn = isn
        self.t = t
        self.segments = {}  # relative offset -> bytes

    def add(self, seq, payload):
        if not payload:
            return
        off = (seq - self.isn - 1) & 0xFFFFFFFF
        if off > 1 << 30:
            return  # data from before our SYN (should not happen)
        old = self.segments.get(off)
        if old is None or len(payload) > len(old):
            self.segments[off] = payload

    def data(self):
        out = bytearray()
        for off in sorted(self.segments):
            seg = self.segments[off]
            if off > len(out):
                raise ValueError(f"{fmt_key(self.key)}: hole in the stream at byte {len(out)}"
                                 f" (next segment at {off})")
            out += seg[len(out) - off:]
        return bytes(out)


def fmt_addr(a, p):
    return f"[{a}]:{p}" if a.version == 6 else f"{a}:{p}"


def fmt_key(key):
    return f"{fmt_addr(key[0], key[2])} -> {fmt_addr(key[1], key[3])}"


def streams_of(path):
    """All TCP connection directions that began with a SYN in the capture, in order."""
    open_streams = {}
    done = []
    for linktype, t, frame in read_pcap(path):
        l3 = l3_of(linktype, frame)
        if l3 is None:
            continue
        tcp = tcp_of(*l3)
        if tcp is None:
            continue
        src, dst, sport, dport, seq, flags, payload = tcp
        key = (src, dst, sport, dport)
        if flags & 0x02:  # SYN: a new connection direction
            if key in open_streams and open_streams[key].isn != seq:
                done.append(open_streams.pop(key))
            if key not in open_streams:
                open_streams[key] = Stream(key, seq, t)
            continue
        s = open_streams.get(key)
        if s is not None:
            s.add(seq, payload)
    done.extend(open_streams.values())
    done.sort(key=lambda s: s.t)
    return done


def split_messages(data, where):
    """BGP messages of a stream; a torn last message (capture cut off) is dropped."""
    msgs = []
    i = 0
    while i + 19 <= len(data):
        if data[i:i + 16] != b"\xff" * 16:
            raise ValueError(f"{where}: no BGP marker at byte {i}")
        length = struct.unpack("!H", data[i + 16:i + 18])[0]
        if length < 19:
            raise ValueError(f"{where}: bad BGP length {length} at byte {i}")
        if i + length > len(data):
            break
        msgs.append(data[i:i + length])
        i += length
    return msgs


def summary(msgs):
    counts = {}
    for m in msgs:
        name = TYPES.get(m[18], f"type{m[18]}")
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def parse_endpoint(s):
    """ADDR, ADDR:PORT, [V6]:PORT -> (ip, port or None)."""
    if s.startswith("["):
        a, _, rest = s[1:].partition("]")
        return ipaddress.ip_address(a.split("%")[0]), int(rest[1:]) if rest.startswith(":") else None
    if s.count(":") == 1:
        a, p = s.split(":")
        return ipaddress.ip_address(a), int(p)
    return ipaddress.ip_address(s.split("%")[0]), None


def matches(ep, addr, port):
    return ep[0] == addr and (ep[1] is None or ep[1] == port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    ex = sub.add_parser("extract")
    ex.add_argument("--src", required=True)
    ex.add_argument("--dst", required=True)
    ex.add_argument("-o", "--output", required=True)
    ex.add_argument("--connection", default="all")
    ex.add_argument("--types", default="", help="comma-separated message types to keep")
    ex.add_argument("--max-bytes", type=int, default=50_000)
    args = ap.parse_args()

    streams = [s for s in streams_of(args.capture) if s.segments]
    if args.cmd == "list":
        for s in streams:
            msgs = split_messages(s.data(), fmt_key(s.key))
            print(f"{fmt_key(s.key)}: {len(msgs)} messages ({summary(msgs)})")
        return 0

    src, dst = parse_endpoint(args.src), parse_endpoint(args.dst)
    keep = {t.strip().upper() for t in args.types.split(",") if t.strip()}
    unknown = keep - set(TYPES.values())
    if unknown:
        raise SystemExit(f"unknown message types: {', '.join(sorted(unknown))}")
    conns = [split_messages(s.data(), fmt_key(s.key)) for s in streams
             if matches(src, s.key[0], s.key[2]) and matches(dst, s.key[1], s.key[3])]
    if args.connection == "longest":
        conns = sorted(conns, key=len)[-1:]
    elif args.connection != "all":
        n = int(args.connection)
        conns = conns[n:n + 1]
    out = [m for c in conns for m in c]
    if keep:
        out = [m for m in out if TYPES.get(m[18]) in keep]
    if not out:
        raise SystemExit(f"no BGP messages from {args.src} to {args.dst}")
    blob = b"".join(out)
    if len(blob) > args.max_bytes:
        raise SystemExit(f"{len(blob)} bytes is more than --max-bytes {args.max_bytes}")
    with open(args.output, "wb") as f:
        f.write(blob)
    print(f"{args.output}: {len(blob)} bytes, {len(out)} messages ({summary(out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

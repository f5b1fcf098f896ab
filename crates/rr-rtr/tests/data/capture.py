#!/usr/bin/env python3
"""Capture real RTR sessions from StayRTR (Debian package `stayrtr`) into *.bin files.

Manual, test-only step; the tests read the committed .bin files and never run this.
See README.md in this folder for the exact commands.
"""
import json, os, socket, struct, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = "/tmp/rr-rtr-capture"
ROAS_A = [
    {"prefix": "172.20.4.128/26", "maxLength": 29, "asn": "AS4242420049"},
    {"prefix": "172.20.0.0/24", "maxLength": 28, "asn": "AS0"},
    {"prefix": "fd42:d42:d42::/48", "maxLength": 64, "asn": "AS4242422601"},
]
# B: one IPv4 ROA withdrawn, one IPv6 ROA announced.
ROAS_B = [ROAS_A[0], ROAS_A[2],
          {"prefix": "fdcf:8538:9ad5::/48", "maxLength": 64, "asn": "AS4242423914"}]


def write_roas(roas):
    tmp = os.path.join(WORK, "roas.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"roas": roas}, f)
    os.replace(tmp, os.path.join(WORK, "roas.json"))


def start(port, protocol):
    return subprocess.Popen(
        ["stayrtr", "-bind", f"127.0.0.1:{port}", "-cache", os.path.join(WORK, "roas.json"),
         "-checktime=false", "-refresh", "1", "-metrics.addr", "", "-protocol", str(protocol),
         "-rtr.refresh", "1800", "-rtr.retry", "300", "-rtr.expire", "3600"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(WORK, f"stayrtr{port}.log"), "w"))


def connect(port):
    for _ in range(50):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.1)
    sys.exit("stayrtr did not listen")


def read_pdus(sock, until_types):
    """Read whole PDUs until one whose type is in until_types; return the raw bytes."""
    data = b""
    while True:
        while len(data) >= 8:
            # walk complete PDUs
            off, last = 0, None
            while off + 8 <= len(data):
                (length,) = struct.unpack("!I", data[off + 4:off + 8])
                if off + length > len(data):
                    break
                last = data[off + 1]
                off += length
                if last in until_types:
                    return data[:off]
            break
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def save(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes")


def main():
    os.makedirs(WORK, exist_ok=True)
    write_roas(ROAS_A)
    v1 = start(8282, 1)
    v0 = start(8283, 0)
    time.sleep(1.5)
    try:
        # 1. RFC 8210 full sync: v1 Reset Query -> Cache Response, prefixes, End of Data.
        s = connect(8282)
        s.sendall(bytes([1, 2, 0, 0, 0, 0, 0, 8]))
        full = read_pdus(s, {7, 10})
        save("v1_reset.response.bin", full)
        eod = full[-24:]
        session, serial = struct.unpack("!H", eod[2:4])[0], struct.unpack("!I", eod[8:12])[0]
        # 2. Change the data: the cache sends Serial Notify; ask for the increment.
        write_roas(ROAS_B)
        notify = read_pdus(s, {0})
        save("v1_notify.bin", notify)
        query = bytes([1, 1]) + struct.pack("!HII", session, 12, serial)
        s.sendall(query)
        save("v1_serial.response.bin", read_pdus(s, {7, 8, 10}))
        s.close()
        # 3. RFC 6810 full sync from the same cache.
        s = connect(8282)
        s.sendall(bytes([0, 2, 0, 0, 0, 0, 0, 8]))
        save("v0_reset.response.bin", read_pdus(s, {7, 10}))
        s.close()
        # 4. A version 0 only cache answers a version 1 query.
        s = connect(8283)
        s.sendall(bytes([1, 2, 0, 0, 0, 0, 0, 8]))
        save("v0_cache_v1_query.response.bin", read_pdus(s, {7, 8, 10}))
        s.close()
        # 5. A protocol version the cache does not know (3).
        s = connect(8282)
        s.sendall(bytes([3, 2, 0, 0, 0, 0, 0, 8]))
        save("v3_query.response.bin", read_pdus(s, {10}))
        s.close()
    finally:
        v1.terminate()
        v0.terminate()
        write_roas(ROAS_A)


if __name__ == "__main__":
    main()

# shellcheck shell=bash
# Checks of the router process and its control CLI (t_30_dataplane.sh, t_40_endpoint.sh).

c_check_config() {
    echo "+ rootless-router check --config $1"
    as_uid 65534 timeout 10 "$RR_RUN_BIN" check --config "$1" 2>&1
}

c_unprivileged() {
    local st=/proc/$ROUTER_PID/status
    echo "pid $ROUTER_PID exe $(readlink "/proc/$ROUTER_PID/exe")"
    grep -E '^(Name|Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' "$st" || return 1
    [ "$(readlink "/proc/$ROUTER_PID/exe")" -ef "$RR_RUN_BIN" ] || { echo "pid is not the router binary"; return 1; }
    grep -Eq '^Uid:\s+65534\s+65534\s+65534\s+65534$' "$st" || { echo "not uid 65534"; return 1; }
    grep -Eq '^CapEff:\s+0000000000000000$' "$st" || { echo "CapEff is not 0"; return 1; }
    grep -Eq '^CapPrm:\s+0000000000000000$' "$st" || { echo "CapPrm is not 0"; return 1; }
}

c_no_tun() {
    local fds
    fds=$(ls -l "/proc/$ROUTER_PID/fd" 2>&1)
    echo "$fds" | awk '{ print $(NF-2), $(NF-1), $NF }'
    ! grep -q '/dev/net/tun' <<<"$fds"
}

c_udp_ports() {
    local out
    out=$(nsx "$NS_R" ss -Hulnp 2>&1)
    echo "$out"
    grep -E ":$R_PORT_A\b.*pid=$ROUTER_PID\b" <<<"$out" >/dev/null &&
        grep -E ":$R_PORT_B\b.*pid=$ROUTER_PID\b" <<<"$out" >/dev/null
}

c_forwarding_off() {
    local v4 v6
    v4=$(nsx "$NS_R" sysctl -n net.ipv4.ip_forward)
    v6=$(nsx "$NS_R" sysctl -n net.ipv6.conf.all.forwarding)
    echo "in the router namespace: net.ipv4.ip_forward=$v4 net.ipv6.conf.all.forwarding=$v6"
    [ "$v4" = 0 ] && [ "$v6" = 0 ]
}

# c_out_has OUTPUT STRINGS...: every fixed string occurs in OUTPUT.
c_out_has() {
    local out=$1 s ok=0
    shift
    for s in "$@"; do
        grep -qiF -- "$s" <<<"$out" || { echo "(missing: '$s')"; ok=1; }
    done
    return "$ok"
}

c_ctl_show_interfaces() {
    local out rc ok=0
    echo "+ rootless-router ctl show interfaces (uid 65534)"
    out=$(ctl show interfaces 2>&1)
    rc=$?
    echo "$out"
    [ "$rc" = 0 ] || { echo "(exit status $rc)"; ok=1; }
    c_out_has "$out" peer-a peer-b "$A_OUTER:$PEER_PORT" "${B_EP_EXPECT:-$B_OUTER:$PEER_PORT}" \
        "$R_PORT_A" "$R_PORT_B" handshake || ok=1
    # wg show style: the peer's public key (or at least the interface's own).
    if ! grep -qF "$A_PUB" <<<"$out" && ! grep -qF "$R_A_PUB" <<<"$out"; then
        echo "(no public key of peer-a's tunnel shown)"
        ok=1
    fi
    if grep -Eqi 'handshake:? *(\(none\)|never|-$)' <<<"$out"; then
        echo "(a peer shows no handshake)"
        ok=1
    fi
    return "$ok"
}

# json_peer_check FILE NAME ENDPOINT: some object in the JSON names NAME, mentions
# ENDPOINT, and has a non-empty field whose key contains "handshake".
json_peer_check() {
    "$PY" - "$@" <<'PYEOF'
import json, sys
data = json.load(open(sys.argv[1]))
name, endpoint = sys.argv[2], sys.argv[3]
def walk(o):
    if isinstance(o, dict):
        yield o
        for v in o.values(): yield from walk(v)
    elif isinstance(o, list):
        for v in o: yield from walk(v)
def strings(o):
    if isinstance(o, dict):
        for k, v in o.items(): yield str(k); yield from strings(v)
    elif isinstance(o, list):
        for v in o: yield from strings(v)
    else:
        yield str(o)
objs = [d for d in walk(data) if name in [v for v in d.values() if isinstance(v, str)]]
if not objs:
    sys.exit("no object with a field equal to %r" % name)
for d in objs:
    text = " ".join(strings(d))
    hs = [v for k, v in d.items() if "handshake" in k.lower()]
    if endpoint in text and any(v is not None and v is not False and v not in ("", "never") for v in hs):
        print("%s: endpoint %s and handshake %r" % (name, endpoint, hs))
        sys.exit(0)
sys.exit("%s: object(s) found but without endpoint %s and a non-empty *handshake* field: %s"
         % (name, endpoint, json.dumps(objs)[:2000]))
PYEOF
}

c_ctl_show_interfaces_json() {
    local f=$W/interfaces.json rc
    echo "+ rootless-router ctl show interfaces --json"
    ctl show interfaces --json >"$f" 2>"$W/ctl.err"
    rc=$?
    head -c 4000 "$f"
    echo
    cat "$W/ctl.err"
    [ "$rc" = 0 ] || { echo "(exit status $rc)"; return 1; }
    "$PY" -m json.tool "$f" >/dev/null || { echo "(not JSON)"; return 1; }
    json_peer_check "$f" peer-a "$A_OUTER:$PEER_PORT" &&
        json_peer_check "$f" peer-b "${B_EP_EXPECT:-$B_OUTER:$PEER_PORT}"
}

c_ctl_show_routes() {
    local out rc ok=0
    echo "+ rootless-router ctl show routes"
    out=$(ctl show routes 2>&1)
    rc=$?
    echo "$out"
    [ "$rc" = 0 ] || { echo "(exit status $rc)"; ok=1; }
    c_out_has "$out" 172.20.1.0/24 fd00:a::/48 172.20.2.0/24 fd00:b::/48 peer-a peer-b || ok=1
    return "$ok"
}

c_ctl_show_routes_json() {
    local f=$W/routes.json rc
    echo "+ rootless-router ctl show routes --json"
    ctl show routes --json >"$f" 2>"$W/ctl.err"
    rc=$?
    head -c 4000 "$f"
    echo
    cat "$W/ctl.err"
    [ "$rc" = 0 ] || { echo "(exit status $rc)"; return 1; }
    "$PY" -m json.tool "$f" >/dev/null || { echo "(not JSON)"; return 1; }
    c_out_has "$(cat "$f")" 172.20.1.0/24 fd00:a::/48 172.20.2.0/24 fd00:b::/48 peer-a peer-b
}

c_ctl_route_lookup() {
    local out rc ok=0 addr want other
    for addr in "$B_V4" "$B_V6" "$A_V4" "$A_V6"; do
        case $addr in
        "$B_V4" | "$B_V6") want=peer-b other=peer-a ;;
        *) want=peer-a other=peer-b ;;
        esac
        echo "+ rootless-router ctl route-lookup $addr"
        out=$(ctl route-lookup "$addr" 2>&1)
        rc=$?
        echo "$out"
        [ "$rc" = 0 ] || { echo "(exit status $rc)"; ok=1; }
        grep -qF "$want" <<<"$out" || { echo "(does not name $want)"; ok=1; }
        grep -qF "$other" <<<"$out" && { echo "(names $other too)"; ok=1; }
    done
    echo "+ rootless-router ctl route-lookup 172.20.9.9 (no route)"
    out=$(ctl route-lookup 172.20.9.9 2>&1)
    rc=$?
    echo "$out"
    echo "(exit status $rc)"
    grep -qE 'peer-a|peer-b' <<<"$out" && { echo "(names a tunnel for an unrouted address)"; ok=1; }
    return "$ok"
}

c_ctl_ping() {
    local before after out rc
    before=$(snmp "$NS_A" Icmp InEchos)
    echo "+ rootless-router ctl ping $A_V4 (a's kernel had received $before echo requests)"
    out=$(ctl ping "$A_V4" 2>&1)
    rc=$?
    echo "$out"
    after=$(snmp "$NS_A" Icmp InEchos)
    echo "(exit status $rc; a's kernel received $((after - before)) echo requests meanwhile)"
    [ "$rc" = 124 ] && echo "(ctl ping did not finish within 20 s)"
    [ "$rc" = 0 ] && [ "$after" -gt "$before" ] && grep -qF "$A_V4" <<<"$out"
}

c_ctl_traceroute() {
    local out rc
    echo "+ rootless-router ctl traceroute $B_V4"
    out=$(ctl traceroute "$B_V4" 2>&1)
    rc=$?
    echo "$out"
    echo "(exit status $rc)"
    [ "$rc" = 0 ] && grep -qF "$B_V4" <<<"$out"
}

# c_ctl_refuses UID: another uid (or root, who can open the 0600 socket) is refused
# with a message and a non-zero exit, and learns nothing.
c_ctl_refuses() {
    local uid=$1 out rc ok=0
    echo "+ rootless-router ctl show interfaces as uid $uid"
    if [ "$uid" = 0 ]; then
        out=$(timeout -k 2 20 "$RR_RUN_BIN" ctl --socket "$W/ctl.sock" show interfaces 2>&1)
    else
        out=$(as_uid "$uid" timeout -k 2 20 "$RR_RUN_BIN" ctl --socket "$W/ctl.sock" show interfaces 2>&1)
    fi
    rc=$?
    echo "$out"
    echo "(exit status $rc)"
    if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
        echo "(expected a prompt non-zero exit)"
        ok=1
    fi
    grep -Eqi 'denied|refus|permission|not allowed|forbidden|unauthori|uid|owner' <<<"$out" ||
        { echo "(no clear refusal message)"; ok=1; }
    grep -qF "$A_OUTER" <<<"$out" && { echo "(it was shown the interfaces)"; ok=1; }
    router_alive || { echo "(the router died)"; ok=1; }
    return "$ok"
}

c_garbage() {
    echo "+ garbage UDP datagrams from a to $R_OUTER_A:$R_PORT_A and :$R_PORT_B"
    ip netns exec "$NS_A" timeout 30 "$PY" - "$R_OUTER_A" "$R_PORT_A" "$R_PORT_B" <<'PYEOF' || return 1
import os, random, socket, struct, sys, time
dst, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
n = 0
def send(b, port):
    global n
    s.sendto(b, (dst, port)); n += 1
for port in ports:
    for size in (0, 1, 3, 4, 16, 31, 32, 33, 64, 92, 148, 149, 1500, 2000, 9000, 65000):
        send(os.urandom(size), port)
    for mtype, size in ((1, 148), (2, 92), (3, 64), (4, 32), (4, 16), (4, 100), (4, 1500)):
        send(struct.pack("<I", mtype) + os.urandom(size - 4), port)
    # data messages aimed at plausible receiver indices (peer slot in the high bits)
    for slot in range(4):
        for low in (0, 1, 0xff):
            idx = (slot << 8) | low
            send(struct.pack("<IIQ", 4, idx, random.getrandbits(64)) + os.urandom(64), port)
            send(struct.pack("<IIQ", 4, idx, 0) + os.urandom(1440), port)
    for mtype in (0, 5, 0xff, 0x01000000, 0xffffffff):
        send(struct.pack("<I", mtype) + os.urandom(60), port)
    for i in range(300):
        send(os.urandom(random.randrange(0, 1600)), port)
        if i % 50 == 0: time.sleep(0.01)
print("sent %d datagrams" % n)
PYEOF
    sleep 1
    router_alive || { echo "(the router died)"; return 1; }
    echo "+ the router is alive; ping across:"
    c_ping "$NS_A" -c 2 -W 2 "$B_V4" && c_ping "$NS_B" -6 -c 2 -W 2 "$A_V6" && c_ping "$NS_A" -c 2 -W 2 "$R_V4" &&
        router_alive
}

# c_bogus_inner: malformed IP packets written into a's wg0 (AF_PACKET), so that
# wireguard-go encrypts them and the router receives them inside an authenticated
# tunnel: each is dropped and counted (malformed, or rejected by the tunnel), nothing
# else changes, and traffic keeps flowing.
c_bogus_inner() {
    local before after
    before=$(ctl show interfaces --json | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(dict(d["counters"]["dropped"]).get("malformed", 0) + sum(i["rx_errors"] for i in d["interfaces"]))')
    echo "+ malformed + rejected before: $before"
    ip netns exec "$NS_A" timeout 20 "$PY" - "$B_V4" <<'PYEOF' || return 1
import socket, struct, sys
dst = socket.inet_aton(sys.argv[1])
src = socket.inet_aton("172.20.1.1")
def v4(ihl_words, total, csum_ok=True, body=b""):
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl_words, 0, total, 1, 0x4000, 64, 17, 0, src, dst)
    if csum_ok:
        s = sum(struct.unpack("!10H", h)); s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
        h = h[:10] + struct.pack("!H", ~s & 0xffff) + h[12:]
    return h + body
pkts = [
    v4(15, 28, body=b"\0" * 8),           # IHL says 60 bytes, total length 28
    v4(5, 28, csum_ok=False, body=b"x" * 8),  # header checksum wrong
    v4(3, 28, body=b"\0" * 8),            # IHL below 5
    v4(5, 900, body=b"y" * 8),             # total length beyond the packet
    v4(5, 19, body=b"z" * 8),              # total length shorter than the header
]
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
for p in pkts:
    for _ in range(3):
        s.sendto(p, ("wg0", 0x0800))
print("wrote %d malformed packets into wg0" % (3 * len(pkts)))
PYEOF
    sleep 1
    after=$(ctl show interfaces --json | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(dict(d["counters"]["dropped"]).get("malformed", 0) + sum(i["rx_errors"] for i in d["interfaces"]))')
    echo "+ malformed + rejected after: $after"
    router_alive || { echo "(the router died)"; return 1; }
    [ "$after" -ge $((before + 9)) ] || { echo "(expected at least 9 more drops counted)"; return 1; }
    c_ping "$NS_A" -c 2 -W 2 "$B_V4" && c_ping "$NS_A" -6 -c 2 -W 2 "$B_V6"
}

c_sigterm() {
    if ! router_alive; then
        router_reap
        echo "the router was not running any more ($RRT_ROUTER_DEATH)"
        return 1
    fi
    router_stop
    case $ROUTER_STOP_RESULT in
    "exited 0" | "exited 143" | "exited 130") return 0 ;;
    *) return 1 ;;
    esac
}

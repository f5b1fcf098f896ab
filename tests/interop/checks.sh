# shellcheck shell=bash
# Data-plane checks shared by the reference run (kernel + wireguard-go as the router,
# t_00_reference.sh) and the real one (rootless-router, t_30_dataplane.sh).
# Each c_* function prints what it ran and saw, and returns 0 for PASS.

# c_ping NS PING_ARGS...: up to 3 attempts of `ping ARGS` (the first packets may be
# spent on a WireGuard handshake); PASS when one attempt gets a reply.
c_ping() {
    local ns=$1 i
    shift
    for i in 1 2 3; do
        echo "+ ping $* (in ${ns##*-}, attempt $i)"
        to 20 ip netns exec "$ns" ping "$@" 2>&1 && return 0
        sleep 0.5
    done
    return 1
}

# c_ping_within SECONDS NS PING_ARGS...: keep trying `ping ARGS` until one gets a reply
# or SECONDS have passed (for events the peer itself takes time to notice).
c_ping_within() {
    local deadline=$((SECONDS + $1)) ns=$2 i=0
    shift 2
    while :; do
        i=$((i + 1))
        echo "+ ping $* (in ${ns##*-}, attempt $i, t=$SECONDS)"
        to 20 ip netns exec "$ns" ping "$@" 2>&1 | grep -v '^PING\|^$' && return 0
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}

# c_expect NS REGEX CMD...: run CMD in NS (a non-zero exit is fine), PASS when its
# output matches the extended, case-insensitive REGEX. Up to 2 attempts.
c_expect() {
    local ns=$1 re=$2 out i
    shift 2
    for i in 1 2; do
        echo "+ $* (in ${ns##*-}, attempt $i)"
        out=$(to 30 ip netns exec "$ns" "$@" 2>&1)
        echo "$out"
        if grep -Eqi -- "$re" <<<"$out"; then return 0; fi
        echo "(output does not match /$re/)"
        sleep 1
    done
    return 1
}

# c_traceroute NS HOP1 HOP2 ARGS...: hop 1 and hop 2 of `traceroute -n -q 1 ...`.
c_traceroute() {
    local ns=$1 h1=$2 h2=$3 out got1 got2 i
    shift 3
    for i in 1 2; do
        echo "+ traceroute -n -q 1 -w 2 -m 5 $* (in ${ns##*-}, attempt $i)"
        out=$(to 60 ip netns exec "$ns" traceroute -n -q 1 -w 2 -m 5 "$@" 2>&1)
        echo "$out"
        got1=$(awk '$1 == "1" { print $2 }' <<<"$out")
        got2=$(awk '$1 == "2" { print $2 }' <<<"$out")
        if [ "$got1" = "$h1" ] && [ "$got2" = "$h2" ]; then return 0; fi
        echo "(expected hop 1 = $h1 and hop 2 = $h2; got hop 1 = '$got1', hop 2 = '$got2')"
        sleep 1
    done
    return 1
}

# snmp NS GROUP FIELD: a counter from the namespace's /proc/net/snmp (e.g. Icmp InEchos).
snmp() {
    ip netns exec "$1" cat /proc/net/snmp | awk -v g="$2:" -v f="$3" '
        $1 == g && !hdr { for (i = 2; i <= NF; i++) col[$i] = i; hdr = 1; next }
        $1 == g && hdr { print $(col[f]); exit }'
}

# c_nodf_fragmented: a 1468-byte IPv4 ping without DF from a (wg0 MTU 1500) must get
# replies, and reach b's wg0 as fragments no bigger than peer-b's MTU (1420): the
# router fragmented it. A sniffer on b's wg0 sees the inner packets.
c_nodf_fragmented() {
    local sniff=$W/sniff.out rc=0
    ip -n "$NS_A" link set wg0 mtu 1500 || return 1
    rm -f "$W/sniff.stop"
    ip netns exec "$NS_B" timeout 30 "$PY" - "$A_V4" "$B_V4" "$W/sniff.stop" >"$sniff" 2>&1 <<'EOF' &
import os, socket, struct, sys, time
src, dst = socket.inet_aton(sys.argv[1]), socket.inet_aton(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0003))
s.bind(("wg0", 0))
s.settimeout(0.5)
print("ready", flush=True)
frags = whole_big = 0
maxlen = 0
end = time.time() + 25
while time.time() < end and not os.path.exists(sys.argv[3]):
    try:
        p = s.recv(65535)
    except socket.timeout:
        continue
    if len(p) < 20 or p[0] >> 4 != 4 or p[12:16] != src or p[16:20] != dst or p[9] != 1:
        continue
    fo = struct.unpack("!H", p[6:8])[0]
    if fo & 0x2000 or fo & 0x1fff:
        frags += 1
        maxlen = max(maxlen, len(p))
    elif len(p) > 1420:
        whole_big += 1
print("fragments=%d max_fragment_len=%d unfragmented_over_1420=%d" % (frags, maxlen, whole_big), flush=True)
EOF
    local spid=$!
    wait_until 5 grep -q ready "$sniff"
    echo "+ ping -c 3 -i 0.3 -W 2 -M dont -s 1440 $B_V4 (in a, wg0 mtu 1500)"
    to 20 ip netns exec "$NS_A" ping -c 3 -i 0.3 -W 2 -M dont -s 1440 "$B_V4" 2>&1 || rc=1
    [ "$rc" = 0 ] || echo "(no reply to an oversized ping without DF)"
    sleep 0.5
    touch "$W/sniff.stop"
    wait "$spid" 2>/dev/null
    ip -n "$NS_A" link set wg0 mtu 1420
    echo "+ inner packets a->b seen on b's wg0:"
    cat "$sniff"
    return "$rc"
}

# c_router_fragments: the stricter half of the no-DF check (needs the sniffer line).
c_router_fragments() {
    local sniff=$W/sniff.out line
    line=$(grep fragments= "$sniff" 2>/dev/null)
    echo "sniffer on b's wg0: ${line:-<no summary>}"
    [[ $line =~ fragments=([0-9]+)\ max_fragment_len=([0-9]+)\ unfragmented_over_1420=([0-9]+) ]] || return 1
    [ "${BASH_REMATCH[1]}" -gt 0 ] && [ "${BASH_REMATCH[2]}" -le 1420 ] && [ "${BASH_REMATCH[3]}" -eq 0 ]
}

# c_pmtu FAMILY: with a's wg0 at MTU 1500, a 1468/1488-byte DF ping toward b must be
# answered by the router's "fragmentation needed"/"packet too big" with mtu 1420,
# sourced from the router's address; then a ping that fits (1420 bytes) works.
c_pmtu() {
    local fam=$1 out rc=1 i
    ip -n "$NS_A" link set wg0 mtu 1500 || return 1
    for i in 1 2; do
        if [ "$fam" = 4 ]; then
            echo "+ ping -c 3 -i 0.3 -W 2 -M do -s 1440 $B_V4 (in a, wg0 mtu 1500, attempt $i)"
            out=$(to 20 ip netns exec "$NS_A" ping -c 3 -i 0.3 -W 2 -M "do" -s 1440 "$B_V4" 2>&1)
            echo "$out"
            if grep -Eqi 'mtu ?=? ?1420' <<<"$out" && grep -Eqi "from $R_V4 .*(frag|mtu)" <<<"$out"; then
                rc=0
                break
            fi
        else
            echo "+ ping -6 -c 3 -i 0.3 -W 2 -M do -s 1440 $B_V6 (in a, wg0 mtu 1500, attempt $i)"
            out=$(to 20 ip netns exec "$NS_A" ping -6 -c 3 -i 0.3 -W 2 -M "do" -s 1440 "$B_V6" 2>&1)
            echo "$out"
            if grep -Eqi 'mtu ?=? ?1420' <<<"$out" && grep -Eqi "from $R_V6 .*(too big|mtu)" <<<"$out"; then
                rc=0
                break
            fi
        fi
        echo "(expected an ICMP error from the router's address naming mtu 1420)"
        sleep 1
    done
    if [ "$rc" = 0 ]; then
        if [ "$fam" = 4 ]; then
            echo "+ a ping that fits: -M do -s 1392 (1420 bytes)"
            c_ping "$NS_A" -c 2 -W 2 -M "do" -s 1392 "$B_V4" || rc=1
        else
            echo "+ a ping that fits: -6 -M do -s 1372 (1420 bytes)"
            c_ping "$NS_A" -6 -c 2 -W 2 -M "do" -s 1372 "$B_V6" || rc=1
        fi
    fi
    ip -n "$NS_A" link set wg0 mtu 1420
    return "$rc"
}

# c_tcp_bulk FROM_NS TO_NS TO_ADDR MIB: a TCP stream through the router, checksummed.
c_tcp_bulk() {
    local from=$1 toh=$2 addr=$3 mib=$4 srv=$W/tcp-server.out cli spid
    ip netns exec "$toh" timeout 60 "$PY" - "$addr" >"$srv" 2>&1 <<'EOF' &
import hashlib, socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001))
s.listen(1)
s.settimeout(50)
print("listening", flush=True)
c, _ = s.accept()
c.settimeout(50)
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
print("received %d sha256 %s" % (n, h.hexdigest()), flush=True)
EOF
    spid=$!
    wait_until 10 grep -q listening "$srv" || { cat "$srv"; kill "$spid" 2>/dev/null; return 1; }
    echo "+ send $mib MiB over TCP from ${from##*-} to $addr:5001"
    cli=$(ip netns exec "$from" timeout 60 "$PY" - "$addr" "$mib" 2>&1 <<'EOF'
import hashlib, os, socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
data = os.urandom(int(sys.argv[2]) << 20)
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(50)
t = time.time()
s.connect((sys.argv[1], 5001))
s.sendall(data)
s.shutdown(socket.SHUT_WR)
s.recv(1)
dt = time.time() - t
print("sent %d sha256 %s in %.2f s (%.1f Mbit/s)" % (len(data), hashlib.sha256(data).hexdigest(), dt, len(data) * 8 / dt / 1e6))
EOF
    )
    echo "$cli"
    wait "$spid"
    cat "$srv"
    local sent got
    sent=$(awk '/^sent/ { print $2, $4 }' <<<"$cli")
    got=$(awk '/^received/ { print $2, $4 }' "$srv")
    [ -n "$sent" ] && [ "$sent" = "$got" ]
}

# c_closed_port PROTO ADDR: TCP to a closed port on the router's own address is
# refused (RST), UDP gets port unreachable (a connected socket sees ECONNREFUSED).
c_closed_port() {
    local proto=$1 addr=$2
    echo "+ $proto to [$addr]:9 from a (nothing listens there)"
    ip netns exec "$NS_A" timeout 15 "$PY" - "$proto" "$addr" <<'EOF'
import socket, sys
proto, addr = sys.argv[1], sys.argv[2]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
if proto == "tcp":
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(6)
    try:
        s.connect((addr, 9))
        print("connected?!"); sys.exit(1)
    except ConnectionRefusedError:
        print("connection refused (RST): ok"); sys.exit(0)
    except Exception as e:
        print("expected a refusal, got %r" % e); sys.exit(1)
else:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect((addr, 9))
    for i in range(3):
        try:
            s.send(b"hello")
            s.recv(100)
            print("got a UDP reply?!"); sys.exit(1)
        except ConnectionRefusedError:
            print("port unreachable (ECONNREFUSED): ok"); sys.exit(0)
        except socket.timeout:
            print("attempt %d: timeout" % i)
    sys.exit(1)
EOF
}

# Expected-output regexes for unreachable destinations.
RE_UNREACH4="from ${R_V4//./\\.} .*unreachable"
RE_UNREACH6="from $R_V6 .*unreachable"

# dataplane_checks: the checks from the issue that both routers must pass.
dataplane_checks() {
    run_check a_ping_router_v4 c_ping "$NS_A" -c 2 -W 2 "$R_V4"
    run_check a_ping_router_v6 c_ping "$NS_A" -6 -c 2 -W 2 "$R_V6"
    run_check a_ping_router_linklocal c_ping "$NS_A" -6 -c 2 -W 2 fe80::1%wg0
    # b never contacted the router: a->b needs a router-initiated handshake.
    run_check a_to_b_v4 c_ping "$NS_A" -c 2 -W 2 "$B_V4"
    run_check a_to_b_v6 c_ping "$NS_A" -6 -c 2 -W 2 "$B_V6"
    run_check b_to_a_v4 c_ping "$NS_B" -c 2 -W 2 "$A_V4"
    run_check b_to_a_v6 c_ping "$NS_B" -6 -c 2 -W 2 "$A_V6"
    run_check b_ping_router_linklocal c_ping "$NS_B" -6 -c 2 -W 2 fe80::1%wg0
    run_check b_ping_router_v4 c_ping "$NS_B" -c 2 -W 2 "$R_V4"
    run_check traceroute_v4 c_traceroute "$NS_A" "$R_V4" "$B_V4" "$B_V4"
    run_check traceroute_v6 c_traceroute "$NS_A" "$R_V6" "$B_V6" -6 "$B_V6"
    run_check unreachable_v4 c_expect "$NS_A" "$RE_UNREACH4" ping -c 1 -W 2 172.20.9.9
    run_check unreachable_v6 c_expect "$NS_A" "$RE_UNREACH6" ping -6 -c 1 -W 2 fd00:9::9
    run_check router_tcp_closed_port_refused c_closed_port tcp "$R_V4"
    run_check router_udp_closed_port_unreachable c_closed_port udp "$R_V6"
    run_check nodf_v4_oversized_ping_works c_nodf_fragmented
    run_check nodf_v4_router_fragments c_router_fragments
    run_check pmtu_v4_frag_needed_mtu_1420 c_pmtu 4
    run_check pmtu_v6_packet_too_big_mtu_1420 c_pmtu 6
    run_check tcp_bulk_a_to_b_v4 c_tcp_bulk "$NS_A" "$NS_B" "$B_V4" 16
    run_check tcp_bulk_b_to_a_v6 c_tcp_bulk "$NS_B" "$NS_A" "$A_V6" 16
}

#!/usr/bin/env bash
# The router's port gateways, used by programs that are NOT under exec:
# [[forward]]: a kernel listener on r's 127.0.0.1 leading to a DN42 address (TCP to
# v4 and v6 targets, UDP), used by curl, socat, python and a statically linked
# busybox wget (which no LD_PRELOAD shim could ever reach);
# [[expose]]: the router's DN42 addresses leading to servers on r's 127.0.0.1 (TCP
# on the v4 address and on [::], UDP on 0.0.0.0), used by the peers' own kernels.
# EXEC_RTR=ref: the same checks with the reference router and socat as the gateways.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/exec_lib.sh"

require_netns gateways_topology
require_tools ip wg wireguard-go ping setpriv nsenter unshare sysctl timeout curl sha256sum "$PY"
[ "$EXEC_RTR" = ref ] || require_router_bin
[ "$EXEC_RTR" = rr ] || require_tools socat

# Host ends in r (127.0.0.1) and router ends.
FWD_TCP=18080    # -> a's web server, v4
FWD_TCP_V6=18081 # -> b's web server, v6
FWD_UDP=18007    # -> a's echo
EXP_TCP=8088     # router v4 address -> 127.0.0.1:R_LOCAL_WEB_PORT
EXP_TCP_V6=8089  # [::] -> 127.0.0.1:R_LOCAL_WEB_PORT
EXP_UDP=7007     # 0.0.0.0 -> 127.0.0.1:LOCAL_ECHO
LOCAL_ECHO=17007

exec_init
exec_files
topo_up
peers_up yes
peer_servers

cat >"$W/gateways.toml" <<EOF
[[forward]]
name = "web-a"
protocol = "tcp"
listen = "127.0.0.1:$FWD_TCP"
connect = "$A_V4:$WEB_PORT"

[[forward]]
name = "web-b-v6"
protocol = "tcp"
listen = "127.0.0.1:$FWD_TCP_V6"
connect = "[$B_V6]:$WEB_PORT"

[[forward]]
name = "echo-a"
protocol = "udp"
listen = "127.0.0.1:$FWD_UDP"
connect = "$A_V4:$ECHO_PORT"

[[expose]]
name = "web-r"
protocol = "tcp"
listen = "$R_V4:$EXP_TCP"
connect = "127.0.0.1:$R_LOCAL_WEB_PORT"

[[expose]]
name = "web-r-v6"
protocol = "tcp"
listen = "[::]:$EXP_TCP_V6"
connect = "127.0.0.1:$R_LOCAL_WEB_PORT"

[[expose]]
name = "echo-r"
protocol = "udp"
listen = "0.0.0.0:$EXP_UDP"
connect = "127.0.0.1:$LOCAL_ECHO"
EOF
exec_router_up "$W/gateways.toml"

# The reference's gateways: socat relays in r's kernel.
if [ "$EXEC_RTR" = ref ]; then
    bg "$NS_R" socat-1 socat TCP4-LISTEN:$FWD_TCP,bind=127.0.0.1,reuseaddr,fork "TCP4:$A_V4:$WEB_PORT"
    bg "$NS_R" socat-2 socat TCP4-LISTEN:$FWD_TCP_V6,bind=127.0.0.1,reuseaddr,fork "TCP6:[$B_V6]:$WEB_PORT"
    bg "$NS_R" socat-3 socat UDP4-RECVFROM:$FWD_UDP,bind=127.0.0.1,fork "UDP4-SENDTO:$A_V4:$ECHO_PORT"
    bg "$NS_R" socat-4 socat TCP4-LISTEN:$EXP_TCP,bind=$R_V4,reuseaddr,fork "TCP4:127.0.0.1:$R_LOCAL_WEB_PORT"
    bg "$NS_R" socat-5 socat TCP6-LISTEN:$EXP_TCP_V6,bind="[$R_V6]",reuseaddr,fork "TCP4:127.0.0.1:$R_LOCAL_WEB_PORT"
    bg "$NS_R" socat-6 socat UDP4-RECVFROM:$EXP_UDP,bind=0.0.0.0,fork "UDP4-SENDTO:127.0.0.1:$LOCAL_ECHO"
fi

# The host's services behind [[expose]]: a web server and a UDP echo on r's loopback,
# as uid 65534, plain kernel sockets.
bg "$NS_R" local-web "${NOBODY[@]}" "$PY" -m http.server --bind 127.0.0.1 --directory "$W/www-r" "$R_LOCAL_WEB_PORT"
bg "$NS_R" local-echo "${NOBODY[@]}" "$PY" -c "$ECHO_PY" "$LOCAL_ECHO"
wait_tcp local-web "$NS_R" 127.0.0.1 "$R_LOCAL_WEB_PORT" || die "local web server in r did not start"
wait_tcp local-echo "$NS_R" 127.0.0.1 "$LOCAL_ECHO" || die "local echo server in r did not start"

# ---------------------------------------------------------------- [[forward]]

c_fwd_curl() { # PORT TOKEN
    expect_out "^$2\$" r_plain curl -sS --max-time 20 "http://127.0.0.1:$1/"
}

c_fwd_download() {
    local f=$W/out/fwd-big.bin
    echo "+ curl -o $f http://127.0.0.1:$FWD_TCP/big.bin (in r, no exec)"
    r_plain curl -sS --max-time 60 -o "$f" -w '%{size_download} bytes in %{time_total} s\n' \
        "http://127.0.0.1:$FWD_TCP/big.bin" 2>&1 || { echo "(curl failed)"; return 1; }
    expect_sha "$f" "$BIG_SHA"
}

c_fwd_parallel() { # 8 connections at once, each its own relayed connection
    local out n
    echo "+ 8 x curl http://127.0.0.1:$FWD_TCP/ at once (in r, no exec)"
    out=$(seq 8 | RX_TIMEOUT=40 r_plain xargs -P 8 -I{} curl -sS --max-time 20 "http://127.0.0.1:$FWD_TCP/?{}" 2>&1)
    echo "$out"
    n=$(grep -cx "$TOKEN_A" <<<"$out")
    echo "($n of 8 answered)"
    [ "$n" = 8 ]
}

c_fwd_udp_socat() {
    local tok=rrt-fwd-udp-$RANDOM out
    echo "+ printf $tok | socat -t 2 - UDP4:127.0.0.1:$FWD_UDP (in r, no exec)"
    out=$(printf '%s' "$tok" | r_plain socat -t 2 - "UDP4:127.0.0.1:$FWD_UDP" 2>&1)
    echo "$out (exit status $?)"
    [ "$out" = "$tok" ]
}

c_fwd_udp_two_clients() { # two client sockets = two flows, each gets its own echoes
    expect_out "^ok 6$" r_plain "$PY" -c '
import socket, sys
port = int(sys.argv[1])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
ok = 0
for rnd in range(3):
    for i, s in enumerate(socks):
        s.settimeout(3)
        msg = b"flow-%d-round-%d" % (i, rnd)
        s.sendto(msg, ("127.0.0.1", port))
        try:
            d, a = s.recvfrom(2048)
        except socket.timeout:
            print("flow", i, "round", rnd, "timed out")
            continue
        print("flow", i, "got", d, "from", a)
        ok += d == msg and a == ("127.0.0.1", port)
print("ok", ok)' "$FWD_UDP"
}

c_fwd_static_busybox() { # (no -T: busybox 1.35's static wget crashes with it)
    local RX_TIMEOUT=20
    expect_out "^$TOKEN_A\$" r_plain busybox wget -q -O - "http://127.0.0.1:$FWD_TCP/"
}

run_check forward_tcp c_fwd_curl "$FWD_TCP" "$TOKEN_A"
run_check forward_tcp_to_v6_target c_fwd_curl "$FWD_TCP_V6" "$TOKEN_B"
run_check forward_tcp_20mb_sha256 c_fwd_download
run_check forward_tcp_8_parallel c_fwd_parallel
check_if_tools forward_udp_socat socat c_fwd_udp_socat
run_check forward_udp_two_clients c_fwd_udp_two_clients
if ! command -v busybox >/dev/null; then
    skip forward_tcp_static_busybox_wget "busybox is not installed (.ci/run installs busybox-static)"
elif ldd "$(command -v busybox)" >/dev/null 2>&1; then
    skip forward_tcp_static_busybox_wget "$(command -v busybox) is dynamically linked (install busybox-static)"
else
    run_check forward_tcp_static_busybox_wget c_fwd_static_busybox
fi

# ---------------------------------------------------------------- [[expose]]

c_exp_curl() { # NS URL [CURL_ARGS...]
    local ns=$1 url=$2
    shift 2
    expect_out "^$TOKEN_R\$" nsx "$ns" curl -sS --max-time 20 "$@" "$url"
}

c_exp_download() {
    local f=$W/exp-big.bin
    echo "+ curl -o $f http://$R_V4:$EXP_TCP/big.bin (in a)"
    nsx "$NS_A" curl -sS --max-time 50 -o "$f" -w '%{size_download} bytes in %{time_total} s\n' \
        "http://$R_V4:$EXP_TCP/big.bin" 2>&1 || { echo "(curl failed)"; return 1; }
    expect_sha "$f" "$BIG_SHA"
}

c_exp_udp() { # NS ADDR
    expect_out "^ok 3$" nsx "$1" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
ok = 0
for i in range(3):
    msg = b"expose-udp-%d" % i
    s.sendto(msg, (sys.argv[1], int(sys.argv[2])))
    try:
        d, a = s.recvfrom(2048)
    except socket.timeout:
        print("no answer to", msg)
        continue
    print("got", d, "from", a[:2])
    ok += d == msg and a[0] == sys.argv[1] and a[1] == int(sys.argv[2])
print("ok", ok)' "$2" "$EXP_UDP"
}

run_check expose_tcp_v4_from_a c_exp_curl "$NS_A" "http://$R_V4:$EXP_TCP/"
run_check expose_tcp_v6_wildcard_from_b c_exp_curl "$NS_B" "http://[$R_V6]:$EXP_TCP_V6/" -g
run_check expose_tcp_20mb_sha256 c_exp_download
run_check expose_udp_from_a c_exp_udp "$NS_A" "$R_V4"
run_check expose_udp_from_b c_exp_udp "$NS_B" "$R_V4"

if [ "$EXEC_RTR" = rr ]; then
    run_check router_alive_at_end router_alive
fi

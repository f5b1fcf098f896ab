#!/usr/bin/env bash
# `rootless-router exec`: unmodified programs run as the router's user (uid 65534, no
# capabilities) in the router's namespace — whose kernel has no route to DN42 — use
# the router's network through the shim. Clients (curl, wget, python, nc, dig, ping,
# ssh, iperf3) reach real servers in the peers' namespaces; servers (python
# http.server, nginx with forked workers, iperf3 -s, an unprivileged sshd) are reached
# from the peers' kernels over the tunnels and from loopback; exec refuses to start
# the program without a router or for another uid.
# EXEC_RTR=ref: the same checks against the reference (see exec_lib.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/exec_lib.sh"

require_netns exec_topology
require_tools ip wg wireguard-go ping setpriv nsenter unshare sysctl timeout curl sha256sum "$PY"
[ "$EXEC_RTR" = ref ] || require_router_bin
exec_init
exec_files
topo_up
peers_up yes
peer_servers

# ---------------------------------------------------------------- refusals (no router yet)

# c_refused_no_router: exec with no router behind the socket fails, says why, and
# does not start the program.
c_refused_no_router() {
    local out rc f=$W/home/started-without-router
    echo "+ rootless-router exec --socket $W/ctl.sock -- touch $f (uid 65534, no router running)"
    out=$(rx touch "$f" 2>&1)
    rc=$?
    echo "$out"
    echo "(exit status $rc)"
    [ "$rc" != 0 ] || { echo "(exec succeeded with no router)"; return 1; }
    [ ! -e "$f" ] || { echo "(the program ran: $f exists)"; return 1; }
    grep -Eqi 'socket|not running' <<<"$out" || { echo "(the message names neither the socket nor the router not running)"; return 1; }
    # The control: the same program, without exec, does create the file.
    if ! r_plain touch "$f.control" || [ ! -e "$f.control" ]; then
        echo "(control: plain touch failed)"
        return 1
    fi
}

# c_refused_other_uid: the router's socket is 0600 uid 65534: exec as 65533 is
# refused before the program starts (65533 can write where it is told to touch).
c_refused_other_uid() {
    local out rc f=$W/u65533/started-as-65533
    echo "+ rootless-router exec --socket $W/ctl.sock -- touch $f (as uid 65533)"
    ls -l "$W/ctl.sock"
    out=$(timeout -k 2 20 ip netns exec "$NS_R" setpriv --reuid=65533 --regid=65533 --clear-groups \
        --inh-caps=-all --bounding-set=-all --no-new-privs \
        "$RR_RUN_BIN" exec --socket "$W/ctl.sock" -- touch "$f" 2>&1)
    rc=$?
    echo "$out"
    echo "(exit status $rc)"
    [ "$rc" != 0 ] || { echo "(exec succeeded for uid 65533)"; return 1; }
    [ ! -e "$f" ] || { echo "(the program ran: $f exists)"; return 1; }
    grep -Eqi 'denied|permission|uid|refus|not allowed' <<<"$out" || { echo "(the message does not say it was refused)"; return 1; }
    if ! timeout 10 ip netns exec "$NS_R" setpriv --reuid=65533 --regid=65533 --clear-groups \
        touch "$f.control" || [ ! -e "$f.control" ]; then
        echo "(control: plain touch as 65533 failed)"
        return 1
    fi
}

# c_kernel_has_no_dn42: without exec, r's kernel cannot reach a: whatever works
# under exec below is the router's doing.
c_kernel_has_no_dn42() {
    local out rc
    echo "+ curl http://$A_V4:$WEB_PORT/ (uid 65534 in r, WITHOUT exec)"
    out=$(r_plain curl -sS --max-time 5 "http://$A_V4:$WEB_PORT/" 2>&1)
    rc=$?
    echo "$out"
    echo "(exit status $rc)"
    [ "$rc" != 0 ] && ! grep -q "$TOKEN_A" <<<"$out"
}

if [ "$EXEC_RTR" = rr ]; then
    run_check exec_refused_without_router c_refused_no_router
fi
exec_router_up ""
if [ "$EXEC_RTR" = rr ]; then
    run_check kernel_has_no_route_to_dn42 c_kernel_has_no_dn42
    run_check exec_refused_for_other_uid c_refused_other_uid
fi

# ---------------------------------------------------------------- clients under exec

c_curl() { # URL TOKEN [CURL_ARGS...]
    local url=$1 tok=$2
    shift 2
    expect_out "^$tok\$" rx curl -sS --max-time 20 "$@" "$url"
}

c_download() { # URL: the big file, by sha256
    local f=$W/out/big-$RANDOM.bin
    echo "+ curl -o $f $1 (under exec)"
    rx curl -sS --max-time 60 -o "$f" -w 'http %{http_code}, %{size_download} bytes in %{time_total} s, %{speed_download} B/s\n' "$1" 2>&1 ||
        { echo "(curl failed)"; return 1; }
    expect_sha "$f" "$BIG_SHA"
    local rc=$?
    rm -f "$f"
    return "$rc"
}

c_wget() {
    expect_out "^$TOKEN_B\$" rx wget -q -T 20 -t 1 -O - "http://web-b.dn42:$WEB_PORT/"
}

c_py_socket() { # a raw HTTP/1.0 GET over socket.create_connection (v4)
    expect_out "$TOKEN_A" rx "$PY" -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"GET /index.html HTTP/1.0\r\nHost: a\r\n\r\n")
d = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    d += b
print("local", s.getsockname(), "peer", s.getpeername())
print(d.decode(errors="replace"))' "$A_V4" "$WEB_PORT"
}

c_py_urllib() { # the DN42 name, urllib (getaddrinfo + connect)
    expect_out "^$TOKEN_A\$" rx "$PY" -c '
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().strip())' \
        "http://web.dn42:$WEB_PORT/index.html"
}

c_py_asyncio() { # non-blocking connect + epoll (asyncio), v6 and v4 at once
    expect_out "^ok 2$" rx "$PY" -c '
import asyncio, sys
async def get(host):
    r, w = await asyncio.wait_for(asyncio.open_connection(host, int(sys.argv[3])), 10)
    w.write(b"GET /index.html HTTP/1.0\r\n\r\n")
    await w.drain()
    body = await asyncio.wait_for(r.read(), 10)
    w.close()
    return sys.argv[4].encode() in body
async def main():
    got = await asyncio.gather(get(sys.argv[1]), get(sys.argv[2]))
    print("ok", sum(got))
asyncio.run(main())' "$A_V6" "$A_V4" "$WEB_PORT" "$TOKEN_A"
}

c_py_udp_unconnected() { # sendto/recvfrom on an unconnected UDP socket, v6
    expect_out "^echo ok from $A_V6$" rx "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
for _ in range(3):
    s.sendto(b"rrt-udp-probe", (sys.argv[1], int(sys.argv[2])))
    try:
        d, a = s.recvfrom(2048)
        break
    except socket.timeout:
        continue
else:
    sys.exit("no echo")
print("echo", "ok" if d == b"rrt-udp-probe" else repr(d), "from", a[0])' "$A_V6" "$ECHO_PORT"
}

c_nc_tcp_echo() {
    local tok=rrt-nc-tcp-$RANDOM
    echo "+ printf $tok | nc -N -w 10 $A_V4 $ECHO_PORT (under exec)"
    local out
    out=$(printf '%s' "$tok" | rx nc -N -w 10 "$A_V4" "$ECHO_PORT" 2>&1)
    echo "$out (exit status $?)"
    [ "$out" = "$tok" ]
}

c_nc_tcp_halfclose() { # 1 MB to a one-shot `nc -l` in a; the sink sees all of it
    local sink=$W/sink-got.bin
    rm -f "$sink"
    bg "$NS_A" nc-sink sh -c "exec nc -l -s $A_V4 -p $SINK_PORT >$sink"
    local pid=$BG_PID
    wait_until 10 bash -c "ip netns exec '$NS_A' ss -Htln | grep -q ':$SINK_PORT\b'" ||
        { echo "(nc -l did not start)"; return 1; }
    echo "+ nc -N $A_V4 $SINK_PORT < 1 MB (under exec)"
    rx nc -N -w 10 "$A_V4" "$SINK_PORT" <"$W/sink-src.bin" 2>&1
    echo "(exit status $?)"
    wait_until 10 bash -c "! kill -0 $pid" || { echo "(the sink did not see the end of the stream)"; kill "$pid"; }
    expect_sha "$sink" "$SINK_SHA"
}

c_nc_udp_echo() {
    local tok=rrt-nc-udp-$RANDOM out
    echo "+ printf $tok | nc -u -w 2 $A_V4 $ECHO_PORT (under exec)"
    out=$(printf '%s' "$tok" | rx nc -u -w 2 "$A_V4" "$ECHO_PORT" 2>&1)
    echo "$out (exit status $?)"
    [ "$out" = "$tok" ]
}

c_dig() { # SERVER TYPE EXPECT [DIG_ARGS...]
    local srv=$1 type=$2 want=$3
    shift 3
    expect_out "^$want\$" rx dig +short +time=3 +tries=2 "$@" "@$srv" "$type" web.dn42
}

c_ping() { # ADDR [PING_ARGS...]: 3 echoes, at least 2 answered (the first may meet a handshake)
    local addr=$1 out rc
    shift
    echo "+ ping -c 3 -i 0.3 -W 3 $* $addr (under exec)"
    out=$(rx ping -c 3 -i 0.3 -W 3 "$@" "$addr" 2>&1)
    rc=$?
    echo "$out"
    echo "(exit status $rc)"
    grep -Eq "3 packets transmitted, [23] received" <<<"$out" &&
        grep -Eq "bytes from $addr: icmp_seq=" <<<"$out"
}

c_ssh() {
    expect_out "^ok-from-a$" rx ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o BatchMode=yes -o ConnectTimeout=10 -i "$W/ssh/id_nobody" "root@$1" echo ok-from-a
}

c_iperf_client() { # ADDR udp|tcp
    local f=$W/out/iperf-c-$2.json args=()
    [ "$2" = udp ] && args=(-u -b 10M)
    echo "+ iperf3 -c $1 -p $IPERF_PORT -t 2 ${args[*]} -J (under exec)"
    RX_TIMEOUT=30 rx iperf3 -c "$1" -p "$IPERF_PORT" -t 2 "${args[@]}" -J >"$f" 2>&1
    echo "(exit status $?)"
    iperf_json_ok "$f" "$2" || { head -c 3000 "$f"; return 1; }
}

c_loopback_kernel_server() { # under exec, 127.0.0.1 stays the kernel's
    bg "$NS_R" local-web "${NOBODY[@]}" "$PY" -m http.server --bind 127.0.0.1 --directory "$W/www-r" "$R_LOCAL_WEB_PORT"
    wait_tcp local-web "$NS_R" 127.0.0.1 "$R_LOCAL_WEB_PORT" "$BG_PID" || return 1
    expect_out "^$TOKEN_R\$" rx curl -sS --max-time 10 "http://127.0.0.1:$R_LOCAL_WEB_PORT/"
}

run_check curl_v4 c_curl "http://$A_V4:$WEB_PORT/" "$TOKEN_A"
run_check curl_v6 c_curl "http://[$A_V6]:$WEB_PORT/" "$TOKEN_A" -g
run_check curl_v6_to_b c_curl "http://[$B_V6]:$WEB_PORT/" "$TOKEN_B" -g
check_if_tools curl_dn42_name "dnsmasq dig" c_curl "http://web.dn42:$WEB_PORT/" "$TOKEN_A"
check_if_tools curl_dn42_name_v6 "dnsmasq dig" c_curl "http://web.dn42:$WEB_PORT/" "$TOKEN_A" -6
run_check curl_20mb_sha256 c_download "http://$A_V4:$WEB_PORT/big.bin"
check_if_tools wget_dn42_name "wget dnsmasq dig" c_wget
run_check python_socket c_py_socket
check_if_tools python_urllib_dn42_name "dnsmasq dig" c_py_urllib
run_check python_asyncio c_py_asyncio
run_check python_udp_unconnected_v6 c_py_udp_unconnected
check_if_tools nc_tcp_echo nc c_nc_tcp_echo
check_if_tools nc_tcp_halfclose_1mb "nc ss" c_nc_tcp_halfclose
check_if_tools nc_udp_echo nc c_nc_udp_echo
check_if_tools dig_udp "dnsmasq dig" c_dig "$A_V4" A "$A_V4"
check_if_tools dig_tcp "dnsmasq dig" c_dig "$A_V4" A "$A_V4" +tcp
check_if_tools dig_v6_server_aaaa "dnsmasq dig" c_dig "$A_V6" AAAA "$A_V6"
run_check ping_v4 c_ping "$A_V4"
run_check ping_v6 c_ping "$B_V6" -6
check_if_tools ssh_client "ssh sshd" c_ssh "$A_V4"
check_if_tools iperf3_client_tcp iperf3 c_iperf_client "$A_V4" tcp
check_if_tools iperf3_client_udp iperf3 c_iperf_client "$A_V4" udp
run_check loopback_kernel_server c_loopback_kernel_server

# ---------------------------------------------------------------- servers under exec

# c_py_server: python3 -m http.server under exec on the wildcard [::] (dual stack:
# IPV6_V6ONLY off), reached from a (v4), b (v6) and r's own loopback.
c_py_server() {
    rx_bg py-server "$PY" -m http.server --bind :: --directory "$W/www-r" "$R_PY_PORT"
    local pid=$RX_PID ok=0
    wait_tcp py-server "$NS_A" "$R_V4" "$R_PY_PORT" "$pid" || return 1
    expect_out "^$TOKEN_R\$" nsx "$NS_A" curl -sS --max-time 10 "http://$R_V4:$R_PY_PORT/" || ok=1
    expect_out "^$TOKEN_R\$" nsx "$NS_B" curl -sS --max-time 10 -g "http://[$R_V6]:$R_PY_PORT/" || ok=1
    echo "---- the server's log:"
    cat "$W/py-server.log"
    return "$ok"
}

c_py_server_loopback() {
    expect_out "^$TOKEN_R\$" r_plain curl -sS --max-time 10 "http://127.0.0.1:$R_PY_PORT/"
}

nginx_conf() {
    local d=$W/nginx
    mkdir -p "$d/tmp" && chown -R 65534:65534 "$d" || return 1
    cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
pid $d/nginx.pid;
error_log stderr notice;
events { worker_connections 128; }
http {
    log_format w '\$pid \$remote_addr \$request \$status \$body_bytes_sent';
    access_log $d/access.log w;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    sendfile on;
    types { text/html html; application/octet-stream bin; }
    server {
        listen $R_NGINX_PORT;
        listen [::]:$R_NGINX_PORT;
        root $W/www-r;
    }
}
EOF
}

# c_nginx: nginx (epoll, master + 2 forked workers, sendfile) under exec; 20 requests
# from a over v4 and b over v6, and the 20 MB file (sendfile) by sha256.
c_nginx() {
    nginx_conf || return 1
    rx_bg nginx "$(command -v nginx)" -p "$W/nginx/" -c "$W/nginx/nginx.conf" -e stderr
    local pid=$RX_PID ok=0 n=0 f=$W/nginx-big.bin
    wait_tcp nginx "$NS_A" "$R_V4" "$R_NGINX_PORT" "$pid" || return 1
    echo "nginx master $(cat "$W/nginx/nginx.pid" 2>/dev/null); workers: $(pgrep -P "$(cat "$W/nginx/nginx.pid" 2>/dev/null)" 2>/dev/null | tr '\n' ' ')"
    for _ in $(seq 10); do
        nsx "$NS_A" curl -sS --max-time 10 "http://$R_V4:$R_NGINX_PORT/" | grep -qx "$TOKEN_R" && n=$((n + 1))
        nsx "$NS_B" curl -sS --max-time 10 -g "http://[$R_V6]:$R_NGINX_PORT/" | grep -qx "$TOKEN_R" && n=$((n + 1))
    done
    echo "$n of 20 requests answered with the token"
    [ "$n" = 20 ] || ok=1
    echo "+ curl http://$R_V4:$R_NGINX_PORT/big.bin (in a)"
    nsx "$NS_A" curl -sS --max-time 50 -o "$f" -w '%{size_download} bytes in %{time_total} s\n' \
        "http://$R_V4:$R_NGINX_PORT/big.bin" || ok=1
    expect_sha "$f" "$BIG_SHA" || ok=1
    rm -f "$f"
    echo "---- access log (pid address request status bytes):"
    sort "$W/nginx/access.log" 2>/dev/null | uniq -c | sort -rn | head
    echo "---- nginx's stderr:"
    tail -n 20 "$W/nginx.log"
    return "$ok"
}

# c_iperf_server MODE: iperf3 -s under exec; a's kernel runs the client.
c_iperf_server() {
    local f=$W/iperf-s-$1.json args=()
    [ "$1" = udp ] && args=(-u -b 10M)
    if [ -z "${IPERF_S_PID:-}" ]; then
        rx_bg iperf3-r iperf3 -s -p "$R_IPERF_PORT"
        IPERF_S_PID=$RX_PID
        wait_tcp iperf3-r "$NS_A" "$R_V4" "$R_IPERF_PORT" "$IPERF_S_PID" || return 1
    fi
    echo "+ iperf3 -c $R_V4 -p $R_IPERF_PORT -t 2 ${args[*]} -J (in a)"
    timeout -k 2 30 ip netns exec "$NS_A" iperf3 -c "$R_V4" -p "$R_IPERF_PORT" -t 2 "${args[@]}" -J >"$f" 2>&1
    echo "(exit status $?)"
    iperf_json_ok "$f" "$1" || { head -c 3000 "$f"; echo "---- server:"; tail -n 20 "$W/iperf3-r.log"; return 1; }
}

# c_sshd_unprivileged: sshd as uid 65534 under exec; a's kernel logs in with a key and
# fetches a file over sftp (internal-sftp: uid 65534's shell is nologin).
c_sshd_unprivileged() {
    sshd_config yes "$R_SSH_PORT" "$W/ssh/host_r" "$W/home/sshd-r.pid" >"$W/ssh/sshd_r.conf"
    # Does this sshd run unprivileged at all? (-t: test the config as uid 65534)
    local t
    if ! t=$(r_plain "$(command -v sshd)" -t -f "$W/ssh/sshd_r.conf" 2>&1); then
        echo "sshd -t as uid 65534 refuses: $t"
        return 2
    fi
    rx_bg sshd-r "$(command -v sshd)" -D -e -f "$W/ssh/sshd_r.conf"
    local pid=$RX_PID
    wait_tcp sshd-r "$NS_A" "$R_V4" "$R_SSH_PORT" "$pid" || return 1
    printf 'get %s %s\n' "$W/www-r/index.html" "$W/ssh/sftp-got.html" >"$W/ssh/sftp.batch"
    rm -f "$W/ssh/sftp-got.html"
    echo "+ sftp -b - -P $R_SSH_PORT nobody@$R_V4 (in a): get index.html"
    timeout -k 2 30 ip netns exec "$NS_A" sftp -b "$W/ssh/sftp.batch" -P "$R_SSH_PORT" -i "$W/ssh/id_peer" \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
        -o ConnectTimeout=10 "nobody@$R_V4" 2>&1
    echo "(exit status $?)"
    echo "---- sshd's log:"
    tail -n 20 "$W/sshd-r.log"
    [ -f "$W/ssh/sftp-got.html" ] && grep -qx "$TOKEN_R" "$W/ssh/sftp-got.html"
}

run_check python_http_server_under_exec c_py_server
run_check python_http_server_on_loopback_too c_py_server_loopback
check_if_tools nginx_under_exec nginx c_nginx
check_if_tools iperf3_server_tcp iperf3 c_iperf_server tcp
check_if_tools iperf3_server_udp iperf3 c_iperf_server udp
if m=$(need sshd sftp); then
    out=$(c_sshd_unprivileged 2>&1)
    case $? in
    0) pass sshd_unprivileged_under_exec ;;
    2) skip sshd_unprivileged_under_exec "$(tail -n 1 <<<"$out")" ;;
    *)
        fail sshd_unprivileged_under_exec
        head -c 20000 <<<"$out" | indent
        ;;
    esac
else
    skip sshd_unprivileged_under_exec "$m is not installed (.ci/run installs it)"
fi

if [ "$EXEC_RTR" = rr ]; then
    run_check router_alive_at_end router_alive
fi

# shellcheck shell=bash
# Helpers for the `rootless-router exec` and gateway tests (t_80_exec.sh,
# t_85_gateways.sh): the t_30 topology with the router's [dns] pointed at a resolver
# in a, real servers in the peers' namespaces (python http.server, dnsmasq, sshd,
# iperf3, UDP/TCP echo, nc), and `rx`: a program run as the router's user (uid 65534,
# no capabilities) inside the router's namespace under `rootless-router exec`.
#
# What it is not: a shim test harness. Nothing here looks inside the shim or the node;
# every check is a real program's own view (its output, its exit status, a sha256).
#
# EXEC_RTR=ref runs the same checks against the REFERENCE (t_00's kernel + two
# wireguard-go interfaces in r, forwarding on; `rx` runs the program plainly, the
# namespace's resolv.conf names the resolver in a, socat plays the gateways): it
# proves the servers, the peers and the checks, so a failure with the router is the
# router's (or the shim's).
#
# Sourced after lib.sh.

EXEC_RTR=${EXEC_RTR:-rr}
# Ports of the peers' servers (in a, and the web server in b too).
WEB_PORT=8000
ECHO_PORT=7
SINK_PORT=9000
IPERF_PORT=5201
# Ports of the servers in r (under exec, or behind the gateways).
R_PY_PORT=8081
R_NGINX_PORT=8080
R_IPERF_PORT=5202
R_SSH_PORT=2222
R_LOCAL_WEB_PORT=8090
# What the web servers serve: index.html holds a token naming the server.
TOKEN_A=rrt-web-a-$RRT_TAG
TOKEN_B=rrt-web-b-$RRT_TAG
TOKEN_R=rrt-web-r-$RRT_TAG
BIG_MB=20
# The user the router and the programs under exec run as.
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all
    --bounding-set=-all --no-new-privs)

# ---------------------------------------------------------------- files

# exec_files: web roots (index.html + a BIG_MB random file and its sha256), SSH keys,
# the home of uid 65534 under exec, and a directory uid 65533 may write to.
exec_files() {
    RRT_STAGE=files
    local d
    for d in a b r; do
        mkdir -p "$W/www-$d" || die "mkdir"
    done
    echo "$TOKEN_A" >"$W/www-a/index.html"
    echo "$TOKEN_B" >"$W/www-b/index.html"
    echo "$TOKEN_R" >"$W/www-r/index.html"
    head -c $((BIG_MB << 20)) /dev/urandom >"$W/www-a/big.bin" || die "random file"
    cp "$W/www-a/big.bin" "$W/www-r/big.bin"
    BIG_SHA=$(sha256sum <"$W/www-a/big.bin" | cut -d' ' -f1)
    head -c 1000000 /dev/urandom >"$W/sink-src.bin"
    SINK_SHA=$(sha256sum <"$W/sink-src.bin" | cut -d' ' -f1)
    chmod -R a+rX "$W/www-a" "$W/www-b" "$W/www-r" "$W/sink-src.bin"
    mkdir -p "$W/home" "$W/out" "$W/u65533" && chown 65534:65534 "$W/home" "$W/out" &&
        chown 65533:65533 "$W/u65533" || die "home directories"
    RRT_STAGE=setup
}

# ---------------------------------------------------------------- running in r

# rx CMD...: CMD as uid 65534 in the router's namespace under `rootless-router exec`
# (the reference: plainly), at most RX_TIMEOUT (60) seconds.
rx() {
    local t=${RX_TIMEOUT:-60}
    local envs=(env HOME="$W/home" USER=nobody LOGNAME=nobody)
    if [ "$EXEC_RTR" = ref ]; then
        # A program with file capabilities (Debian's ping) cannot be executed with
        # an empty bounding set: the reference starts it through the dynamic loader,
        # as exec does. (ICMP datagram sockets: ping_group_range, exec_router_up.)
        local prog
        prog=$(command -v "$1")
        if [ -n "$prog" ] && command -v getcap >/dev/null && [ -n "$(getcap "$prog")" ]; then
            set -- "$(elf_loader)" "$prog" "${@:2}"
        fi
        timeout -k 2 "$t" ip netns exec "$NS_R" "${NOBODY[@]}" "${envs[@]}" "$@"
    else
        timeout -k 2 "$t" ip netns exec "$NS_R" "${NOBODY[@]}" "${envs[@]}" \
            "$RR_RUN_BIN" exec --socket "$W/ctl.sock" -- "$@"
    fi
}

elf_loader() {
    local l
    for l in /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1 /lib/ld-linux.so.2; do
        [ -x "$l" ] && { echo "$l"; return; }
    done
    echo /lib64/ld-linux-x86-64.so.2
}

# rx_bg NAME CMD...: rx in the background (no time limit), output in $W/NAME.log;
# sets RX_PID (killed at exit with everything else in the namespace).
rx_bg() {
    local name=$1
    shift
    if [ "$EXEC_RTR" = ref ]; then
        ip netns exec "$NS_R" "${NOBODY[@]}" env HOME="$W/home" "$@" >"$W/$name.log" 2>&1 </dev/null &
    else
        ip netns exec "$NS_R" "${NOBODY[@]}" env HOME="$W/home" \
            "$RR_RUN_BIN" exec --socket "$W/ctl.sock" -- "$@" >"$W/$name.log" 2>&1 </dev/null &
    fi
    RX_PID=$!
    RRT_PIDS+=("$RX_PID")
}

# r_plain CMD...: CMD as uid 65534 in the router's namespace WITHOUT exec (the host's
# kernel side of r: loopback, the gateways' host ends).
r_plain() {
    timeout -k 2 "${RX_TIMEOUT:-60}" ip netns exec "$NS_R" "${NOBODY[@]}" env HOME="$W/home" "$@"
}

# bg NS NAME CMD...: a server in namespace NS (as root), output in $W/NAME.log.
bg() {
    local ns=$1 name=$2
    shift 2
    ip netns exec "$ns" "$@" >"$W/$name.log" 2>&1 </dev/null &
    BG_PID=$!
    RRT_PIDS+=("$BG_PID")
}

# tcp_open NS ADDR PORT: something accepts TCP connections there (from NS's kernel).
tcp_open() {
    ip netns exec "$1" timeout 3 "$PY" -c '
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()' "$2" "$3"
}

# wait_tcp NAME NS ADDR PORT [PID]: wait up to 15 s for a server; on failure show its log.
wait_tcp() {
    local name=$1 ns=$2 addr=$3 port=$4 pid=${5:-}
    if wait_until 15 tcp_open "$ns" "$addr" "$port"; then return 0; fi
    echo "($name: nothing accepts on $addr port $port within 15 s)"
    [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && echo "($name exited)"
    echo "---- $W/$name.log:"
    tail -n 30 "$W/$name.log" 2>/dev/null
    return 1
}

# ---------------------------------------------------------------- peer servers

# UDP and TCP echo on [::]:PORT, both families (one thread per TCP connection).
ECHO_PY='
import socket, sys, threading
port = int(sys.argv[1])
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
u.bind(("::", port))
t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("::", port))
t.listen(16)
def udp():
    while True:
        d, a = u.recvfrom(65535)
        u.sendto(d, a)
def conn(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)
threading.Thread(target=udp, daemon=True).start()
print("echo ready", flush=True)
while True:
    c, _ = t.accept()
    threading.Thread(target=conn, args=(c,), daemon=True).start()
'

# ssh_files: host keys and client keys for the sshd in a (root) and the unprivileged
# sshd in r; one authorized_keys for both.
ssh_files() {
    mkdir -p "$W/ssh" && chmod 755 "$W/ssh" || return 1
    ssh-keygen -q -t ed25519 -N '' -f "$W/ssh/host_a" -C host-a || return 1
    ssh-keygen -q -t ed25519 -N '' -f "$W/ssh/host_r" -C host-r || return 1
    ssh-keygen -q -t ed25519 -N '' -f "$W/ssh/id_nobody" -C nobody-under-exec || return 1
    ssh-keygen -q -t ed25519 -N '' -f "$W/ssh/id_peer" -C root-in-a || return 1
    cat "$W/ssh/id_nobody.pub" "$W/ssh/id_peer.pub" >"$W/ssh/authorized_keys"
    chmod 644 "$W/ssh/authorized_keys" "$W/ssh"/*.pub
    chown 65534:65534 "$W/ssh/id_nobody" "$W/ssh/host_r"
    chmod 600 "$W/ssh/id_nobody" "$W/ssh/host_r"
}

# sshd_config USEPAM PORT HOSTKEY PIDFILE [LISTEN...]: UsePAM yes for an unprivileged
# sshd (without PAM, sshd calls uid 65534's "*" password a locked account).
sshd_config() {
    local pam=$1 port=$2 key=$3 pidf=$4 l
    shift 4
    echo "Port $port"
    for l in "$@"; do echo "ListenAddress $l"; done
    cat <<EOF
HostKey $key
PidFile $pidf
AuthorizedKeysFile $W/ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM $pam
StrictModes no
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
}

# peer_servers: in a: http.server (www-a, both families), dnsmasq (the DN42 resolver:
# web.dn42 -> a, web-b.dn42 -> b, v4 and v6), sshd (root login with a key), iperf3 -s,
# TCP+UDP echo; in b: http.server (www-b). Each is checked from its own kernel.
peer_servers() {
    RRT_STAGE=peer-servers
    bg "$NS_A" http-a "$PY" -m http.server --bind :: --directory "$W/www-a" "$WEB_PORT"
    bg "$NS_B" http-b "$PY" -m http.server --bind :: --directory "$W/www-b" "$WEB_PORT"
    bg "$NS_A" echo-a "$PY" -c "$ECHO_PY" "$ECHO_PORT"
    if command -v dnsmasq >/dev/null; then
        bg "$NS_A" dnsmasq-a dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
            --no-hosts --bind-interfaces --listen-address="$A_V4" --listen-address="$A_V6" \
            --user=root --group=root --pid-file="$W/dnsmasq-a.pid" --log-queries --log-facility=- \
            --address=/web.dn42/"$A_V4" --address=/web.dn42/"$A_V6" \
            --address=/web-b.dn42/"$B_V4" --address=/web-b.dn42/"$B_V6"
    fi
    if command -v sshd >/dev/null && command -v ssh-keygen >/dev/null; then
        ssh_files || die "ssh keys"
        sshd_config no 22 "$W/ssh/host_a" "$W/ssh/sshd-a.pid" "$A_V4" "[$A_V6]" >"$W/ssh/sshd_a.conf"
        # sshd's privilege separation directory (created by its service otherwise).
        [ -d /run/sshd ] || mkdir -m 755 /run/sshd
        bg "$NS_A" sshd-a "$(command -v sshd)" -D -e -f "$W/ssh/sshd_a.conf"
    fi
    if command -v iperf3 >/dev/null; then
        bg "$NS_A" iperf3-a iperf3 -s -p "$IPERF_PORT"
    fi
    wait_tcp http-a "$NS_A" "$A_V4" "$WEB_PORT" || die "http.server in a did not start"
    wait_tcp http-a "$NS_A" "$A_V6" "$WEB_PORT" || die "http.server in a: no IPv6"
    wait_tcp http-b "$NS_B" "$B_V6" "$WEB_PORT" || die "http.server in b did not start"
    wait_tcp echo-a "$NS_A" "$A_V4" "$ECHO_PORT" || die "echo server in a did not start"
    if command -v dnsmasq >/dev/null && command -v dig >/dev/null; then
        wait_until 10 bash -c "ip netns exec '$NS_A' dig +short +time=1 +tries=1 @$A_V4 web.dn42 | grep -qx '$A_V4'" ||
            die "dnsmasq in a does not answer web.dn42 (log: $(tail -n 5 "$W/dnsmasq-a.log"))"
    fi
    if command -v sshd >/dev/null; then
        wait_tcp sshd-a "$NS_A" "$A_V4" 22 || die "sshd in a did not start"
    fi
    if command -v iperf3 >/dev/null; then
        wait_tcp iperf3-a "$NS_A" "$A_V4" "$IPERF_PORT" || die "iperf3 -s in a did not start"
    fi
    RRT_STAGE=setup
}

# ---------------------------------------------------------------- the router (or the reference)

# exec_router_config FILE [EXTRA_TOML_FILE]: t_30's config plus [dns] (the resolver
# in a for *.dn42) plus whatever EXTRA holds ([[forward]] / [[expose]] blocks).
exec_router_config() {
    local f=$1 extra=${2:-}
    write_router_config "$f"
    cat >>"$f" <<EOF

[dns]
servers = ["$A_V4:53"]
domains = ["dn42"]
EOF
    if [ -n "$extra" ]; then
        echo >>"$f"
        cat "$extra" >>"$f"
    fi
}

# exec_router_up [EXTRA_TOML_FILE]: the router under test (or the reference) in r.
exec_router_up() {
    if [ "$EXEC_RTR" = ref ]; then
        ref_router_start
        # The kernel resolves *.dn42 through dnsmasq in a: `ip netns exec` bind-mounts
        # /etc/netns/NS/resolv.conf over /etc/resolv.conf.
        mkdir -p "/etc/netns/$NS_R" && echo "nameserver $A_V4" >"/etc/netns/$NS_R/resolv.conf" ||
            die "/etc/netns/$NS_R/resolv.conf"
        EXEC_ETC_NETNS=/etc/netns/$NS_R
        # Unprivileged ping (uid 65534 has no CAP_NET_RAW): ICMP datagram sockets.
        nsx "$NS_R" sysctl -qw net.ipv4.ping_group_range="0 2147483647" || die "ping_group_range"
        pass router_started_reference
    else
        exec_router_config "$W/router.toml" "${1:-}"
        run_check check_config_ok c_exec_check_config "$W/router.toml"
        router_start "$W/router.toml"
        pass router_started
        RRT_NEED_ROUTER=1
    fi
    # Both tunnels up before the checks (the first packets of a handshake are not
    # what these tests are about).
    wait_until 20 nsx "$NS_A" ping -c 1 -W 1 "$R_V4" || die "no ping a -> router ($R_V4)"
    wait_until 20 nsx "$NS_B" ping -c 1 -W 1 "$R_V4" || die "no ping b -> router ($R_V4)"
}

c_exec_check_config() {
    echo "+ rootless-router check --config $1"
    cat "$1"
    as_uid 65534 timeout 10 "$RR_RUN_BIN" check --config "$1" 2>&1
}

# exec_init: rrt_init plus removal of /etc/netns/NS_R (the reference's resolv.conf).
exec_init() {
    rrt_init
    EXEC_ETC_NETNS=
    trap 'exec_rc=$?; [ -n "$EXEC_ETC_NETNS" ] && rm -rf "$EXEC_ETC_NETNS"; (exit $exec_rc); rrt_cleanup' EXIT
    case $EXEC_RTR in
    rr | ref) ;;
    *) die "EXEC_RTR must be rr or ref, not '$EXEC_RTR'" ;;
    esac
    # The router's binary may have been copied for uid 65534 (router_bin_for_nobody):
    # the shim goes beside it.
    if [ "$EXEC_RTR" = rr ] && [ "$RR_RUN_BIN" != "$RR_BIN" ]; then
        local so
        so=$(dirname "$RR_BIN")/librr_preload.so
        [ -f "$so" ] && cp "$so" "$(dirname "$RR_RUN_BIN")/" && chmod 755 "$(dirname "$RR_RUN_BIN")/librr_preload.so"
    fi
}

# ---------------------------------------------------------------- check helpers

# expect_out REGEX CMD...: run CMD (rx ..., r_plain ..., nsx ...), show its output and
# status; PASS when the status is 0 and the output matches the extended REGEX.
expect_out() {
    local re=$1 out rc
    shift
    echo "+ $*"
    out=$("$@" 2>&1)
    rc=$?
    echo "$out" | head -c 6000
    echo "(exit status $rc)"
    [ "$rc" = 0 ] || return 1
    grep -Eq -- "$re" <<<"$out" || { echo "(output does not match /$re/)"; return 1; }
}

# expect_sha FILE SHA: FILE exists and has that sha256.
expect_sha() {
    local got
    got=$(sha256sum <"$1" 2>/dev/null | cut -d' ' -f1)
    echo "sha256 of $1 ($(stat -c %s "$1" 2>/dev/null || echo missing) bytes): ${got:-none}; expected $2"
    [ "$got" = "$2" ]
}

# need TOOL...: prints the first missing tool and returns 1 (for skip decisions).
need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || { echo "$t"; return 1; }
    done
}

# check_if_tools NAME "TOOLS" FN ARGS...: run_check NAME FN ARGS, or SKIP when a tool
# is missing.
check_if_tools() {
    local name=$1 tools=$2 m
    shift 2
    # shellcheck disable=SC2086
    if ! m=$(need $tools); then
        skip "$name" "$m is not installed (.ci/run installs it)"
        return 0
    fi
    run_check "$name" "$@"
}

# iperf_json_ok FILE MODE: iperf3 -J output: no error, bytes received > 0; for udp
# also a loss below 10 %. Prints the figures.
iperf_json_ok() {
    "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception as e:
    print("no iperf3 JSON:", e); sys.exit(1)
if j.get("error"):
    print("iperf3 error:", j["error"]); sys.exit(1)
end = j.get("end", {})
if sys.argv[2] == "udp":
    s = end.get("sum", {})
    pk, lost, pct = s.get("packets", 0), s.get("lost_packets", 0), s.get("lost_percent", 100)
    print("udp: %.1f Mbit/s, %d packets, %d lost (%.1f%%)" % (s.get("bits_per_second", 0) / 1e6, pk, lost, pct))
    sys.exit(0 if pk > 0 and pct < 10 else 1)
r = end.get("sum_received", {})
print("tcp: received %d bytes, %.1f Mbit/s" % (r.get("bytes", 0), r.get("bits_per_second", 0) / 1e6))
sys.exit(0 if r.get("bytes", 0) > 0 else 1)
PYEOF
}

# shellcheck shell=bash
# Library for the interop tests: network namespaces, real WireGuard peers
# (wireguard-go + the kernel's IPv4/IPv6 stack), the router under test run as an
# unprivileged user, bounded waits, and PASS/FAIL/SKIP bookkeeping.
#
# Sourced by tests/interop/t_*.sh. Every command that can block runs under
# `timeout`; every namespace, process and temp dir a test creates is torn down by
# an EXIT trap. Traffic only ever flows inside namespaces created here.
#
# Environment knobs:
#   RR_BIN          router binary (default: <repo>/target/release/rootless-router)
#   RRT_RESULTS     file the runner tallies (one "PASS|FAIL|SKIP<TAB>name" per line)
#   RRT_LOGDIR      where router logs are kept after a test (default: none kept)
#   RRT_RUST_LOG    RUST_LOG for the router (default: debug)
#   RRT_KEEP=1      keep namespaces/temp dir on exit (debugging; prints how to clean)
#   RRT_VERBOSE=1   print every check's output, not only failing ones

set -u
set -o pipefail

RRT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RRT_ROOT=$(cd "$RRT_DIR/../.." && pwd)
RR_BIN=${RR_BIN:-$RRT_ROOT/target/release/rootless-router}
RRT_TEST=$(basename "$0" .sh)
RRT_RESULTS=${RRT_RESULTS:-/dev/null}
RRT_TAG=$$
NS_R=rrt-$RRT_TAG-r
NS_A=rrt-$RRT_TAG-a
NS_B=rrt-$RRT_TAG-b
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1

# Addresses of the topology (see README.md in this directory).
A_OUTER=198.51.100.1
R_OUTER_A=198.51.100.2
B_OUTER=203.0.113.1
R_OUTER_B=203.0.113.2
A_V4=172.20.1.1
A_V6=fd00:a::1
B_V4=172.20.2.1
B_V6=fd00:b::1
R_V4=172.20.0.1
R_V6=fd00:1::1
R_PORT_A=51820
R_PORT_B=51821
PEER_PORT=51820

RRT_PASSED=0
RRT_FAILED=0
RRT_SKIPPED=0
RRT_CUR_CHECK=
RR_RUN_BIN=$RR_BIN
RRT_NAMESPACES=()
RRT_PIDS=()
ROUTER_PID=
W=
declare -A WG_PID=()

# ---------------------------------------------------------------- reporting

_record() { # STATUS NAME
    printf '%s\t%s/%s\n' "$1" "$RRT_TEST" "$2" >>"$RRT_RESULTS"
}
pass() {
    RRT_PASSED=$((RRT_PASSED + 1))
    printf 'PASS  %s/%s\n' "$RRT_TEST" "$1"
    _record PASS "$1"
}
fail() { # NAME [REASON]
    RRT_FAILED=$((RRT_FAILED + 1))
    printf 'FAIL  %s/%s%s\n' "$RRT_TEST" "$1" "${2:+: $2}"
    _record FAIL "$1"
}
skip() { # NAME REASON
    RRT_SKIPPED=$((RRT_SKIPPED + 1))
    printf 'SKIP  %s/%s: %s\n' "$RRT_TEST" "$1" "$2"
    _record SKIP "$1"
}
info() { printf '  # %s\n' "$*"; }
indent() { sed -e 's/^/    | /'; }
strip_ansi() { sed -e 's/\x1b\[[0-9;]*m//g'; }

# run_check NAME CMD [ARGS...]: runs CMD (usually a c_* function) in this shell with
# its output captured; PASS if it returns 0. On failure the output is shown.
run_check() {
    local name=$1 out rc
    shift
    # Once the router under test is gone, fail fast instead of timing out every check.
    if [ -n "${RRT_NEED_ROUTER:-}" ] && ! router_alive; then
        router_reap
        fail "$name" "the router process is gone (pid ${RRT_ROUTER_PID_WAS:-?}, $RRT_ROUTER_DEATH)"
        return 1
    fi
    out=$(mktemp "${TMPDIR:-/tmp}/rrt-check.XXXXXX")
    RRT_CUR_CHECK=$name RRT_CUR_OUT=$out
    "$@" >"$out" 2>&1
    rc=$?
    RRT_CUR_CHECK=
    if [ "$rc" -eq 0 ]; then
        pass "$name"
        [ -n "${RRT_VERBOSE:-}" ] && head -c 20000 "$out" | indent
    else
        fail "$name"
        head -c 20000 "$out" | indent
        # The router's view right after a failure (for the first few failures).
        if [ "$RRT_FAILED" -le 3 ] && router_alive && [ -S "$W/ctl.sock" ]; then
            echo "    | ---- just after the failure: rootless-router ctl show interfaces"
            ctl show interfaces 2>&1 | head -40 | indent
        fi
    fi
    rm -f "$out"
    return "$rc"
}

# Setup failures abort the test file: one FAIL line naming what broke.
die() {
    fail "${RRT_STAGE:-setup}" "$*"
    exit 1
}

# ---------------------------------------------------------------- helpers

# to SECONDS CMD...: run with a hard time limit.
to() {
    local t=$1
    shift
    timeout -k 2 "$t" "$@"
}

# wait_until SECONDS CMD...: poll CMD every 0.2 s until it succeeds or time is up.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

nsx() { # NS CMD...: run in a namespace (time-limited to 60 s as a backstop)
    local ns=$1
    shift
    timeout -k 2 60 ip netns exec "$ns" "$@"
}

# as_uid UID CMD...: run CMD as UID with no capabilities and no way to gain any.
as_uid() {
    local uid=$1
    shift
    # Not root: we can only be ourselves (and have no capabilities to drop).
    if [ "$(id -u)" != 0 ]; then
        [ "$(id -u)" = "$uid" ] || { echo "as_uid: cannot become uid $uid without root" >&2; return 126; }
        setpriv --no-new-privs "$@"
        return
    fi
    setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all \
        --bounding-set=-all --no-new-privs "$@"
}

# Whether we may use namespaces. Prints a reason and returns 1 if not.
have_netns() {
    if [ "$(id -u)" != 0 ]; then
        echo "not root (network namespaces need root)"
        return 1
    fi
    local probe=rrt-$RRT_TAG-probe
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "no network namespace support (ip netns add failed)"
        return 1
    fi
    ip netns del "$probe" 2>/dev/null
    return 0
}

# Skip the whole file (when not root / no netns): one SKIP line per named check.
require_netns() { # CHECK_NAMES...
    local why
    if ! why=$(have_netns); then
        local n
        for n in "$@"; do skip "$n" "$why"; done
        exit 0
    fi
}

require_tools() {
    local t missing=()
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
    [ "${#missing[@]}" -eq 0 ] || die "missing tools: ${missing[*]} (.ci/run installs them with apt)"
}

require_router_bin() {
    [ -x "$RR_BIN" ] || die "router binary $RR_BIN not found (cargo build --release first)"
}

# ---------------------------------------------------------------- lifecycle

rrt_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "${RRT_CUR_CHECK:-}" ]; then
        # The shell died inside a check (e.g. an unset variable): report that check.
        fail "$RRT_CUR_CHECK" "the test script aborted inside this check (status $rc)"
        head -c 20000 "$RRT_CUR_OUT" | indent
        rm -f "$RRT_CUR_OUT"
    fi
    if [ "$RRT_FAILED" -gt 0 ] && [ -n "$W" ]; then
        dump_diagnostics
    fi
    if [ -n "${RRT_KEEP:-}" ]; then
        info "RRT_KEEP set: leaving namespaces ${RRT_NAMESPACES[*]:-} and $W"
        exit "$rc"
    fi
    router_stop >/dev/null 2>&1
    local p ns pids
    for p in "${RRT_PIDS[@]}" "${WG_PID[@]}"; do
        kill "$p" 2>/dev/null
    done
    for ns in "${RRT_NAMESPACES[@]}"; do
        # Anything still inside our own namespaces was started by this test.
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill $pids 2>/dev/null
    done
    sleep 0.3
    for ns in "${RRT_NAMESPACES[@]}"; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    if [ -n "$W" ] && [ -d "$W" ]; then
        if [ -n "${RRT_LOGDIR:-}" ] && [ -f "$W/router.log" ]; then
            mkdir -p "$RRT_LOGDIR" && cp "$W/router.log" "$RRT_LOGDIR/$RRT_TEST.router.log"
        fi
        rm -rf "$W"
    fi
    # Exit status: non-zero if any check failed.
    if [ "$RRT_FAILED" -gt 0 ]; then exit 1; fi
    exit "$rc"
}

rrt_init() {
    trap rrt_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    W=$(mktemp -d /tmp/rrt.XXXXXX) || die "mktemp failed"
    chmod 755 "$W"
    # The router (uid 65534) creates its control socket here.
    [ "$(id -u)" = 0 ] && chown 65534:65534 "$W"
    [ -x "$RR_BIN" ] && router_bin_for_nobody
}

dump_diagnostics() {
    echo "  ---- diagnostics for $RRT_TEST (a check failed) ----"
    if [ -n "$ROUTER_PID" ] && [ -S "$W/ctl.sock" ]; then
        echo "  \$ rootless-router ctl show interfaces"
        ctl show interfaces 2>&1 | head -60 | indent
        echo "  \$ rootless-router ctl show routes"
        ctl show routes 2>&1 | head -60 | indent
    fi
    local ns
    for ns in "$NS_A" "$NS_B"; do
        if [ -n "${WG_PID[$ns]:-}" ]; then
            echo "  \$ wg show (in $ns)"
            wgx "$ns" wg show 2>&1 | head -30 | indent
        fi
    done
    if [ -f "$W/router.log" ]; then
        local n
        n=$(wc -l <"$W/router.log")
        echo "  ---- router log ($n lines; warnings/errors, then the last 150 lines) ----"
        grep -aiE 'warn|error|panic' "$W/router.log" | tail -n 40 | strip_ansi | indent
        echo "    ...."
        tail -n 150 "$W/router.log" | strip_ansi | cut -c1-400 | indent
        [ -n "${RRT_LOGDIR:-}" ] && echo "  (full log: $RRT_LOGDIR/$RRT_TEST.router.log)"
    fi
    echo "  ---- end of diagnostics ----"
}

# ---------------------------------------------------------------- WireGuard peers

# wg_start NS IFNAME: run wireguard-go in the foreground inside NS, in a private
# mount namespace with its own /run/wireguard (wireguard-go's UAPI socket path is
# not per network namespace, so two "wg0"s would otherwise collide).
wg_start() {
    local ns=$1 ifname=$2 log
    log=$W/wg-$ns-$ifname.log
    ip netns exec "$ns" unshare -m --propagation private sh -c '
        mkdir -p /run/wireguard &&
        mount -t tmpfs -o mode=0755 rrt-wg /run/wireguard &&
        exec wireguard-go -f "$1"' sh "$ifname" >"$log" 2>&1 &
    local pid=$!
    WG_PID[$ns/$ifname]=$pid
    [ "$ifname" = wg0 ] && WG_PID[$ns]=$pid
    wait_until 10 nsenter -t "$pid" -m -n -- test -S "/run/wireguard/$ifname.sock" ||
        die "wireguard-go $ifname in $ns did not start: $(cat "$log")"
}

# wgx NS CMD...: run CMD (typically `wg ...`) where NS's wg0 UAPI socket is visible.
wgx() {
    local ns=$1
    shift
    timeout -k 2 20 nsenter -t "${WG_PID[$ns]}" -m -n -- "$@"
}
wgx_if() { # NS IFNAME CMD...
    local key=$1/$2
    shift 2
    timeout -k 2 20 nsenter -t "${WG_PID[$key]}" -m -n -- "$@"
}

# ---------------------------------------------------------------- topology

# topo_up: namespaces, veths, outer addresses, keys. No tunnels yet.
topo_up() {
    RRT_STAGE=topology
    local ns
    for ns in "$NS_R" "$NS_A" "$NS_B"; do
        ip netns add "$ns" || die "ip netns add $ns"
        RRT_NAMESPACES+=("$ns")
        ip -n "$ns" link set lo up || die "lo up in $ns"
    done
    ip link add veth0 netns "$NS_A" type veth peer name veth-a netns "$NS_R" || die "veth a"
    ip link add veth0 netns "$NS_B" type veth peer name veth-b netns "$NS_R" || die "veth b"
    ip -n "$NS_A" addr add "$A_OUTER/24" dev veth0 &&
        ip -n "$NS_R" addr add "$R_OUTER_A/24" dev veth-a &&
        ip -n "$NS_B" addr add "$B_OUTER/24" dev veth0 &&
        ip -n "$NS_R" addr add "$R_OUTER_B/24" dev veth-b || die "outer addresses"
    ip -n "$NS_A" link set veth0 up && ip -n "$NS_B" link set veth0 up &&
        ip -n "$NS_R" link set veth-a up && ip -n "$NS_R" link set veth-b up || die "veth up"
    # The router forwards in userspace: the router namespace's kernel must not.
    nsx "$NS_R" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 ||
        die "sysctl forwarding=0 in $NS_R"
    wait_until 10 nsx "$NS_A" ping -c 1 -W 1 "$R_OUTER_A" || die "outer link a<->r does not work"
    wait_until 10 nsx "$NS_B" ping -c 1 -W 1 "$R_OUTER_B" || die "outer link b<->r does not work"

    local k
    for k in a b r-a r-b; do
        (umask 077 && wg genkey >"$W/$k.key") || die "wg genkey"
        wg pubkey <"$W/$k.key" >"$W/$k.pub" || die "wg pubkey"
    done
    chown 65534:65534 "$W/r-a.key" "$W/r-b.key"
    chmod 600 "$W/r-a.key" "$W/r-b.key"
    chmod 644 "$W"/*.pub
    A_PUB=$(cat "$W/a.pub")
    B_PUB=$(cat "$W/b.pub")
    R_A_PUB=$(cat "$W/r-a.pub")
    R_B_PUB=$(cat "$W/r-b.pub")
    RRT_STAGE=setup
}

# peer_up NS KEYFILE ROUTER_PUB V4 V6 LL [ENDPOINT [KEEPALIVE]]: a DN42 peer: wg0 on
# wireguard-go with AllowedIPs 0.0.0.0/0, ::/0 and the kernel's stack behind it.
peer_up() {
    local ns=$1 key=$2 rpub=$3 v4=$4 v6=$5 ll=$6 ep=${7:-} ka=${8:-}
    RRT_STAGE=peer-$ns
    wg_start "$ns" wg0
    local args=(wg set wg0 private-key "$key" listen-port "$PEER_PORT"
        peer "$rpub" allowed-ips 0.0.0.0/0,::/0)
    [ -n "$ep" ] && args+=(endpoint "$ep")
    [ -n "$ka" ] && args+=(persistent-keepalive "$ka")
    wgx "$ns" "${args[@]}" || die "wg set in $ns"
    ip -n "$ns" link set wg0 addrgenmode none 2>/dev/null
    ip -n "$ns" addr add "$v4/32" dev wg0 &&
        ip -n "$ns" addr add "$v6/128" dev wg0 nodad &&
        ip -n "$ns" addr add "$ll/64" dev wg0 nodad &&
        ip -n "$ns" link set wg0 up &&
        ip -n "$ns" route add 172.20.0.0/14 dev wg0 src "$v4" &&
        ip -n "$ns" -6 route add fd00::/8 dev wg0 src "$v6" || die "wg0 addresses/routes in $ns"
    RRT_STAGE=setup
}

# Standard peers. ROUTER_ENDPOINT_FOR_B: "yes" gives b the router's endpoint and a
# 25 s keepalive (b initiates); "no" leaves b passive (the router must initiate).
peers_up() {
    local b_knows_router=${1:-no}
    peer_up "$NS_A" "$W/a.key" "$R_A_PUB" "$A_V4" "$A_V6" fe80::a "$R_OUTER_A:$R_PORT_A"
    if [ "$b_knows_router" = yes ]; then
        peer_up "$NS_B" "$W/b.key" "$R_B_PUB" "$B_V4" "$B_V6" fe80::b "$R_OUTER_B:$R_PORT_B" 25
    else
        peer_up "$NS_B" "$W/b.key" "$R_B_PUB" "$B_V4" "$B_V6" fe80::b
    fi
}

# ---------------------------------------------------------------- the router under test

# router_tunnels_config [B_ENDPOINT]: the router's two [[interface]] blocks (peer-a,
# peer-b); B_ENDPOINT "none" omits peer-b's endpoint.
router_tunnels_config() {
    local b_ep=${1:-$B_OUTER:$PEER_PORT}
    cat <<EOF
[[interface]]
name = "peer-a"
private_key_file = "$W/r-a.key"
listen_port = $R_PORT_A
peer_public_key = "$A_PUB"
endpoint = "$A_OUTER:$PEER_PORT"
persistent_keepalive = 25
addresses = ["fe80::1/64"]

[[interface]]
name = "peer-b"
private_key_file = "$W/r-b.key"
listen_port = $R_PORT_B
peer_public_key = "$B_PUB"
EOF
    [ "$b_ep" != none ] && echo "endpoint = \"$b_ep\""
    cat <<EOF
persistent_keepalive = 25
addresses = ["fe80::1/64"]
EOF
}

# write_router_config FILE [B_ENDPOINT]: B_ENDPOINT "none" omits peer-b's endpoint.
write_router_config() {
    local f=$1
    {
        cat <<EOF
[router]
asn = 4242420001
addresses = ["$R_V4/32", "$R_V6/128"]
control_socket = "$W/ctl.sock"

EOF
        router_tunnels_config "${2:-}"
        cat <<EOF

[[route]]
prefix = "172.20.1.0/24"
interface = "peer-a"

[[route]]
prefix = "fd00:a::/48"
interface = "peer-a"

[[route]]
prefix = "172.20.2.0/24"
interface = "peer-b"

[[route]]
prefix = "fd00:b::/48"
interface = "peer-b"
EOF
    } >"$f"
    chmod 644 "$f"
}

# The binary must be executable by uid 65534; copy it if the checkout is not.
router_bin_for_nobody() {
    RR_RUN_BIN=$RR_BIN
    if ! as_uid 65534 test -x "$RR_BIN"; then
        mkdir -p "$W/bin" && cp "$RR_BIN" "$W/bin/" && chmod 755 "$W/bin" "$W/bin/rootless-router"
        RR_RUN_BIN=$W/bin/rootless-router
    fi
}

# router_start CONFIG: run the router inside NS_R as uid 65534 with no capabilities.
router_start() {
    local cfg=$1
    RRT_STAGE=router-start
    rm -f "$W/ctl.sock"
    echo "==== router start $(date +%T) config=$cfg" >>"$W/router.log"
    NO_COLOR=1 RUST_LOG=${RRT_RUST_LOG:-debug} RUST_BACKTRACE=1 ip netns exec "$NS_R" \
        setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
        --bounding-set=-all --no-new-privs \
        "$RR_RUN_BIN" run --config "$cfg" >>"$W/router.log" 2>&1 </dev/null &
    ROUTER_PID=$!
    RRT_ROUTER_PID_WAS=$ROUTER_PID
    if ! wait_until 15 router_ready; then
        if ! router_alive; then
            wait "$ROUTER_PID" 2>/dev/null
            local rc=$?
            ROUTER_PID=
            echo "router exited with status $rc during start-up; log:"
            tail -n 40 "$W/router.log" | indent
            die "router exited during start-up (status $rc)"
        fi
        tail -n 40 "$W/router.log" | indent
        die "router did not create its control socket $W/ctl.sock within 15 s"
    fi
    RRT_STAGE=setup
}
router_alive() { [ -n "$ROUTER_PID" ] && kill -0 "$ROUTER_PID" 2>/dev/null; }
# router_reap: after the router died on its own, record how (RRT_ROUTER_DEATH) once,
# with the end of its log.
RRT_ROUTER_DEATH="it was stopped"
router_reap() {
    [ -n "$ROUTER_PID" ] || return 0
    local rc
    wait "$ROUTER_PID" 2>/dev/null
    rc=$?
    ROUTER_PID=
    if [ "$rc" -gt 128 ]; then
        RRT_ROUTER_DEATH="killed by signal $((rc - 128)) ($(kill -l "$((rc - 128))" 2>/dev/null))"
    else
        RRT_ROUTER_DEATH="exited with status $rc"
    fi
    echo "  # the router died: $RRT_ROUTER_DEATH; the end of its log:"
    tail -n 30 "$W/router.log" | strip_ansi | cut -c1-400 | indent
}
router_ready() { router_alive && [ -S "$W/ctl.sock" ]; }

# router_stop: SIGTERM, wait up to 5 s, then SIGKILL. Sets and prints
# ROUTER_STOP_RESULT ("exited N" or "killed").
router_stop() {
    [ -n "$ROUTER_PID" ] || return 0
    local pid=$ROUTER_PID i rc
    ROUTER_PID=
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        ROUTER_STOP_RESULT="killed (still running 5 s after SIGTERM)"
    else
        wait "$pid" 2>/dev/null
        rc=$?
        ROUTER_STOP_RESULT="exited $rc"
    fi
    echo "router: SIGTERM -> $ROUTER_STOP_RESULT"
}

# ctl ARGS...: the control CLI as the router's own uid (65534).
ctl() {
    as_uid 65534 timeout -k 2 20 "$RR_RUN_BIN" ctl --socket "$W/ctl.sock" "$@"
}

# ---------------------------------------------------------------- the reference router

# ref_router_start: the kernel + two wireguard-go interfaces in NS_R, with kernel
# forwarding ON. Validates the topology and the checks themselves.
ref_router_start() {
    RRT_STAGE=reference-router
    nsx "$NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || die "sysctl"
    local ifn port key pub ep
    for ifn in peer-a peer-b; do
        if [ "$ifn" = peer-a ]; then
            port=$R_PORT_A key=$W/r-a.key pub=$A_PUB ep=$A_OUTER:$PEER_PORT
        else
            port=$R_PORT_B key=$W/r-b.key pub=$B_PUB ep=$B_OUTER:$PEER_PORT
        fi
        wg_start "$NS_R" "$ifn"
        wgx_if "$NS_R" "$ifn" wg set "$ifn" private-key "$key" listen-port "$port" \
            peer "$pub" allowed-ips 0.0.0.0/0,::/0 endpoint "$ep" persistent-keepalive 25 ||
            die "wg set $ifn"
        ip -n "$NS_R" link set "$ifn" addrgenmode none 2>/dev/null
        ip -n "$NS_R" addr add "$R_V4/32" dev "$ifn" &&
            ip -n "$NS_R" addr add "$R_V6/128" dev "$ifn" nodad &&
            ip -n "$NS_R" addr add fe80::1/64 dev "$ifn" nodad &&
            ip -n "$NS_R" link set "$ifn" up || die "addresses on $ifn"
    done
    ip -n "$NS_R" route add 172.20.1.0/24 dev peer-a &&
        ip -n "$NS_R" -6 route add fd00:a::/48 dev peer-a &&
        ip -n "$NS_R" route add 172.20.2.0/24 dev peer-b &&
        ip -n "$NS_R" -6 route add fd00:b::/48 dev peer-b || die "routes"
    RRT_STAGE=setup
}

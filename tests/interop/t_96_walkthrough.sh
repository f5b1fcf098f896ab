#!/usr/bin/env bash
# The README's walkthrough ("Walkthrough: from an empty container to a DN42 node"), run
# from the README itself so that it cannot rot. Each fenced block preceded by a marker
# `<!-- walkthrough: NAME -->` is extracted and run as written, as uid 65534 with no
# capabilities in the router's namespace, with HOME=$W/home (the README's ~/dn42 is
# $W/home/dn42), against the README's two peers: BIRD 2 over wireguard-go in their own
# namespaces (peer A 4242420002 with 172.20.1.0/24 + fd00:a::/48, peer B 4242420003 with
# 172.20.2.0/24 + fd00:b::/48, as in bgp_lib.sh).
#
# What a test must change, and nothing else (shown in the output of readme_blocks):
#   - node.toml: PEER_A_PUBLIC_KEY / PEER_B_PUBLIC_KEY become the test peers' public
#     keys, peer-a.example.net becomes peer A's outer address;
#   - roa-update.sh fetches from the Internet, so it is only syntax-checked; the ROA files
#     are the registry's real ones from /work/shared/data/dn42_roa (burble's export of
#     2022-11-09) with one line per test peer prefix appended (the test peers are not
#     registry networks);
#   - `run` is started in the background (the README runs it in the foreground).
# Checks: `check` passes on the README's config; both sessions Established; the router
# has both peers' routes (ROA-valid) and its own announcements, and each peer gets the
# other's through it; the README's ctl commands (show, ping, traceroute) succeed and show
# the sessions and routes; the web server behind [[expose]] answers curl from both peers
# on the node's DN42 addresses (v4 and v6); the looking glass and the metrics answer
# with both sessions Established.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"

README=$RRT_ROOT/README.md
ROA_DIR=${RRT_ROA_DIR:-/work/shared/data/dn42_roa}
ROA4=$ROA_DIR/burble_bird2_20221109_roa_dn42.conf
ROA6=$ROA_DIR/burble_bird2_20221109_roa_dn42_v6.conf
# The walkthrough's node announces a /27 (bgp_lib.sh's other tests a /24).
R_NET4=172.20.3.0/27
HELLO="hello from AS4242420001"
BLOCKS="keys node.toml roa-update.sh service check run verify from-peer looking-glass"

require_netns readme_blocks sessions_established readme_verify_commands service_from_peers
require_tools ip wg wireguard-go ping bird birdc setpriv nsenter unshare sysctl timeout curl "$PY"
require_router_bin
for f in "$ROA4" "$ROA6"; do
    [ -r "$f" ] || { skip readme_blocks "ROA data $f not found (set RRT_ROA_DIR)"; exit 0; }
done
# The service block runs python3 as uid 65534: it must be on the PATH below.
[ -x /usr/bin/python3 ] || { skip readme_blocks "no /usr/bin/python3 for the README's web server"; exit 0; }

rrt_init
topo_up
WH=$W/home
NODE=$WH/dn42
mkdir -p "$NODE" "$W/xdg" "$W/walk"
chown -R 65534:65534 "$WH" "$W/xdg"
chmod 700 "$W/xdg"
WALK_PATH=$(dirname "$RR_RUN_BIN"):/usr/local/bin:/usr/bin:/bin

# extract_blocks: every marked block of the README into $W/walk/NAME.
extract_blocks() {
    "$PY" - "$README" "$W/walk" <<'EOF'
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
i, found = 0, []
while i < len(lines):
    m = re.fullmatch(r"<!-- walkthrough: (\S+) -->", lines[i].strip())
    i += 1
    if not m:
        continue
    if i >= len(lines) or not lines[i].startswith("```"):
        sys.exit("marker %s is not followed by a fenced block" % m.group(1))
    body = []
    i += 1
    while i < len(lines) and lines[i] != "```":
        body.append(lines[i])
        i += 1
    open("%s/%s" % (sys.argv[2], m.group(1)), "w").write("\n".join(body) + "\n")
    found.append(m.group(1))
print("blocks:", " ".join(found))
EOF
}

# as_node NS CMD...: CMD as uid 65534 with no capabilities in NS, in ~/dn42, with the
# environment of a fresh login (HOME, XDG_RUNTIME_DIR, a PATH with rootless-router).
as_node() {
    local ns=$1
    shift
    # shellcheck disable=SC2016 # $HOME and $@ are the inner sh's
    ip netns exec "$ns" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
        --bounding-set=-all --no-new-privs \
        env -i HOME="$WH" XDG_RUNTIME_DIR="$W/xdg" PATH="$WALK_PATH" LANG=C.UTF-8 \
        NO_COLOR=1 RUST_LOG="${RRT_RUST_LOG:-debug}" RUST_BACKTRACE=1 \
        sh -c 'cd "$HOME/dn42" && exec "$@"' sh "$@"
}

# block NAME: run the README's block NAME (bash -e) as the node's user in the router's
# namespace; its output on stdout.
block() {
    echo "+ README block '$1':"
    sed -e 's/^/    /' "$W/walk/$1"
    timeout -k 2 60 bash -c 'as_node "$@"' _ "$NS_R" bash -e "$W/walk/$1"
}
export -f as_node
export W WH WALK_PATH NS_R

# c_blocks: every marker present; the config substituted exactly as the header says;
# the shell blocks parse.
c_blocks() {
    extract_blocks || return 1
    local b ok=0
    for b in $BLOCKS; do
        [ -s "$W/walk/$b" ] || { echo "missing block: $b"; ok=1; }
    done
    [ "$ok" = 0 ] || return 1
    for b in $BLOCKS; do
        [ "$b" = node.toml ] && continue
        bash -n "$W/walk/$b" || { echo "block $b does not parse"; ok=1; }
    done
    local pat
    for pat in PEER_A_PUBLIC_KEY PEER_B_PUBLIC_KEY peer-a.example.net:51820; do
        [ "$(grep -c -- "$pat" "$W/walk/node.toml")" = 1 ] ||
            { echo "node.toml: expected '$pat' exactly once"; ok=1; }
    done
    [ "$(grep -cv '^[[:space:]]*\(#\|$\)' "$W/walk/run")" = 1 ] ||
        { echo "the run block must be one command"; ok=1; }
    return "$ok"
}
run_check readme_blocks c_blocks || exit 1

# The README's keys, generated by the README's commands.
c_keys() {
    block keys || return 1
    ls -l "$NODE/private.key" "$NODE/public.key"
    [ "$(stat -c %a "$NODE/private.key")" = 600 ] &&
        [ "$(wc -c <"$NODE/public.key")" = 45 ]
}
run_check readme_keys c_keys || exit 1
R_PUB=$(cat "$NODE/public.key")

# The config: the README's, with the test peers' keys and peer A's address.
sed -e "s|PEER_A_PUBLIC_KEY|$A_PUB|" -e "s|PEER_B_PUBLIC_KEY|$B_PUB|" \
    -e "s|peer-a.example.net:51820|$A_OUTER:$PEER_PORT|" "$W/walk/node.toml" >"$NODE/node.toml"
info "node.toml = the README's, changed:"
diff "$W/walk/node.toml" "$NODE/node.toml" | indent
# The ROA files: the registry's real ones plus the test peers' prefixes.
cp "$ROA4" "$NODE/roa_dn42.conf"
cp "$ROA6" "$NODE/roa_dn42_v6.conf"
cat >>"$NODE/roa_dn42.conf" <<EOF
route $A_NET4 max 24 as $A_ASN;
route $B_NET4 max 24 as $B_ASN;
EOF
cat >>"$NODE/roa_dn42_v6.conf" <<EOF
route $A_NET6 max 48 as $A_ASN;
route $B_NET6 max 48 as $B_ASN;
EOF
info "ROA files: $(basename "$ROA4"), $(basename "$ROA6") + the peers' $A_NET4 $B_NET4 $A_NET6 $B_NET6"
chown 65534:65534 "$NODE"/*

run_check readme_check_passes block check || exit 1

# The peers: A waits for us (the README gives the router its endpoint), B connects to
# the port the README's config listens on for it.
B_TO_ROUTER_PORT=$(awk '/^name = "dn42-peer-b"/ { b = 1 } b && /^listen_port/ { print $3; exit }' "$NODE/node.toml")
[ -n "$B_TO_ROUTER_PORT" ] || die "no listen_port for dn42-peer-b in the README's node.toml"
bgp_peer_up "$NS_A" "$W/a.key" "$R_PUB" "$A_V4" "$A_V6" fe80::a
bgp_peer_up "$NS_B" "$W/b.key" "$R_PUB" "$B_V4" "$B_V6" fe80::b "$R_OUTER_B:$B_TO_ROUTER_PORT"
PEER_KIND=([a]=bird [b]=bird)
peer_start a
peer_start b

# The web server, as the README starts it (in the background here).
bash -c 'as_node "$@"' _ "$NS_R" bash -e "$W/walk/service" >"$W/service.log" 2>&1 </dev/null &
RRT_PIDS+=($!)
wait_until 10 nsx "$NS_R" curl -fsS -o /dev/null http://127.0.0.1:8080/ ||
    die "the README's web server does not answer on 127.0.0.1:8080: $(cat "$W/service.log")"

# The router, started with the README's run command.
RRT_STAGE=router-start
echo "==== router start $(date +%T): $(grep -v '^#' "$W/walk/run")" >>"$W/router.log"
bash -c 'as_node "$@"' _ "$NS_R" sh -c "exec $(grep -v '^[[:space:]]*#' "$W/walk/run")" \
    >>"$W/router.log" 2>&1 </dev/null &
ROUTER_PID=$!
RRT_ROUTER_PID_WAS=$ROUTER_PID
# lib.sh's ctl and diagnostics use $W/ctl.sock; ctl in the README finds the default one.
ln -sf "$W/xdg/rootless-router.sock" "$W/ctl.sock"
wait_until 15 router_ready || die "the router did not create $W/xdg/rootless-router.sock: $(tail -20 "$W/router.log")"
RRT_STAGE=setup
pass router_started
RRT_NEED_ROUTER=1

run_check sessions_established c_sessions_up 60
c_routes() {
    wait_until 20 eval 'c_rtr_routes >/dev/null'
    c_rtr_routes
}
run_check routes_from_both_peers c_routes
run_check peers_get_each_others_routes c_peer_paths

# c_block_output NAME WORDS...: the block runs (exit 0) and its output has every WORD.
c_block_output() {
    local name=$1 out rc ok=0 w
    shift
    out=$(block "$name" 2>&1)
    rc=$?
    echo "$out"
    echo "(exit $rc)"
    [ "$rc" = 0 ] || ok=1
    for w in "$@"; do
        grep -qF -- "$w" <<<"$out" || { echo "(missing: $w)"; ok=1; }
    done
    return "$ok"
}
run_check readme_verify_commands c_block_output verify \
    Established "$A_NET4" "$B_NET6" "$R_NET4"

# The README's curl lines from each peer's own machine (its kernel, routes from BIRD).
from_peer() {
    local out
    out=$(timeout -k 2 30 ip netns exec "$1" bash -e "$W/walk/from-peer" 2>&1) || return 1
    [ "$(grep -cxF "$HELLO" <<<"$out")" = 2 ]
}
c_service_from_peers() {
    local who ns ok=0
    sed -e 's/^/    /' "$W/walk/from-peer"
    for who in a b; do
        ns=$(peer_ns "$who")
        wait_until 20 from_peer "$ns"
        echo "---- from peer $who ($ns):"
        timeout -k 2 30 ip netns exec "$ns" bash -e "$W/walk/from-peer" 2>&1
        from_peer "$ns" || ok=1
    done
    return "$ok"
}
run_check service_from_peers c_service_from_peers
run_check looking_glass_and_metrics c_block_output looking-glass \
    peer_a peer_b "$A_NET4" \
    'session="peer_a",neighbor="fe80::a%dn42-peer-a",state="Established"} 1' \
    'session="peer_b",neighbor="fe80::b%dn42-peer-b",state="Established"} 1'
run_check router_alive_at_end router_alive

#!/usr/bin/env bash
# rootless-router's `transport = "host"` BGP session against a real BIRD 2 on loopback:
# t_50's topology (BIRD in a and b over WireGuard tunnels, MP-BGP over link-local) plus a
# "local daemon" in the router's own namespace r: BIRD 2 as root listening on
# 127.0.0.2:179 (passive, multihop), AS 4242420050, originating 172.20.50.0/24 and
# fd00:50::/48 with community (64511,50). The router (uid 65534, no capabilities) connects
# to it over the host kernel's TCP from 127.0.0.1; the session's `interface = "peer-a"`
# makes its routes leave through the tunnel to a (the config has no other place for them:
# a host session without `interface` resolves next hops through static routes, and this
# config has none). Checks: the host session is Established at both ends and is a kernel
# TCP connection of the router process; the router has the local prefixes from it (peer,
# AS path, tunnel); the local BIRD learned the router's own prefixes and both tunnel peers'
# with the right AS paths; b and a learned the local prefixes with path
# `4242420001 4242420050`; SIGKILL of the local BIRD (the kernel closes its TCP) takes the
# session and its routes down at the router and at b well within the hold time, the tunnel
# sessions stay up; restarted, everything comes back; the router stays unprivileged.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"
. "$(dirname "$0")/ctl_checks.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"

# The local daemon ("l" for the peer_* functions; its protocol is called peer_r like the
# tunnel peers' so that peer_state / peer_show work on it).
L_ASN=4242420050
L_ADDR=127.0.0.2
L_NET4=172.20.50.0/24
L_NET6=fd00:50::/48
L_NEXT_HOP6=fd00:50::1
L_SESSION=local_bird

require_netns sessions_established
require_tools ip wg wireguard-go ping bird birdc setpriv nsenter unshare sysctl ss timeout "$PY"
require_router_bin

# local_bird_conf: BIRD config of the local daemon: the DN42 wiki's preamble and channels
# (bgp_lib.sh) without a kernel protocol (the router namespace's kernel routes nothing),
# its two prefixes, and one passive session on 127.0.0.2 toward the router's host TCP
# (127.0.0.1). `multihop`: a loopback neighbor is no directly connected one for BIRD; it
# also makes BIRD resolve the router's next hops recursively (through the router's own
# announced prefixes here; this BIRD is a collector/injector, not a forwarder). The ipv6
# channel needs `next hop address`: on an IPv4 session BIRD has no IPv6 address of its own
# to send and otherwise announces fd00:50::/48 with next hop :: ("Invalid NEXT_HOP").
local_bird_conf() {
    local f=$W/bird-l.conf c="bgp_community.add((64511,50));"
    bird_conf_head "$f" "$L_ASN" 172.20.50.1 "$L_NET4+" "$L_NET6+" "" ""
    bird_conf_static "$f" own4 ipv4 "$L_NET4" "$c"
    bird_conf_static "$f" own6 ipv6 "$L_NET6" "$c"
    cat >>"$f" <<EOF

protocol bgp peer_r from dnpeers {
  local $L_ADDR as OWNAS;
  neighbor 127.0.0.1 as $R_ASN;
  passive on;
  multihop;
  ipv6 { next hop address $L_NEXT_HOP6; };
}
EOF
    echo "$f"
}

# local_bird_start: BIRD in NS_R as root (it binds port 179).
local_bird_start() { bird_start "$NS_R" l "$LOCAL_CONF"; }

# rr_host_session FIELD: a field of the router's host session in `show bgp --json`.
rr_host_session() { rr_json session "$L_SESSION" "$1"; }

# c_host_session_up TIMEOUT: Established in the router's JSON (transport "host", neighbor
# 127.0.0.2:179, the local ASN) and in the local BIRD; the TCP connection in the router
# namespace's kernel is 127.0.0.1 -> 127.0.0.2:179 and belongs to the router process.
c_host_session_up() {
    local ok=0 ss_out
    wait_until "$1" eval 'rtr_established "$L_SESSION" && peer_established l' || ok=1
    echo "router $L_SESSION: state '$(rr_host_session state)' transport '$(rr_host_session transport)'" \
        "neighbor '$(rr_host_session neighbor)' remote_asn '$(rr_host_session remote_asn)'" \
        "interface '$(rr_host_session interface)'"
    echo "local BIRD peer_r: '$(peer_state l)'"
    [ "$(rr_host_session transport)" = host ] || ok=1
    [ "$(rr_host_session neighbor)" = "$L_ADDR:179" ] || ok=1
    [ "$(rr_host_session remote_asn)" = "$L_ASN" ] || ok=1
    [ "$(rr_host_session interface)" = peer-a ] || ok=1
    echo "+ ss -tnp state established '( dport = :179 )' (in r)"
    ss_out=$(nsx "$NS_R" ss -Htnp state established '( dport = :179 )' 2>&1)
    echo "$ss_out"
    grep -E "127\.0\.0\.1:[0-9]+ +$L_ADDR:179 .*pid=$ROUTER_PID," <<<"$ss_out" >/dev/null ||
        { echo "(no established 127.0.0.1 -> $L_ADDR:179 connection of pid $ROUTER_PID)"; ok=1; }
    if [ "$ok" != 0 ]; then
        rtr_show
        peer_show l
    fi
    return "$ok"
}

# rr_route_json PREFIX: "source peer as_path interface gateway communities" of the
# router's best route for PREFIX (as_path and communities comma-joined, "-" when absent).
rr_route_json() {
    ctl show routes --json 2>/dev/null | "$PY" -c '
import json, sys
for r in json.load(sys.stdin).get("routes", []):
    if r.get("prefix") == sys.argv[1] and not r.get("filtered") and r.get("best", True):
        print(r.get("source", ""), r.get("peer") or "-", (r.get("as_path") or "-").replace(" ", ","),
              r.get("interface") or "-", r.get("gateway") or "-", ",".join(c.replace(" ", "") for c in r.get("communities", [])) or "-")
        break' "$1"
}

# c_router_has_local: the router's best routes for the local prefixes come from the host
# session, with the local ASN as AS path, out of the tunnel peer-a, the next hop the local
# BIRD sent (its session address for IPv4, its `next hop address` for IPv6) and the local
# community.
c_router_has_local() {
    local ok=0 pfx want got
    for pfx in "$L_NET4" "$L_NET6"; do
        case $pfx in
        *:*) want="bgp $L_SESSION $L_ASN peer-a $L_NEXT_HOP6 (64511,50)" ;;
        *) want="bgp $L_SESSION $L_ASN peer-a $L_ADDR (64511,50)" ;;
        esac
        wait_until 15 eval '[ "$(rr_route_json "$pfx")" = "$want" ]'
        got=$(rr_route_json "$pfx")
        echo "router route $pfx: '$got' (expected '$want')"
        [ "$got" = "$want" ] || ok=1
    done
    [ "$ok" = 0 ] || rtr_show
    return "$ok"
}

# c_local_learns: the local BIRD has the router's own prefixes via the router, and both
# tunnel peers' via the router and the peer.
c_local_learns() {
    local ok=0
    c_peer_path l "$R_NET4" "$R_ASN" || ok=1
    c_peer_path l "$R_NET6" "$R_ASN" || ok=1
    c_peer_path l "$A_NET4" "$R_ASN $A_ASN" || ok=1
    c_peer_path l "$A_NET6" "$R_ASN $A_ASN" || ok=1
    c_peer_path l "$B_NET4" "$R_ASN $B_ASN" || ok=1
    c_peer_path l "$B_NET6" "$R_ASN $B_ASN" || ok=1
    return "$ok"
}

# c_peers_learn_local: b (and a, whose tunnel the local routes leave through) have the
# local prefixes via the router and the local daemon; b also gets the local community.
c_peers_learn_local() {
    local ok=0 who c
    for who in b a; do
        c_peer_path "$who" "$L_NET4" "$R_ASN $L_ASN" || ok=1
        c_peer_path "$who" "$L_NET6" "$R_ASN $L_ASN" || ok=1
    done
    c=$(peer_route b "$L_NET4" communities)
    echo "b: $L_NET4 communities '$c' (expected 64511:50)"
    [ "$c" = "64511:50" ] || ok=1
    return "$ok"
}

local_gone_everywhere() {
    rtr_down "$L_SESSION" && rtr_lacks_route "$L_NET4" && rtr_lacks_route "$L_NET6" &&
        peer_lacks_route b "$L_NET4" && peer_lacks_route b "$L_NET6"
}
local_gone_report() {
    echo "router session $L_SESSION '$(rtr_state "$L_SESSION")', last_error '$(rr_host_session last_error)'"
    echo "router route $L_NET4: '$(rtr_route "$L_NET4")', $L_NET6: '$(rtr_route "$L_NET6")'"
    echo "b: $L_NET4 via '$(peer_as_path b "$L_NET4")', $L_NET6 via '$(peer_as_path b "$L_NET6")'"
}

# c_local_killed: SIGKILL of the local BIRD: its kernel closes the TCP connection, so the
# router's session goes down and the local routes are gone at the router and at b within
# 5 s, well before the 9 s hold timer could have done it; the tunnel sessions stay up.
c_local_killed() {
    local t0 ok=0 limit=5
    echo "+ kill -KILL $(peer_pid l) (local BIRD in r)"
    peer_kill l || return 1
    t0=$SECONDS
    if wait_until "$limit" local_gone_everywhere; then
        echo "after $((SECONDS - t0)) s:"
        local_gone_report
    else
        echo "after $limit s:"
        local_gone_report
        rtr_show
        ok=1
    fi
    if ! { rtr_established peer_a && rtr_established peer_b; }; then
        echo "a tunnel session went down too: peer_a $(rtr_state peer_a), peer_b $(rtr_state peer_b)"
        ok=1
    fi
    peer_established b || { echo "b's session went down"; ok=1; }
    return "$ok"
}

# c_local_returns: the local BIRD starts again: the router reconnects (connect retry 2 s)
# and b has the local prefixes again.
c_local_returns() {
    local t0
    echo "+ start the local BIRD again"
    local_bird_start
    t0=$SECONDS
    if wait_until 30 eval 'rtr_established "$L_SESSION" && peer_established l &&
        [ "$(peer_as_path b "$L_NET4")" = "$R_ASN $L_ASN" ] && [ "$(peer_as_path b "$L_NET6")" = "$R_ASN $L_ASN" ]'; then
        echo "after $((SECONDS - t0)) s: Established, b has the local prefixes again"
        return 0
    fi
    echo "after 30 s: router $L_SESSION '$(rtr_state "$L_SESSION")', local BIRD '$(peer_state l)'"
    peer_show l
    peer_show b "$L_NET4"
    rtr_show
    return 1
}

rrt_init
topo_up
bgp_peers_up
write_bgp_router_config "$W/router.toml"
cat >>"$W/router.toml" <<EOF

[[bgp]]
name = "$L_SESSION"
neighbor = "$L_ADDR"
port = 179
transport = "host"
interface = "peer-a"
remote_asn = $L_ASN
hold_time = $BGP_HOLD
keepalive = $BGP_KEEPALIVE
connect_retry = 2
EOF
run_check check_config_ok c_check_config "$W/router.toml"
PEER_KIND=([a]=bird [b]=bird [l]=bird)
LOCAL_CONF=$(local_bird_conf)
local_bird_start
pass local_bird_started
router_start "$W/router.toml"
pass router_started
RRT_NEED_ROUTER=1
peer_start a
peer_start b

run_check sessions_established c_sessions_up 40
run_check host_session_established c_host_session_up 30 || exit 1
run_check router_has_local_prefixes c_router_has_local
run_check local_bird_learns_router_and_peers c_local_learns
run_check peers_learn_local_prefixes c_peers_learn_local
run_check local_killed_routes_gone c_local_killed
run_check local_restarted_routes_back c_local_returns
run_check router_unprivileged c_unprivileged
run_check kernel_forwarding_off c_forwarding_off
run_check router_alive_at_end router_alive

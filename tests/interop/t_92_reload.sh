#!/usr/bin/env bash
# `rootless-router ctl reload` against BIRD peers in t_50's topology: session peer_a gets
# an import policy ("a-in": 172.20.41.0/24 -> reject) added to the router's config file,
# then `ctl reload`. Checks: the answer names peer_a re-evaluated and peer_b kept; the
# policy takes effect (the prefix filtered with reason policy, no longer exported to b)
# while neither BGP session flaps (the `show protocols` since-time of BIRD a and b and
# the router's since_secs unchanged, Established throughout). Then an invalid config (an
# import_policy naming no [[policy]]): `ctl reload` exits non-zero naming the error,
# nothing changes (decisions, sessions). Then tunnels live: peer-b's [[interface]] and
# its session removed (BIRD b gets a Cease, b's routes leave the router and a, the
# router's UDP port for b is closed), then added back together with a's policy taken
# away in one reload: b's wireguard-go and BIRD come back up through the new tunnel
# (a new interface index), b's routes reach a again, a pings b across the router — and
# BIRD a's session never flaps through either reload. Last, `[router] announce` gains a
# prefix and `region` is set: both BIRDs receive the new prefix, every prefix of ours
# carries (64511,41), no session flaps; then SIGHUP (region 42) does the same as
# `ctl reload`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"
. "$(dirname "$0")/ctl_checks.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"
. "$(dirname "$0")/roa_lib.sh"

require_netns sessions_established
require_tools ip wg wireguard-go ping bird birdc setpriv nsenter unshare sysctl timeout "$PY"
require_router_bin

REJ4=172.20.41.0/24 PLAIN4=172.20.42.0/24

rrt_init
topo_up
bgp_peers_up
peer_bird_conf_with a "rej4 ipv4 '$REJ4' ''" "plain4 ipv4 '$PLAIN4' ''"
peer_bird_conf_with b

write_policy_router_config "$W/router.toml"
policy_router_up "$W/router.toml"
peer_start a
peer_start b

run_check sessions_established c_sessions_up 40 || exit 1
run_check before_reload_accepted c_rr_decisions 10 \
    "$REJ4 peer_a best" "$PLAIN4 peer_a best"
run_check before_reload_exported c_peer_paths_within 10 \
    "b $REJ4 $R_ASN $A_ASN" "b $PLAIN4 $R_ASN $A_ASN"

# bird_since WHO: BIRD WHO's since-time of its session peer_r (`show protocols`).
bird_since() {
    birdc "$1" show protocols peer_r | awk '$1 == "peer_r" { print $5 }'
}

# sessions_snapshot: "a-since b-since rr-a-since-secs rr-b-since-secs" now.
sessions_snapshot() {
    echo "$(bird_since a) $(bird_since b) $(rr_session_field peer_a since_secs) $(rr_session_field peer_b since_secs)"
}

# c_no_flap "SNAPSHOT": every session Established at both ends, BIRD's since-times the
# same moment as in SNAPSHOT (bird_since_same) and the router's since_secs not smaller
# (a reset starts them again).
c_no_flap() {
    local a0 b0 ra0 rb0 a1 b1 ra1 rb1 ok=0
    read -r a0 b0 ra0 rb0 <<<"$1"
    read -r a1 b1 ra1 rb1 <<<"$(sessions_snapshot)"
    echo "BIRD a peer_r since '$a0' -> '$a1'; BIRD b peer_r since '$b0' -> '$b1'"
    echo "router peer_a since_secs $ra0 -> $ra1; peer_b $rb0 -> $rb1"
    echo "state: router peer_a $(rtr_state peer_a), peer_b $(rtr_state peer_b); a $(peer_state a), b $(peer_state b)"
    bird_since_same "$a0" "$a1" && bird_since_same "$b0" "$b1" || ok=1
    [ -n "$ra1" ] && [ "$ra1" -ge "$ra0" ] && [ -n "$rb1" ] && [ "$rb1" -ge "$rb0" ] || ok=1
    rtr_established peer_a && rtr_established peer_b && peer_established a &&
        peer_established b || ok=1
    return "$ok"
}

# Up long enough that a flap shows in the since-times (BIRD's are to the second).
# shellcheck disable=SC2016
wait_until 10 eval '[ "$(rr_session_field peer_a since_secs)" -ge 2 ] && [ "$(rr_session_field peer_b since_secs)" -ge 2 ]'
SNAP=$(sessions_snapshot)

# c_reload_applied LINE...: `ctl reload` exits 0 and its output has every LINE.
c_reload_applied() {
    local out rc ok=0 p
    out=$(ctl reload 2>&1)
    rc=$?
    echo "ctl reload -> exit $rc:"
    echo "$out"
    [ "$rc" = 0 ] || ok=1
    for p in "$@"; do
        grep -qxF -- "$p" <<<"$out" || { echo "(missing line: $p)"; ok=1; }
    done
    return "$ok"
}

RRC_BGP_A='import_policy = "a-in"'
RRC_TAIL='[[policy]]
name = "a-in"
default = "accept"
[[policy.rule]]
prefix = ["172.20.41.0/24"]
action = "reject"'
write_policy_router_config "$W/router.toml"
run_check reload_policy_reevaluated c_reload_applied \
    "reloaded $W/router.toml" \
    "  kept:              peer_b" \
    "  re-evaluated:      peer_a (import_policy, policy \"a-in\")" \
    "  tunnels kept:      peer-a, peer-b"
run_check policy_took_effect c_rr_decisions 10 \
    "$REJ4 peer_a filtered policy" "$PLAIN4 peer_a best"
run_check policy_withdrawn_from_b c_peer_paths_within 10 \
    "b $REJ4" "b $PLAIN4 $R_ASN $A_ASN"
run_check reload_no_flap c_no_flap "$SNAP"

# An invalid config: refused whole, nothing changes.
RRC_BGP_A='import_policy = "nope"'
write_policy_router_config "$W/router.toml"
# c_reload_refused TEXT: `ctl reload` exits non-zero, says nothing changed, and names
# the config's error (a line containing TEXT, with the file and line number).
c_reload_refused() {
    local out rc ok=0
    out=$(ctl reload 2>&1)
    rc=$?
    echo "ctl reload -> exit $rc:"
    echo "$out"
    [ "$rc" != 0 ] || ok=1
    [ "$(head -1 <<<"$out")" = "reload of $W/router.toml refused, nothing changed:" ] || ok=1
    grep -qF -- "  $W/router.toml:" <<<"$out" && grep -qF -- "$1" <<<"$out" || ok=1
    return "$ok"
}
run_check reload_invalid_refused c_reload_refused 'no [[policy]] is named "nope"'
run_check invalid_reload_changed_nothing c_rr_decisions 5 \
    "$REJ4 peer_a filtered policy" "$PLAIN4 peer_a best"
run_check invalid_reload_still_withdrawn c_peer_paths_within 5 \
    "b $REJ4" "b $PLAIN4 $R_ASN $A_ASN"
run_check invalid_reload_no_flap c_no_flap "$SNAP"

# ---- tunnels: peer-b removed, then added back (with a's policy removed) ----

# a_snapshot: "a-since rr-a-since-secs" now.
a_snapshot() { echo "$(bird_since a) $(rr_session_field peer_a since_secs)"; }

# c_a_no_flap "SNAPSHOT": BIRD a's since-time unchanged, the router's peer_a since_secs
# not smaller, both ends Established.
c_a_no_flap() {
    local a0 ra0 a1 ra1 ok=0
    read -r a0 ra0 <<<"$1"
    read -r a1 ra1 <<<"$(a_snapshot)"
    echo "BIRD a peer_r since '$a0' -> '$a1'; router peer_a since_secs $ra0 -> $ra1"
    echo "state: router peer_a $(rtr_state peer_a), a $(peer_state a)"
    bird_since_same "$a0" "$a1" || ok=1
    [ -n "$ra1" ] && [ "$ra1" -ge "$ra0" ] || ok=1
    rtr_established peer_a && peer_established a || ok=1
    return "$ok"
}

# c_within SECONDS CHECK ARGS...: CHECK passes within SECONDS; its last output shown.
c_within() {
    local t=$1
    shift
    wait_until "$t" "$@" >/dev/null 2>&1
    "$@"
}

# without_peer_b FILE: FILE without peer-b's [[interface]] and peer_b's [[bgp]].
without_peer_b() {
    "$PY" - "$1" <<'PYEOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
blocks = re.split(r'(?m)^(?=\[)', text)
keep = [b for b in blocks
        if not (b.startswith('[[interface]]') and 'name = "peer-b"' in b)
        and not (b.startswith('[[bgp]]') and 'name = "peer_b"' in b)]
open(path, 'w').write(''.join(keep))
PYEOF
}

# c_port_closed PORT: nothing in the router's namespace listens on UDP PORT.
c_port_closed() {
    local out
    out=$(nsx "$NS_R" ss -Hulnp "sport = :$1" 2>&1)
    echo "+ ss -ulnp sport = :$1 -> ${out:-(nothing)}"
    [ -z "$out" ]
}

# c_interfaces "NAME:INDEX"...: `ctl show interfaces --json` lists exactly these.
c_interfaces() {
    local got
    got=$(ctl show interfaces --json | "$PY" -c '
import json, sys
print(" ".join("%s:%d" % (i["name"], i["index"]) for i in json.load(sys.stdin)["interfaces"]))')
    echo "interfaces: $got (want: $*)"
    [ "$got" = "$*" ]
}

# c_b_ceased: BIRD b's session is down and says it received Cease/Peer De-configured
# (RFC 4486 subcode 3: the session was removed from the router's config).
c_b_ceased() {
    local out
    out=$(birdc b show protocols all peer_r)
    echo "$out" | head -8
    ! peer_established b && grep -q "Received: Peer de-configured" <<<"$out"
}

ASNAP=$(a_snapshot)
RRC_BGP_A='import_policy = "a-in"'
write_policy_router_config "$W/router.toml"
without_peer_b "$W/router.toml"
run_check reload_tunnel_removed c_reload_applied \
    "reloaded $W/router.toml" \
    "  kept:              peer_a" \
    "  removed:           peer_b" \
    "  tunnels kept:      peer-a" \
    "  tunnels removed:   peer-b"
run_check removed_b_got_cease c_within 10 c_b_ceased
run_check removed_tunnel_port_closed wait_until 5 c_port_closed "$R_PORT_B"
run_check removed_interfaces c_interfaces "peer-a:0"
run_check removed_b_routes_gone c_peer_paths_within 10 "a $B_NET4" "a $B_NET6"
run_check removed_a_no_flap c_a_no_flap "$ASNAP"

RRC_BGP_A=
RRC_TAIL=
write_policy_router_config "$W/router.toml"
run_check reload_tunnel_added c_reload_applied \
    "reloaded $W/router.toml" \
    "  re-evaluated:      peer_a (import_policy)" \
    "  added:             peer_b" \
    "  tunnels kept:      peer-a" \
    "  tunnels added:     peer-b"
run_check added_interfaces c_interfaces "peer-a:0 peer-b:2"
run_check added_b_established wait_until 40 eval 'rtr_established peer_b && peer_established b'
run_check added_b_routes_at_a c_peer_paths_within 20 \
    "a $B_NET4 $R_ASN $B_ASN" "a $B_NET6 $R_ASN $B_ASN"
run_check added_policy_gone c_rr_decisions 10 "$REJ4 peer_a best" "$PLAIN4 peer_a best"
run_check added_ping_a_to_b c_ping_within 15 "$NS_A" -c 1 -W 2 -I "$A_V4" "$B_V4"
run_check added_a_no_flap c_a_no_flap "$ASNAP"

# ---- [router] announce and region: a prefix of ours added, the region set ----
NEW4=172.20.99.0/24
SNAP=$(sessions_snapshot)
RRC_ROUTER='region = 41'
write_policy_router_config "$W/router.toml"
sed -i "s|^announce = \[\"$R_NET4\"|announce = [\"$NEW4\", \"$R_NET4\"|" "$W/router.toml"
grep -q "^announce = \[\"$NEW4\", \"$R_NET4\"" "$W/router.toml" || die "announce not rewritten"
run_check reload_announce_applied c_reload_applied \
    "reloaded $W/router.toml" \
    "  kept:              peer_a, peer_b" \
    "  announce:          prefixes and communities applied"
run_check announce_new_prefix_at_peers c_peer_paths_within 15 \
    "a $NEW4 $R_ASN" "b $NEW4 $R_ASN" "a $R_NET4 $R_ASN"
# c_region_community WHO PREFIX: WHO's route for PREFIX carries (64511,41).
c_region_community() {
    local got
    wait_until 10 eval '[[ " $(peer_route "$1" "$2" communities) " == *" 64511:41 "* ]]'
    got=$(peer_route "$1" "$2" communities)
    echo "$1: $2 communities '$got' (want 64511:41 among them)"
    [[ " $got " == *" 64511:41 "* ]]
}
# c_show_routes_prefix PREFIX: `ctl show routes PREFIX` lists exactly PREFIX's routes
# (our own announce route here), and nothing else of the table.
c_show_routes_prefix() {
    local got
    got=$(ctl show routes "$1" --json | "$PY" -c '
import json, sys
print(" ".join(sorted(r["prefix"] + ":" + r["source"] for r in json.load(sys.stdin)["routes"])))')
    echo "ctl show routes $1 -> $got"
    [ "$got" = "$1:announce" ]
}
run_check show_routes_of_a_prefix c_show_routes_prefix "$NEW4"
run_check announce_region_on_new c_region_community a "$NEW4"
run_check announce_region_on_old c_region_community b "$R_NET4"
run_check announce_no_flap c_no_flap "$SNAP"

# ---- SIGHUP does what `ctl reload` does: region 42 ----
RRC_ROUTER='region = 42'
write_policy_router_config "$W/router.toml"
sed -i "s|^announce = \[\"$R_NET4\"|announce = [\"$NEW4\", \"$R_NET4\"|" "$W/router.toml"
# c_sighup_region: SIGHUP to the router (as root, the test's right over its child);
# the router logs the reload and BIRD a's routes from it carry (64511,42).
c_sighup_region() {
    local got
    echo "+ kill -HUP $ROUTER_PID"
    kill -HUP "$ROUTER_PID" || return 1
    wait_until 10 eval '[[ " $(peer_route a "$NEW4" communities) " == *" 64511:42 "* ]]'
    got=$(peer_route a "$NEW4" communities)
    echo "a: $NEW4 communities '$got' (want 64511:42 among them)"
    grep -E "SIGHUP: reloading the config|config reloaded" "$W/router.log" | tail -2
    grep -q "SIGHUP: reloading the config" "$W/router.log" && [[ " $got " == *" 64511:42 "* ]]
}
run_check sighup_reloads c_sighup_region
run_check sighup_no_flap c_no_flap "$SNAP"
run_check router_alive_at_end router_alive

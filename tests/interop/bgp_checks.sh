# shellcheck shell=bash
# BGP checks shared by the BIRD, FRR and GoBGP interop tests (t_50, t_60, t_70) and by
# their reference runs (t_05: BIRD 2 + kernel forwarding as the router).
#
# The router in the middle is either rootless-router (BGP_RTR=rr: asked through
# `rootless-router ctl show bgp|routes --json`) or the reference (BGP_RTR=ref: BIRD in
# NS_R, asked through birdc). The rtr_* functions hide which; the c_* functions print
# what they ran and saw and return 0 for PASS.
BGP_RTR=${BGP_RTR:-rr}

# ---------------------------------------------------------------- the router's view

# rr_json KIND QUERY ARGS...: one answer from rootless-router's ctl --json, reduced by a
# small Python query:
#   session NAME FIELD   a field of session NAME in `show bgp --json`
#   route PREFIX         "source peer as_path interface" of the best route for PREFIX
#   filtered PREFIX PATH "yes" when `show routes all` lists PREFIX with AS path PATH as
#                        filtered
rr_json() {
    local q=$1
    shift
    local args
    case $q in
    session) args=(show bgp --json) ;;
    route) args=(show routes --json) ;;
    filtered) args=(show routes all --json) ;;
    esac
    ctl "${args[@]}" 2>/dev/null | "$PY" -c '
import json, sys
q, rest = sys.argv[1], sys.argv[2:]
d = json.load(sys.stdin)
if q == "session":
    for s in d.get("sessions", []):
        if s.get("name") == rest[0]:
            v = s.get(rest[1])
            print("" if v is None else v)
elif q == "route":
    for r in d.get("routes", []):
        if r.get("prefix") == rest[0] and not r.get("filtered") and r.get("best", True):
            print(r.get("source", ""), r.get("peer") or "-", (r.get("as_path") or "-").replace(" ", ","),
                  r.get("interface") or "-")
            break
elif q == "filtered":
    if any(r.get("prefix") == rest[0] and r.get("filtered") and (r.get("as_path") or "") == rest[1]
           for r in d.get("routes", [])):
        print("yes")
' "$q" "$@"
}

# rtr_state NAME: the BGP state of the router's session NAME (Established, ...).
rtr_state() {
    if [ "$BGP_RTR" = ref ]; then bird_state r "$1"; else rr_json session "$1" state; fi
}
rtr_established() { [ "$(rtr_state "$1")" = Established ]; }
rtr_down() {
    local st
    st=$(rtr_state "$1")
    [ -n "$st" ] && [ "$st" != Established ]
}

# rtr_route PREFIX: "SOURCE PEER AS,PATH" of the router's best route for PREFIX ("" = none).
# SOURCE is bgp or announce/static (own); PEER the session it came from ("-" when own).
rtr_route() {
    if [ "$BGP_RTR" = ref ]; then
        local out path proto
        out=$(birdc r show route "$1" primary all 2>/dev/null)
        grep -q "^$1 " <<<"$out" || return 0
        proto=$(awk -v p="$1" '$1 == p { sub(/^\[/, "", $3); print $3; exit }' <<<"$out")
        path=$(awk '/BGP.as_path:/ { sub(/^.*BGP.as_path: */, ""); gsub(/ /, ","); print; exit }' <<<"$out")
        case $proto in
        own*) echo "announce - -" ;;
        *) echo "bgp $proto ${path:--}" ;;
        esac
    else
        rr_json route "$1" | awk '{ print $1, $2, $3 }'
    fi
}
rtr_lacks_route() {
    # Only a working query that finds nothing counts as "lacks".
    if [ "$BGP_RTR" = ref ]; then
        birdc r show status >/dev/null 2>&1 || return 1
    else
        ctl show routes --json >/dev/null 2>&1 || return 1
    fi
    [ -z "$(rtr_route "$1")" ]
}

# rtr_filtered PREFIX PATH: the router received PREFIX with AS path PATH and refused it.
rtr_filtered() {
    if [ "$BGP_RTR" = ref ]; then
        birdc r show route "$1" filtered all 2>/dev/null | grep -q "BGP.as_path: $2\$"
    else
        [ "$(rr_json filtered "$1" "$2")" = yes ]
    fi
}

# rtr_filtered_any PREFIX: the router lists PREFIX as filtered, whatever its path.
rtr_filtered_any() {
    if [ "$BGP_RTR" = ref ]; then
        birdc r show route "$1" filtered 2>/dev/null | grep -q "^$1 "
    else
        ctl show routes all --json 2>/dev/null | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(r.get("prefix") == sys.argv[1] and r.get("filtered") for r in d.get("routes", [])) else 1)' "$1"
    fi
}

# rtr_filtered_count NAME: routes of session NAME refused by the import policy.
rtr_filtered_count() {
    if [ "$BGP_RTR" = ref ]; then
        birdc r show protocols all "$1" 2>/dev/null |
            awk '/Routes:/ { for (i = 2; i <= NF; i++) if ($i ~ /^filtered/) n += $(i - 1) } END { print n + 0 }'
    else
        rr_json session "$1" filtered
    fi
}

# rtr_show: the router's sessions and routes, for the output of a failing check.
rtr_show() {
    if [ "$BGP_RTR" = ref ]; then
        echo "+ birdc show protocols (router r)"
        birdc r show protocols 2>&1
        echo "+ birdc show route (router r)"
        birdc r show route 2>&1 | head -40
    else
        echo "+ rootless-router ctl show bgp"
        ctl show bgp 2>&1
        echo "+ rootless-router ctl show routes all"
        ctl show routes all 2>&1 | head -40
    fi
}

# ---------------------------------------------------------------- checks

# c_sessions_up TIMEOUT: both router sessions and both peers' sessions Established.
c_sessions_up() {
    local ok=0
    if ! wait_until "$1" eval 'rtr_established peer_a && rtr_established peer_b &&
        peer_established a && peer_established b'; then
        ok=1
    fi
    echo "router: peer_a $(rtr_state peer_a), peer_b $(rtr_state peer_b)"
    echo "a (${PEER_KIND[a]}): $(peer_state a); b (${PEER_KIND[b]}): $(peer_state b)"
    if [ "$ok" != 0 ]; then
        rtr_show
        peer_show a
        peer_show b
    fi
    return "$ok"
}

# c_peer_path WHO PREFIX PATH [TIMEOUT]: WHO's best route for PREFIX has AS path PATH
# (space separated), within TIMEOUT seconds (default 15).
c_peer_path() {
    local who=$1 pfx=$2 want=$3 got
    wait_until "${4:-15}" eval '[ "$(peer_as_path "$who" "$pfx")" = "$want" ]'
    got=$(peer_as_path "$who" "$pfx")
    echo "$who (${PEER_KIND[$who]}): $pfx as path '$got', expected '$want'"
    [ "$got" = "$want" ] && return 0
    peer_show "$who" "$pfx"
    return 1
}

# c_peer_paths: each peer has the other's prefixes via <router> <other>.
c_peer_paths() {
    local ok=0
    c_peer_path a "$B_NET4" "$R_ASN $B_ASN" || ok=1
    c_peer_path a "$B_NET6" "$R_ASN $B_ASN" || ok=1
    c_peer_path b "$A_NET4" "$R_ASN $A_ASN" || ok=1
    c_peer_path b "$A_NET6" "$R_ASN $A_ASN" || ok=1
    return "$ok"
}
# c_peer_router_paths: both peers have the router's own prefixes via <router>.
c_peer_router_paths() {
    local ok=0 who
    for who in a b; do
        c_peer_path "$who" "$R_NET4" "$R_ASN" || ok=1
        c_peer_path "$who" "$R_NET6" "$R_ASN" || ok=1
    done
    return "$ok"
}

# c_communities: a's DN42 communities and large community reach b unchanged (optional
# transitive attributes pass through the router).
c_communities() {
    local ok=0 pfx c l
    for pfx in "$A_NET4" "$A_NET6"; do
        c=$(peer_route b "$pfx" communities)
        l=$(peer_route b "$pfx" large)
        echo "b: $pfx communities '$c', large communities '$l'"
        [ "$c" = "64511:3 64511:24 64511:34" ] || { echo "(expected 64511:3 64511:24 64511:34)"; ok=1; }
        [ "$l" = "$A_ASN:1:2" ] || { echo "(expected $A_ASN:1:2)"; ok=1; }
    done
    [ "$ok" = 0 ] || peer_show b "$A_NET4"
    return "$ok"
}

# c_next_hop WHO PREFIX: the route's next hop is the router's link-local on the tunnel
# (an IPv6 next hop may also carry :: or the router's global address before it).
c_next_hop() {
    local nh h ok=0 ll=0
    nh=$(peer_route "$1" "$2" nexthops)
    echo "$1 (${PEER_KIND[$1]}): $2 next hop(s) '$nh', expected fe80::1 (with :: or $BR_V6)"
    for h in $nh; do
        case $h in
        fe80::1) ll=1 ;;
        :: | "$BR_V6") ;;
        *) ok=1 ;;
        esac
    done
    [ "$ok" = 0 ] && [ "$ll" = 1 ] && return 0
    peer_show "$1" "$2"
    return 1
}

# c_kernel_route NS PROTO PREFIX: the daemon installed PREFIX into NS's kernel via wg0.
c_kernel_route() {
    local ns=$1 proto=$2 pfx=$3 out fam=-4
    case $pfx in *:*) fam=-6 ;; esac
    wait_until 10 eval '[ -n "$(ip -n "$ns" "$fam" route show "$pfx" proto "$proto")" ]'
    echo "+ ip $fam route show $pfx (in ${ns##*-})"
    out=$(ip -n "$ns" "$fam" route show "$pfx")
    echo "$out"
    grep -q 'dev wg0' <<<"$out" && grep -q "proto $proto" <<<"$out"
}

# c_rtr_routes: the router's table has each peer's prefixes from the right session with
# the right path, and its own as its own.
c_rtr_routes() {
    local ok=0 pfx want got
    for pfx in "$A_NET4" "$A_NET6" "$B_NET4" "$B_NET6" "$R_NET4" "$R_NET6"; do
        case $pfx in
        "$A_NET4" | "$A_NET6") want="bgp peer_a $A_ASN" ;;
        "$B_NET4" | "$B_NET6") want="bgp peer_b $B_ASN" ;;
        *) want="announce - -" ;;
        esac
        got=$(rtr_route "$pfx")
        echo "router route $pfx: '$got' (expected '$want')"
        [ "$got" = "$want" ] || ok=1
    done
    [ "$ok" = 0 ] || rtr_show
    return "$ok"
}

# c_withdraw_propagates: a announces extra prefixes, b gets them; a withdraws them: b and
# the router lose them within 5 s.
c_withdraw_propagates() {
    local t0 ok=0
    echo "+ a originates $A_EXTRA4 $A_EXTRA6"
    peer_originate a add "$A_EXTRA4" "$A_EXTRA6" || return 1
    t0=$SECONDS
    if wait_until 10 eval '[ "$(peer_as_path b "$A_EXTRA4")" = "$R_ASN $A_ASN" ] &&
        [ "$(peer_as_path b "$A_EXTRA6")" = "$R_ASN $A_ASN" ]'; then
        echo "b has them via $R_ASN $A_ASN after $((SECONDS - t0)) s"
    else
        echo "b did not get them within 10 s"
        peer_show b "$A_EXTRA4"
        return 1
    fi
    echo "+ a withdraws $A_EXTRA4 $A_EXTRA6"
    peer_originate a del "$A_EXTRA4" "$A_EXTRA6" || return 1
    t0=$SECONDS
    if wait_until 5 eval 'peer_lacks_route b "$A_EXTRA4" && peer_lacks_route b "$A_EXTRA6"'; then
        echo "b lost them after $((SECONDS - t0)) s"
    else
        echo "b still has them 5 s after the withdrawal"
        peer_show b "$A_EXTRA4"
        peer_show b "$A_EXTRA6"
        ok=1
    fi
    rtr_lacks_route "$A_EXTRA4" && rtr_lacks_route "$A_EXTRA6" ||
        { echo "the router still has them"; rtr_show; ok=1; }
    return "$ok"
}

# c_filters: a announces non-DN42 networks and the router's own prefixes. The router
# refuses them (listed as filtered with a's path, counted as filtered), b never sees them,
# and the router's own prefixes stay its own at the router and at b. (FRR sends routes
# back to the AS they came from; the router refuses those too, by AS path loop, so the
# router's own prefixes may already count as filtered before a originates them.)
c_filters() {
    local ok=0 before after pfx new=0
    before=$(rtr_filtered_count peer_a)
    for pfx in "$BOGUS4" "$BOGUS6" "$R_NET4" "$R_NET6"; do
        rtr_filtered_any "$pfx" || new=$((new + 1))
    done
    echo "router: peer_a filtered before: ${before:-?}"
    echo "+ a originates $BOGUS4 $R_NET4 $BOGUS6 $R_NET6"
    peer_originate a add "$BOGUS4" "$R_NET4" "$BOGUS6" "$R_NET6" || return 1
    for pfx in "$BOGUS4" "$BOGUS6" "$R_NET4" "$R_NET6"; do
        if wait_until 10 rtr_filtered "$pfx" "$A_ASN"; then
            echo "router: $pfx received from a (path $A_ASN) and filtered"
        else
            echo "router: $pfx with path $A_ASN not listed as filtered within 10 s"
            ok=1
        fi
    done
    after=$(rtr_filtered_count peer_a)
    echo "router: peer_a filtered after: ${after:-?} (expected at least ${before:-?} + $new)"
    if [ -z "$before" ] || [ -z "$after" ] || [ "$after" -lt $((before + new)) ]; then
        ok=1
    fi
    # a's UPDATEs have all reached the router; give b's session a moment to carry anything.
    sleep 1
    for pfx in "$BOGUS4" "$BOGUS6"; do
        if ! peer_lacks_route b "$pfx"; then
            echo "b learned $pfx:"
            peer_show b "$pfx"
            ok=1
        fi
        rtr_lacks_route "$pfx" || { echo "the router has $pfx in its table"; ok=1; }
    done
    c_peer_path b "$R_NET4" "$R_ASN" 1 || ok=1
    c_peer_path b "$R_NET6" "$R_ASN" 1 || ok=1
    echo "router's own: $R_NET4 '$(rtr_route "$R_NET4")', $R_NET6 '$(rtr_route "$R_NET6")'"
    [ "$(rtr_route "$R_NET4")" = "announce - -" ] || ok=1
    [ "$(rtr_route "$R_NET6")" = "announce - -" ] || ok=1
    echo "+ a withdraws them"
    peer_originate a del "$BOGUS4" "$R_NET4" "$BOGUS6" "$R_NET6" || ok=1
    [ "$ok" = 0 ] || rtr_show
    return "$ok"
}

# a_gone_everywhere: the router's session with a is down, and neither the router nor b
# has a's prefixes.
a_gone_everywhere() {
    rtr_down peer_a && rtr_lacks_route "$A_NET4" && rtr_lacks_route "$A_NET6" &&
        peer_lacks_route b "$A_NET4" && peer_lacks_route b "$A_NET6"
}
a_gone_report() {
    echo "router session peer_a '$(rtr_state peer_a)'"
    echo "router route $A_NET4: '$(rtr_route "$A_NET4")', $A_NET6: '$(rtr_route "$A_NET6")'"
    echo "b: $A_NET4 via '$(peer_as_path b "$A_NET4")', $A_NET6 via '$(peer_as_path b "$A_NET6")'"
}

# c_peer_frozen: a's daemon stopped (SIGSTOP): its TCP connection stays open but it sends
# nothing, so only the router's hold timer can notice. Within the hold time (plus 4 s) the
# session is down and a's routes are gone at the router and at b; not before the hold time
# minus a keepalive interval (so it was the hold timer, not something else).
c_peer_frozen() {
    local t0 ok=0 limit=$((BGP_HOLD + 4)) took pid
    pid=$(peer_pid a)
    echo "+ kill -STOP $pid (${PEER_KIND[a]} in a)"
    kill -STOP "$pid" || return 1
    t0=$SECONDS
    if wait_until "$limit" a_gone_everywhere; then
        took=$((SECONDS - t0))
        echo "after $took s:"
        a_gone_report
        if [ "$took" -lt $((BGP_HOLD - BGP_KEEPALIVE - 1)) ]; then
            echo "(too early for a $BGP_HOLD s hold timer)"
            ok=1
        fi
    else
        echo "after $limit s:"
        a_gone_report
        rtr_show
        ok=1
    fi
    echo "+ kill -CONT $pid"
    kill -CONT "$pid"
    return "$ok"
}

# c_peer_back: a's session is Established again and b has a's routes via the router.
c_peer_back() {
    local t0=$SECONDS
    if wait_until 40 eval 'rtr_established peer_a && peer_established a &&
        [ "$(peer_as_path b "$A_NET4")" = "$R_ASN $A_ASN" ] && [ "$(peer_as_path b "$A_NET6")" = "$R_ASN $A_ASN" ]'; then
        echo "after $((SECONDS - t0)) s: Established, b has a's routes again"
        return 0
    fi
    echo "after 40 s: router peer_a '$(rtr_state peer_a)', a: '$(peer_state a)'"
    peer_show a
    peer_show b "$A_NET4"
    rtr_show
    return 1
}

# c_peer_dies: SIGKILL of a's daemon: within the hold time (plus 3 s) the router's session
# is down, the router has none of a's prefixes and b has lost them; b's session stays up.
c_peer_dies() {
    local t0 ok=0 limit=$((BGP_HOLD + 3))
    echo "+ kill -KILL $(peer_pid a) (${PEER_KIND[a]} in a)"
    peer_kill a || return 1
    t0=$SECONDS
    if wait_until "$limit" a_gone_everywhere; then
        echo "after $((SECONDS - t0)) s:"
        a_gone_report
    else
        echo "after $limit s:"
        a_gone_report
        rtr_show
        ok=1
    fi
    peer_established b || { echo "b's session went down too"; ok=1; }
    return "$ok"
}

# c_peer_returns: a's daemon starts again: the session comes back and b gets a's routes.
c_peer_returns() {
    echo "+ start ${PEER_KIND[a]} in a again"
    peer_start a
    c_peer_back
}

# bgp_dataplane_checks: pings between the peers' own prefixes across the router, on routes
# that only BGP put into their kernels, both families, and to the router's own addresses.
bgp_dataplane_checks() {
    local pa pb
    pa=$(peer_kernel_proto a)
    pb=$(peer_kernel_proto b)
    run_check kernel_route_a_to_b_v4 c_kernel_route "$NS_A" "$pa" "$B_NET4"
    run_check kernel_route_a_to_b_v6 c_kernel_route "$NS_A" "$pa" "$B_NET6"
    run_check kernel_route_b_to_a_v4 c_kernel_route "$NS_B" "$pb" "$A_NET4"
    run_check kernel_route_b_to_a_v6 c_kernel_route "$NS_B" "$pb" "$A_NET6"
    run_check ping_a_to_b_v4 c_ping_within 15 "$NS_A" -c 1 -W 2 -I "$A_V4" "$B_V4"
    run_check ping_a_to_b_v6 c_ping_within 15 "$NS_A" -6 -c 1 -W 2 -I "$A_V6" "$B_V6"
    run_check ping_b_to_a_v4 c_ping "$NS_B" -c 2 -W 2 -I "$B_V4" "$A_V4"
    run_check ping_b_to_a_v6 c_ping "$NS_B" -6 -c 2 -W 2 -I "$B_V6" "$A_V6"
    run_check ping_a_to_router_v4 c_ping "$NS_A" -c 2 -W 2 -I "$A_V4" "$BR_V4"
    run_check ping_b_to_router_v6 c_ping "$NS_B" -6 -c 2 -W 2 -I "$B_V6" "$BR_V6"
}

# bgp_checks [nodata]: everything t_50/t_60 (and the reference run t_05) check, in order;
# "nodata" leaves out what needs the peers' kernels to carry BGP routes (GoBGP, t_70).
bgp_checks() {
    run_check sessions_established c_sessions_up 40 || return 1
    run_check peers_learn_each_other c_peer_paths
    run_check peers_learn_router_prefixes c_peer_router_paths
    run_check communities_pass_through c_communities
    # GoBGP shows only "::" of a link-local session's next hop: nothing to check there.
    if [ "${PEER_KIND[b]}" != gobgp ]; then
        run_check next_hop_router_link_local_v4 c_next_hop b "$A_NET4"
        run_check next_hop_router_link_local_v6 c_next_hop b "$A_NET6"
    fi
    run_check router_table c_rtr_routes
    [ "${1:-}" = nodata ] || bgp_dataplane_checks
    run_check withdrawal_propagates c_withdraw_propagates
    run_check filters_refuse_bogus_and_own c_filters
    run_check peer_frozen_hold_timer_expires c_peer_frozen
    run_check peer_thawed_routes_back c_peer_back
    run_check peer_killed_routes_gone c_peer_dies
    run_check peer_restarted_routes_back c_peer_returns
    [ "${1:-}" = nodata ] ||
        run_check ping_a_to_b_after_restart c_ping_within 15 "$NS_A" -c 1 -W 2 -I "$A_V4" "$B_V4"
}

# ---------------------------------------------------------------- rootless-router's CLI

# c_ctl_show_bgp: the birdc-like table names both sessions, Established, and the neighbors.
c_ctl_show_bgp() {
    local out rc
    echo "+ rootless-router ctl show bgp"
    out=$(ctl show bgp 2>&1)
    rc=$?
    echo "$out"
    [ "$rc" = 0 ] || { echo "(exit status $rc)"; return 1; }
    c_out_has "$out" peer_a peer_b Established fe80::a fe80::b || return 1
    [ "$(grep -c Established <<<"$out")" -ge 2 ] || { echo "(fewer than 2 Established)"; return 1; }
}

# c_ctl_show_bgp_json: the JSON has both sessions with the contract's fields and sane
# values, and the forwarding-table sizes.
c_ctl_show_bgp_json() {
    local f=$W/bgp.json
    echo "+ rootless-router ctl show bgp --json"
    ctl show bgp --json >"$f" 2>&1 || { cat "$f"; return 1; }
    head -c 3000 "$f"
    echo
    "$PY" - "$f" "$A_ASN" "$B_ASN" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
asn = {"peer_a": int(sys.argv[2]), "peer_b": int(sys.argv[3])}
bad = []
sessions = {s.get("name"): s for s in d.get("sessions", [])}
for name, want_asn in asn.items():
    s = sessions.get(name)
    if s is None:
        bad.append("no session %s" % name)
        continue
    for k in ("name", "state", "since_secs", "last_error", "neighbor", "remote_asn", "imported", "filtered", "exported"):
        if k not in s:
            bad.append("%s: no field %s" % (name, k))
    if s.get("state") != "Established":
        bad.append("%s: state %r" % (name, s.get("state")))
    if s.get("remote_asn") != want_asn:
        bad.append("%s: remote_asn %r" % (name, s.get("remote_asn")))
    if not isinstance(s.get("imported"), int) or s["imported"] < 2:
        bad.append("%s: imported %r (a peer sends at least 2 prefixes)" % (name, s.get("imported")))
    if not isinstance(s.get("exported"), int) or s["exported"] < 4:
        bad.append("%s: exported %r (own 2 + the other peer's 2 at least)" % (name, s.get("exported")))
for k in ("fib_v4", "fib_v6"):
    if not isinstance(d.get(k), int) or d[k] < 2:
        bad.append("%s = %r (at least one prefix of each peer)" % (k, d.get(k)))
for b in bad:
    print("(%s)" % b)
sys.exit(1 if bad else 0)
PYEOF
}

# c_ctl_routes_for: `show routes for ADDR` names the covering BGP prefix, its session
# and tunnel, and the AS path.
c_ctl_routes_for() {
    local out ok=0
    echo "+ rootless-router ctl show routes for $B_V4"
    out=$(ctl show routes for "$B_V4" 2>&1)
    echo "$out"
    c_out_has "$out" "$B_NET4" peer_b peer-b "$B_ASN" || ok=1
    grep -qF "$A_NET4" <<<"$out" && { echo "(lists an unrelated prefix)"; ok=1; }
    echo "+ rootless-router ctl show routes for $A_V6"
    out=$(ctl show routes for "$A_V6" 2>&1)
    echo "$out"
    c_out_has "$out" "$A_NET6" peer_a peer-a "$A_ASN" || ok=1
    return "$ok"
}

# c_ctl_routes_json: `show routes --json` describes a's IPv4 prefix as a BGP route from
# peer_a through peer-a with a's path, origin and DN42 communities, and the router's own
# prefixes as its own.
c_ctl_routes_json() {
    local f=$W/routes-bgp.json
    echo "+ rootless-router ctl show routes --json"
    ctl show routes --json >"$f" 2>&1 || { cat "$f"; return 1; }
    head -c 3000 "$f"
    echo
    "$PY" - "$f" "$A_NET4" "$A_ASN" "$R_NET4" "$R_NET6" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
pfx, asn, own4, own6 = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
routes = d.get("routes", [])
bad = []
r = next((r for r in routes if r.get("prefix") == pfx), None)
if r is None:
    bad.append("no route for %s" % pfx)
else:
    want = {"source": "bgp", "peer": "peer_a", "interface": "peer-a", "as_path": asn, "origin": "IGP"}
    for k, v in want.items():
        if str(r.get(k, "")).upper() != v.upper():
            bad.append("%s: %s = %r, expected %r" % (pfx, k, r.get(k), v))
    for c in ("(64511,3)", "(64511,24)", "(64511,34)"):
        if c not in [x.replace(" ", "") for x in r.get("communities", [])]:
            bad.append("%s: community %s missing: %r" % (pfx, c, r.get("communities")))
    if "(%s,1,2)" % asn not in [x.replace(" ", "") for x in r.get("large_communities", [])]:
        bad.append("%s: large community missing: %r" % (pfx, r.get("large_communities")))
for own in (own4, own6):
    o = next((r for r in routes if r.get("prefix") == own), None)
    if o is None or o.get("source") == "bgp":
        bad.append("own prefix %s: %r" % (own, o))
for b in bad:
    print("(%s)" % b)
sys.exit(1 if bad else 0)
PYEOF
}

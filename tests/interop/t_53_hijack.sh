#!/usr/bin/env bash
# A hijack suite from a BIRD peer: t_50's topology, the router with `[roa] files` (the
# DN42 JSON export, covering every legitimate prefix here) and `import_limit = 50` on
# peer_a. BIRD in a announces, one kind at a time (each a static protocol enabled, then
# disabled again):
#   outside DN42      8.8.8.0/24, 2001:db8::/48                  not-dn42
#   too specific      172.20.20.0/30 (beyond /29), fd00:20::/65  not-dn42
#   the router's own  172.20.3.0/24, 172.20.3.128/25,
#                     fd00:1::/48, fd00:1:0:8000::/49            own-prefix
#   wrong origin      172.20.2.128/25, fd00:b:0:8000::/49 (b's ROA space, origin a)
#                                                                roa-invalid
#   AS path loop      172.20.21.0/24, fd00:21::/48 with the router's ASN in the path
#                                                                as-loop
#   a flood           200 + 200 valid /26 and /48 (ROA-covered) past the limit of 50 per
#                     family                                     import-limit
# Each: listed as filtered with its reason, counted per reason in `show bgp`, not in the
# forwarding table, never exported to b; and the session's legitimate routes untouched:
# still best at the router, pings across, both sessions Established and never reset.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"
. "$(dirname "$0")/ctl_checks.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"
. "$(dirname "$0")/roa_lib.sh"

require_netns sessions_established
require_tools ip wg wireguard-go ping bird birdc setpriv nsenter unshare sysctl ss timeout "$PY"
require_router_bin

LIMIT=50
FLOOD=200
OUT4=8.8.8.0/24 OUT6=2001:db8::/48
SPEC4=172.20.20.0/30 SPEC6=fd00:20::/65
OWN4=$R_NET4 OWNMORE4=172.20.3.128/25 OWN6=$R_NET6 OWNMORE6=fd00:1:0:8000::/49
HIJ4=172.20.2.128/25 HIJ6=fd00:b:0:8000::/49
LOOP4=172.20.21.0/24 LOOP6=fd00:21::/48
# The flood: 172.20.128.0/26 ... (200 of them), fd00:aa00:0::/48 ... fd00:aa00:c7::/48.
FLOOD4=$("$PY" -c "
import ipaddress
n = ipaddress.ip_network('172.20.128.0/17')
print(' '.join(str(s) for s in list(n.subnets(new_prefix=26))[:$FLOOD]))")
FLOOD6=$("$PY" -c "
print(' '.join('fd00:aa00:%x::/48' % i for i in range($FLOOD)))")

rrt_init
topo_up
bgp_peers_up
# BIRD exports static protocols named bogus* whatever the DN42 filter says (bgp_lib.sh).
peer_bird_conf_with a \
    "bogus_out4 ipv4 '$OUT4' '' disabled" "bogus_out6 ipv6 '$OUT6' '' disabled" \
    "bogus_spec4 ipv4 '$SPEC4' '' disabled" "bogus_spec6 ipv6 '$SPEC6' '' disabled" \
    "bogus_own4 ipv4 '$OWN4 $OWNMORE4' '' disabled" "bogus_own6 ipv6 '$OWN6 $OWNMORE6' '' disabled" \
    "hijack4 ipv4 '$HIJ4' '' disabled" "hijack6 ipv6 '$HIJ6' '' disabled" \
    "loop4 ipv4 '$LOOP4' 'bgp_path.prepend($R_ASN);' disabled" \
    "loop6 ipv6 '$LOOP6' 'bgp_path.prepend($R_ASN);' disabled" \
    "flood4 ipv4 '$FLOOD4' '' disabled" "flood6 ipv6 '$FLOOD6' '' disabled"
peer_bird_conf_with b

roa_write_json "$W/roa.json" \
    "$A_NET4 29 $A_ASN" "$A_NET6 64 $A_ASN" "$B_NET4 24 $B_ASN" "$B_NET6 48 $B_ASN" \
    "$R_NET4 29 $R_ASN" "$R_NET6 64 $R_ASN" "$LOOP4 24 $A_ASN" "$LOOP6 48 $A_ASN" \
    "172.20.128.0/17 29 $A_ASN" "fd00:aa00::/40 64 $A_ASN"
RRC_BGP_A="import_limit = $LIMIT
import_limit_action = \"block\""
RRC_TAIL="[roa]
files = [\"$W/roa.json\"]
check_interval = 1"
write_policy_router_config "$W/router.toml"
policy_router_up "$W/router.toml"
peer_start a
peer_start b

run_check sessions_established c_sessions_up 40 || exit 1
LEGIT=("$A_NET4 peer_a best valid" "$A_NET6 peer_a best valid"
    "$B_NET4 peer_b best valid" "$B_NET6 peer_b best valid")
run_check legitimate_routes_valid c_rr_decisions 15 "${LEGIT[@]}"
run_check ping_a_to_b_before c_ping_within 15 "$NS_A" -c 1 -W 2 -I "$A_V4" "$B_V4"
since_marks

# c_untouched: a's and b's legitimate routes are still best at the router and at the other
# peer, traffic crosses both ways, and no session was reset since since_marks.
c_untouched() {
    local ok=0
    c_rr_decisions 5 "${LEGIT[@]}" || ok=1
    c_peer_paths_within 5 "b $A_NET4 $R_ASN $A_ASN" "b $A_NET6 $R_ASN $A_ASN" \
        "a $B_NET4 $R_ASN $B_ASN" "a $B_NET6 $R_ASN $B_ASN" || ok=1
    c_ping "$NS_A" -c 1 -W 2 -I "$A_V4" "$B_V4" || ok=1
    c_ping "$NS_B" -6 -c 1 -W 2 -I "$B_V6" "$A_V6" || ok=1
    c_no_reset || ok=1
    return "$ok"
}

# c_hijack REASON "STATICS" PREFIX...: a enables STATICS (static protocols announcing PREFIXes);
# the router lists each PREFIX from peer_a as filtered with REASON, its filtered_by[REASON]
# grows by at least their number, none of them is a best route from peer_a, b never
# learns them from the router; then a disables STATICS again.
c_hijack() {
    local reason=$1 statics=$2 p ok=0 before after n=0 e=()
    shift 2
    before=$(rr_filtered_by peer_a "$reason")
    for p in $statics; do birdc a enable "$p" || ok=1; done
    for p in "$@"; do
        e+=("$p peer_a filtered $reason")
        n=$((n + 1))
    done
    c_rr_decisions 10 "${e[@]}" || ok=1
    after=$(rr_filtered_by peer_a "$reason")
    echo "peer_a filtered_by[$reason]: before '$before', after '$after' (want +$n at least)"
    [ -n "$before" ] && [ -n "$after" ] && [ "$after" -ge $((before + n)) ] || ok=1
    sleep 1
    for p in "$@"; do
        if [ "$(peer_as_path b "$p")" = "$R_ASN $A_ASN" ]; then
            echo "b learned $p from the router"
            ok=1
        fi
    done
    for p in $statics; do birdc a disable "$p" >/dev/null || ok=1; done
    return "$ok"
}

run_check hijack_outside_dn42 c_hijack not-dn42 "bogus_out4 bogus_out6" "$OUT4" "$OUT6"
run_check fib_lacks_outside_dn42 c_route_lookup_not 8.8.8.8 peer-a
run_check hijack_too_specific c_hijack not-dn42 "bogus_spec4 bogus_spec6" "$SPEC4" "$SPEC6"
run_check hijack_own_prefix c_hijack own-prefix "bogus_own4 bogus_own6" \
    "$OWN4" "$OWNMORE4" "$OWN6" "$OWNMORE6"
run_check own_prefixes_stay_own c_peer_paths_within 5 \
    "b $OWN4 $R_ASN" "b $OWN6 $R_ASN" "b $OWNMORE4" "b $OWNMORE6"
run_check hijack_wrong_origin c_hijack roa-invalid "hijack4 hijack6" "$HIJ4" "$HIJ6"
run_check fib_keeps_b_for_hijacked c_route_lookup_via 172.20.2.129 peer-b
run_check hijack_as_loop c_hijack as-loop "loop4 loop6" "$LOOP4" "$LOOP6"
run_check untouched_after_hijacks c_untouched

# c_flood: a announces FLOOD /26s and FLOOD /48s at once (all ROA-valid, DN42-valid): the
# router keeps LIMIT per family (a's own prefix among them, announced first), blocks the
# rest (import-limit, counted), exports at most LIMIT per family of a's routes to b.
c_flood() {
    local ok=0 before want v4 v6 n got
    before=$(rr_filtered_by peer_a import-limit)
    want=$((2 * (FLOOD + 1 - LIMIT)))
    echo "+ a enables flood4 flood6 ($FLOOD + $FLOOD prefixes); peer_a import-limit before: '$before'"
    birdc a enable flood4 && birdc a enable flood6 || return 1
    wait_until 30 eval '[ "$(rr_filtered_by peer_a import-limit)" -ge $((${before:-0} + want)) ]'
    n=$(rr_filtered_by peer_a import-limit)
    v4=$(rr_session_field peer_a imported_v4)
    v6=$(rr_session_field peer_a imported_v6)
    echo "peer_a: filtered_by[import-limit] '$n' (want >= ${before:-?} + $want), imported_v4 '$v4', imported_v6 '$v6' (want $LIMIT each)"
    [ -n "$before" ] && [ -n "$n" ] && [ "$n" -ge $((before + want)) ] || ok=1
    [ "$v4" = "$LIMIT" ] && [ "$v6" = "$LIMIT" ] || ok=1
    got=$(birdc b show route protocol peer_r count 2>/dev/null | tail -1)
    echo "b: $got"
    c_out_has "$(ctl show bgp peer_a 2>&1)" import-limit || ok=1
    return "$ok"
}
run_check flood_past_import_limit c_flood
run_check untouched_after_flood c_untouched
run_check session_established_after_flood eval 'rtr_established peer_a && peer_established a'
run_check kernel_forwarding_off c_forwarding_off
run_check router_alive_at_end router_alive

#!/usr/bin/env bash
# ROA origin validation (RFC 6811) as DN42 does it, against a real StayRTR and real BIRD
# peers. t_50's topology (rootless-router between BIRD 2 in a and b over wireguard-go);
# StayRTR (Debian `stayrtr`, uid 65533) on 127.0.0.1:8282 of the router's namespace serves
# a ROA JSON in the DN42 export format to the router's `[roa] rtr` (RFC 8210 / 6810).
#
#   prefix                         from   ROA (phase 1)                   expected
#   172.20.16.0/24, fd00:16::/48   a      a, max 24 / 48                  valid: accepted
#   172.20.17.0/24, fd00:17::/48   a      AS4242420099                    roa-invalid (origin)
#   172.20.18.0/25, fd00:18::/56   a      /24 max 24, /48 max 48, AS a    roa-invalid (too long)
#   172.20.19.0/24, fd00:19::/48   a      none                            roa-unknown
#   172.20.24.0/24, fd00:24::/48   b      b                               valid: accepted
#   172.20.25.0/24, fd00:25::/48   b      a                               roa-invalid (origin)
#
# Checks: the router accepts exactly the valid ones (table, ROA state, `show routes
# filtered` reasons, `show bgp` counts per reason, the forwarding table, pings across, what
# the other peer learns). Then the JSON changes (16 -> AS4242420099, 17 -> a): StayRTR
# notifies, and within seconds the router's decisions, its FIB and b's routes follow, with
# no session reset (BIRD's `show protocols` since, the router's since_secs). Then the router
# restarts with `[roa] files` (BIRD 2 include files, one per family, as DN42 publishes them)
# and `unknown = "accept"`: unknowns are accepted; the files are rewritten atomically (tmp +
# mv) and the decisions follow, again without a reset.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"
. "$(dirname "$0")/ctl_checks.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"
. "$(dirname "$0")/roa_lib.sh"

require_netns sessions_established
require_tools ip wg wireguard-go ping bird birdc stayrtr setpriv nsenter unshare sysctl ss timeout "$PY"
require_router_bin

# Test prefixes (see the table above).
V4_OK=172.20.16.0/24 V6_OK=fd00:16::/48
V4_ORIGIN=172.20.17.0/24 V6_ORIGIN=fd00:17::/48
V4_LONG=172.20.18.0/25 V6_LONG=fd00:18::/56
V4_UNK=172.20.19.0/24 V6_UNK=fd00:19::/48
B4_OK=172.20.24.0/24 B6_OK=fd00:24::/48
B4_BAD=172.20.25.0/24 B6_BAD=fd00:25::/48

# roas PHASE: the ROA set of phase 1 (the table above), 2 (16 and 17 swapped) or 3 (as 2,
# and the unknown prefixes covered by ROAs of another AS).
roas() {
    local ok=$A_ASN bad=$ROA_OTHER_ASN
    [ "$1" != 1 ] && ok=$ROA_OTHER_ASN bad=$A_ASN
    local base=(
        "$A_NET4 29 $A_ASN" "$A_NET6 64 $A_ASN" "$B_NET4 29 $B_ASN" "$B_NET6 64 $B_ASN"
        "$R_NET4 29 $R_ASN" "$R_NET6 64 $R_ASN"
        "$V4_OK 24 $ok" "$V6_OK 48 $ok" "$V4_ORIGIN 24 $bad" "$V6_ORIGIN 48 $bad"
        "172.20.18.0/24 24 $A_ASN" "fd00:18::/48 48 $A_ASN"
        "$B4_OK 24 $B_ASN" "$B6_OK 48 $B_ASN" "$B4_BAD 24 $A_ASN" "$B6_BAD 48 $A_ASN")
    printf '%s\n' "${base[@]}"
    [ "$1" = 3 ] && printf '%s\n' "$V4_UNK 24 $ROA_OTHER_ASN" "$V6_UNK 48 $ROA_OTHER_ASN"
    return 0
}
mapfile -t ROAS1 < <(roas 1)
mapfile -t ROAS2 < <(roas 2)
mapfile -t ROAS3 < <(roas 3)

rrt_init
topo_up
bgp_peers_up
# a's and b's test prefixes, each in a static protocol; a also holds addresses of the
# valid and the invalid-origin prefixes (pinged from b across the router).
peer_bird_conf_with a \
    "test4 ipv4 '$V4_OK $V4_ORIGIN $V4_LONG $V4_UNK' ''" \
    "test6 ipv6 '$V6_OK $V6_ORIGIN $V6_LONG $V6_UNK' ''"
peer_bird_conf_with b \
    "test4 ipv4 '$B4_OK $B4_BAD' ''" \
    "test6 ipv6 '$B6_OK $B6_BAD' ''"
ip -n "$NS_A" addr add 172.20.16.1/32 dev lo && ip -n "$NS_A" addr add 172.20.17.1/32 dev lo &&
    ip -n "$NS_A" addr add fd00:16::1/128 dev lo nodad &&
    ip -n "$NS_A" addr add fd00:17::1/128 dev lo nodad || die "test addresses in a"

roa_write_json "$W/roa.json" "${ROAS1[@]}"
stayrtr_start "$W/roa.json"
pass stayrtr_serving

RRC_TAIL="[roa]
rtr = [\"$STAYRTR_ADDR\"]
invalid = \"reject\"
unknown = \"reject\""
write_policy_router_config "$W/router.toml"
policy_router_up "$W/router.toml"
peer_start a
peer_start b

run_check sessions_established c_sessions_up 40 || exit 1

# roa_status WANT_TOTAL NAME STATE [SERIAL]: `show roa --json` holds WANT_TOTAL ROAs in
# use, and a source whose name ends in NAME is in STATE (with that RTR serial); prints
# what it saw.
roa_status() {
    ctl show roa --json 2>&1 | "$PY" -c '
import json, sys
want, name, state = int(sys.argv[1]), sys.argv[2], sys.argv[3]
serial = int(sys.argv[4]) if len(sys.argv) > 4 else None
raw = sys.stdin.read()
try:
    d = json.loads(raw)
except ValueError:
    sys.exit("not JSON: %s" % raw[:500])
total = d.get("total_v4", 0) + d.get("total_v6", 0)
src = [x for x in d.get("sources", []) if str(x.get("name", "")).endswith(name)]
print("in use: %d ROAs (want %d); sources: %s" % (total, want, json.dumps(d.get("sources"))))
ok = total == want and any(x.get("state") == state and (serial is None or x.get("serial") == serial)
                           for x in src)
sys.exit(0 if ok else 1)' "$@"
}

# c_show_roa WANT_TOTAL NAME STATE [SERIAL]: roa_status within 10 s, and `show roa` (text)
# names the source.
c_show_roa() {
    local ok=0 out
    wait_until 10 roa_status "$@" || ok=1
    roa_status "$@" || ok=1
    echo "+ rootless-router ctl show roa"
    out=$(ctl show roa 2>&1)
    echo "$out"
    c_out_has "$out" "$2" "$3" || ok=1
    return "$ok"
}
run_check show_roa_rtr c_show_roa "${#ROAS1[@]}" "$STAYRTR_ADDR" synced "$(stayrtr_serials | tail -1)"

PHASE1=(
    "$A_NET4 peer_a best valid" "$A_NET6 peer_a best valid"
    "$B_NET4 peer_b best valid" "$B_NET6 peer_b best valid"
    "$V4_OK peer_a best valid" "$V6_OK peer_a best valid"
    "$V4_ORIGIN peer_a filtered roa-invalid" "$V6_ORIGIN peer_a filtered roa-invalid"
    "$V4_LONG peer_a filtered roa-invalid" "$V6_LONG peer_a filtered roa-invalid"
    "$V4_UNK peer_a filtered roa-unknown" "$V6_UNK peer_a filtered roa-unknown"
    "$B4_OK peer_b best valid" "$B6_OK peer_b best valid"
    "$B4_BAD peer_b filtered roa-invalid" "$B6_BAD peer_b filtered roa-invalid")
run_check rtr_accepts_exactly_valid c_rr_decisions 20 "${PHASE1[@]}"
run_check show_routes_filtered_reasons c_show_filtered \
    "$V4_ORIGIN roa-invalid" "$V6_LONG roa-invalid" "$V4_UNK roa-unknown" "$B6_BAD roa-invalid" \
    -- "$V4_OK" "$V6_OK" "$A_NET4" "$B4_OK"
run_check show_bgp_counts_per_reason_a c_filtered_counts peer_a "roa-invalid 4" "roa-unknown 2"
run_check show_bgp_counts_per_reason_b c_filtered_counts peer_b "roa-invalid 2"
run_check peers_get_only_valid c_peer_paths_within 15 \
    "b $V4_OK $R_ASN $A_ASN" "b $V6_OK $R_ASN $A_ASN" "b $V4_ORIGIN" "b $V6_ORIGIN" \
    "b $V4_LONG" "b $V6_LONG" "b $V4_UNK" "b $V6_UNK" \
    "a $B4_OK $R_ASN $B_ASN" "a $B6_OK $R_ASN $B_ASN" "a $B4_BAD" "a $B6_BAD"
run_check ping_b_to_valid_v4 c_ping_within 15 "$NS_B" -c 1 -W 2 -I "$B_V4" 172.20.16.1
run_check ping_b_to_valid_v6 c_ping_within 15 "$NS_B" -6 -c 1 -W 2 -I "$B_V6" fd00:16::1
run_check fib_lacks_invalid_v4 c_route_lookup_not 172.20.17.1 peer-a
run_check fib_lacks_invalid_v6 c_route_lookup_not fd00:17::1 peer-a

# ---- the ROA data changes at StayRTR: 16 turns invalid, 17 valid.
since_marks
serials_before=$(stayrtr_serials | tail -1)
info "rewriting $W/roa.json (16 -> AS$ROA_OTHER_ASN, 17 -> AS$A_ASN); StayRTR serial was $serials_before"
roa_write_json "$W/roa.json" "${ROAS2[@]}"
c_stayrtr_new_serial() {
    wait_until 10 eval '[ "$(stayrtr_serials | tail -1)" != "$serials_before" ]'
    echo "StayRTR serials: $(stayrtr_serials | tr '\n' ' ')"
    grep -E 'notif|Sending' "$W/stayrtr.log" | tail -5
    [ "$(stayrtr_serials | tail -1)" != "$serials_before" ]
}
run_check stayrtr_published_change c_stayrtr_new_serial
PHASE2=(
    "$V4_OK peer_a filtered roa-invalid" "$V6_OK peer_a filtered roa-invalid"
    "$V4_ORIGIN peer_a best valid" "$V6_ORIGIN peer_a best valid"
    "$V4_LONG peer_a filtered roa-invalid" "$V4_UNK peer_a filtered roa-unknown"
    "$A_NET4 peer_a best valid" "$B4_OK peer_b best valid")
run_check rtr_decisions_follow_rtr c_rr_decisions 15 "${PHASE2[@]}"
run_check peers_follow_rtr c_peer_paths_within 10 \
    "b $V4_ORIGIN $R_ASN $A_ASN" "b $V6_ORIGIN $R_ASN $A_ASN" "b $V4_OK" "b $V6_OK" \
    "b $A_NET4 $R_ASN $A_ASN" "a $B4_OK $R_ASN $B_ASN"
run_check ping_b_to_newly_valid_v4 c_ping_within 15 "$NS_B" -c 1 -W 2 -I "$B_V4" 172.20.17.1
run_check ping_b_to_newly_valid_v6 c_ping_within 15 "$NS_B" -6 -c 1 -W 2 -I "$B_V6" fd00:17::1
run_check fib_lacks_newly_invalid c_route_lookup_not 172.20.16.1 peer-a
run_check no_session_reset_rtr c_no_reset
run_check show_roa_after_change c_show_roa "${#ROAS2[@]}" "$STAYRTR_ADDR" synced "$(stayrtr_serials | tail -1)"

# ---- [roa] changed by `ctl reload`: a file added beside the RTR server (a ROA making
# V4_UNK valid) and unknown = "accept". The RTR connection is kept (same TCP connection
# from the same port), its VRPs are not dropped (V4_OK stays invalid), no session resets.
# rtr_conns: the local ports of the router's TCP connections to StayRTR, one per line.
rtr_conns() {
    nsx "$NS_R" ss -Htn state established "dport = :${STAYRTR_ADDR##*:}" |
        awk '{ n = split($3, a, ":"); print a[n] }' | sort
}
since_marks
RTR_CONNS_BEFORE=$(rtr_conns)
info "router's connection to StayRTR before the reload: local port(s) $RTR_CONNS_BEFORE"
roa_write_bird "$W/roa_extra.conf" "$V4_UNK 24 $A_ASN"
RRC_TAIL="[roa]
rtr = [\"$STAYRTR_ADDR\"]
files = [\"$W/roa_extra.conf\"]
invalid = \"reject\"
unknown = \"accept\""
write_policy_router_config "$W/router.toml"
c_roa_reload() {
    local out rc
    out=$(ctl reload 2>&1)
    rc=$?
    echo "ctl reload -> exit $rc:"
    echo "$out"
    [ "$rc" = 0 ] && grep -qxF "  roa:               sources and rules applied" <<<"$out" &&
        grep -qxF "  kept:              peer_a, peer_b" <<<"$out"
}
run_check roa_reload_applied c_roa_reload
run_check roa_reload_decisions c_rr_decisions 15 \
    "$V4_UNK peer_a best valid" "$V6_UNK peer_a best unknown" \
    "$V4_OK peer_a filtered roa-invalid" "$V4_ORIGIN peer_a best valid" \
    "$V4_LONG peer_a filtered roa-invalid" "$A_NET4 peer_a best valid"
run_check roa_reload_b_gets_them c_peer_paths_within 10 \
    "b $V4_UNK $R_ASN $A_ASN" "b $V6_UNK $R_ASN $A_ASN" "b $V4_OK"
c_rtr_conn_kept() {
    local now
    now=$(rtr_conns)
    echo "router's connection(s) to StayRTR: before '$RTR_CONNS_BEFORE', now '$now'"
    [ -n "$now" ] && [ "$now" = "$RTR_CONNS_BEFORE" ]
}
run_check roa_reload_rtr_connection_kept c_rtr_conn_kept
run_check roa_reload_show_roa c_show_roa "$((${#ROAS2[@]} + 1))" roa_extra.conf loaded
run_check roa_reload_no_session_reset c_no_reset

# ---- [roa] files: BIRD 2 include files, unknown accepted.
info "restarting the router with [roa] files (BIRD 2 format, v4 + v6) and unknown = \"accept\""
router_stop
mapfile -t F4 < <(roa_v4 "${ROAS1[@]}")
mapfile -t F6 < <(roa_v6 "${ROAS1[@]}")
roa_write_bird "$W/roa_dn42.conf" "${F4[@]}"
roa_write_bird "$W/roa_dn42_v6.conf" "${F6[@]}"
RRC_TAIL="[roa]
files = [\"$W/roa_dn42.conf\", \"$W/roa_dn42_v6.conf\"]
check_interval = 1
invalid = \"reject\"
unknown = \"accept\""
write_policy_router_config "$W/router-files.toml"
router_start "$W/router-files.toml"
pass router_restarted_with_files
run_check files_sessions_established c_sessions_up 40 || exit 1
run_check files_unknown_accepted c_rr_decisions 20 \
    "$V4_OK peer_a best valid" "$V6_OK peer_a best valid" \
    "$V4_UNK peer_a best unknown" "$V6_UNK peer_a best unknown" \
    "$V4_ORIGIN peer_a filtered roa-invalid" "$V6_ORIGIN peer_a filtered roa-invalid" \
    "$V4_LONG peer_a filtered roa-invalid" "$V6_LONG peer_a filtered roa-invalid" \
    "$B4_BAD peer_b filtered roa-invalid"
run_check files_b_gets_unknown c_peer_paths_within 15 \
    "b $V4_UNK $R_ASN $A_ASN" "b $V6_UNK $R_ASN $A_ASN" "b $V4_OK $R_ASN $A_ASN" "b $V4_ORIGIN"
run_check show_roa_files c_show_roa "${#ROAS1[@]}" roa_dn42_v6.conf loaded

since_marks
info "rewriting both include files atomically (tmp + mv): 16 invalid, 17 valid, 19 invalid"
mapfile -t F4 < <(roa_v4 "${ROAS3[@]}")
mapfile -t F6 < <(roa_v6 "${ROAS3[@]}")
roa_write_bird "$W/roa_dn42.conf" "${F4[@]}"
roa_write_bird "$W/roa_dn42_v6.conf" "${F6[@]}"
run_check files_decisions_follow c_rr_decisions 15 \
    "$V4_OK peer_a filtered roa-invalid" "$V6_OK peer_a filtered roa-invalid" \
    "$V4_ORIGIN peer_a best valid" "$V6_ORIGIN peer_a best valid" \
    "$V4_UNK peer_a filtered roa-invalid" "$V6_UNK peer_a filtered roa-invalid" \
    "$A_NET4 peer_a best valid"
run_check files_peers_follow c_peer_paths_within 10 \
    "b $V4_ORIGIN $R_ASN $A_ASN" "b $V4_OK" "b $V4_UNK" "b $V6_UNK" "b $A_NET6 $R_ASN $A_ASN"
run_check files_no_session_reset c_no_reset
run_check kernel_forwarding_off c_forwarding_off
run_check router_alive_at_end router_alive

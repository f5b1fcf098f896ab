#!/usr/bin/env bash
# `[[policy]]` on import and export, and the DN42 link communities, against BIRD peers in
# t_50's topology (no [roa]: nothing is ROA-filtered here).
#
# Router config:
#   [router] region = 41, country = 1276
#   peer-a: latency 4, bandwidth 24, crypto 34;  peer-b: latency 2, bandwidth 22, crypto 33
#   peer_a import "a-in":  prefix 172.20.41.0/24{24,28} -> reject;
#                          community (65000,100) -> local_pref 200, accept
#   peer_a export "a-out": ipv6 routes originated by b -> reject;
#                          everything else: prepend 2, MED 50, add (64511,100) and
#                          (4242420001,7,7)
#   peer_b export "b-out": delete (65000,*)
# a announces, besides its own prefixes (with (64511,3) (64511,24) (64511,34) and
# (4242420002,1,2)): 172.20.40.0/24 with (65000,100) and (4242420002,5,5), 172.20.41.0/24,
# 172.20.41.16/28, 172.20.42.0/24.
# Checks: local_pref 200 by community (100 without); the prefix list rejects (reason
# policy, counted, not exported); at a (BIRD `show route all`): the prepended path, MED 50,
# the added community and large community, b's IPv6 prefix not exported; at b: a's routes
# with the wiki's link-community combination (latency max, bandwidth and crypto min, over
# both tunnels), the router's own prefix with region and country, (65000,100) deleted on
# export, large communities untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"
. "$(dirname "$0")/ctl_checks.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"
. "$(dirname "$0")/roa_lib.sh"

require_netns sessions_established
require_tools ip wg wireguard-go ping bird birdc setpriv nsenter unshare sysctl timeout "$PY"
require_router_bin

LP4=172.20.40.0/24 REJ4=172.20.41.0/24 REJ28=172.20.41.16/28 PLAIN4=172.20.42.0/24

rrt_init
topo_up
bgp_peers_up
peer_bird_conf_with a \
    "lp4 ipv4 '$LP4' 'bgp_community.add((65000,100)); bgp_large_community.add(($A_ASN,5,5));'" \
    "rej4 ipv4 '$REJ4 $REJ28' ''" \
    "plain4 ipv4 '$PLAIN4' ''"
peer_bird_conf_with b

RRC_ROUTER='region = 41
country = 1276'
RRC_IF_A='latency = 4
bandwidth = 24
crypto = 34'
RRC_IF_B='latency = 2
bandwidth = 22
crypto = 33'
RRC_BGP_A='import_policy = "a-in"
export_policy = "a-out"'
RRC_BGP_B='export_policy = "b-out"'
RRC_TAIL="[[policy]]
name = \"a-in\"
default = \"accept\"
[[policy.rule]]
prefix = [\"172.20.41.0/24{24,28}\"]
action = \"reject\"
[[policy.rule]]
community = [\"(65000,100)\"]
set_local_pref = 200
action = \"accept\"

[[policy]]
name = \"a-out\"
default = \"accept\"
[[policy.rule]]
family = \"ipv6\"
origin = [$B_ASN]
action = \"reject\"
[[policy.rule]]
prepend = 2
set_med = 50
add_community = [\"(64511,100)\"]
add_large_community = [\"($R_ASN,7,7)\"]

[[policy]]
name = \"b-out\"
default = \"accept\"
[[policy.rule]]
delete_community = [\"(65000,*)\"]"
write_policy_router_config "$W/router.toml"
policy_router_up "$W/router.toml"
peer_start a
peer_start b

run_check sessions_established c_sessions_up 40 || exit 1

# c_local_pref: the import policy set local_pref 200 on the route with (65000,100) and left
# 100 on the others.
c_local_pref() {
    local ok=0 p want got
    for p in "$LP4 200" "$PLAIN4 100" "$A_NET4 100"; do
        read -r p want <<<"$p"
        wait_until 10 eval '[ "$(rr_route_info "$p" peer_a | awk "{ print \$1, \$4 }")" = "best $want" ]'
        got=$(rr_route_info "$p" peer_a)
        echo "router: $p from peer_a: $got (want best, local_pref $want)"
        [ "$(awk '{ print $1, $4 }' <<<"$got")" = "best $want" ] || ok=1
    done
    [ "$ok" = 0 ] || rtr_show
    return "$ok"
}
run_check import_local_pref_by_community c_local_pref
run_check import_prefix_list_rejects c_rr_decisions 10 \
    "$REJ4 peer_a filtered policy" "$REJ28 peer_a filtered policy" "$PLAIN4 peer_a best"
run_check import_policy_counted c_filtered_counts peer_a "policy 2"
run_check rejected_not_exported c_peer_paths_within 10 \
    "b $REJ4" "b $REJ28" "b $PLAIN4 $R_ASN $A_ASN" "b $LP4 $R_ASN $A_ASN"

# bird_field WHO PREFIX ATTR: BIRD's value of ATTR (BGP.med, ...) on WHO's best route.
bird_field() {
    birdc "$1" show route "$2" primary all 2>/dev/null |
        awk -v a="$3:" '$1 == a { $1 = ""; sub(/^ /, ""); print; exit }'
}

# c_set_has "SET" WANT...: every WANT is a word of SET.
c_set_has() {
    local set=" $1 " w ok=0
    shift
    for w in "$@"; do
        [[ $set == *" $w "* ]] || { echo "(missing $w in '${set:1:-1}')"; ok=1; }
    done
    return "$ok"
}

# c_export_a: a's view of what the router exports to it through "a-out".
c_export_a() {
    local ok=0 p c l med
    c_peer_paths_within 15 "a $B_NET4 $R_ASN $R_ASN $R_ASN $B_ASN" "a $R_NET4 $R_ASN $R_ASN $R_ASN" \
        "a $R_NET6 $R_ASN $R_ASN $R_ASN" || ok=1
    for p in "$B_NET4" "$R_NET4"; do
        c=$(peer_route a "$p" communities)
        l=$(peer_route a "$p" large)
        med=$(bird_field a "$p" BGP.med)
        echo "a: $p communities '$c', large '$l', med '$med'"
        c_set_has "$c" 64511:100 || ok=1
        c_set_has "$l" "$R_ASN:7:7" || ok=1
        [ "$med" = 50 ] || { echo "(med '$med', want 50)"; ok=1; }
    done
    c_set_has "$(peer_route a "$B_NET4" large)" "$B_ASN:1:2" || ok=1
    [ "$ok" = 0 ] || peer_show a "$B_NET4"
    return "$ok"
}
run_check export_prepend_med_communities c_export_a
run_check export_rejects_ipv6_from_b c_peer_paths_within 10 \
    "a $B_NET6" "a $B_NET4 $R_ASN $R_ASN $R_ASN $B_ASN" "a $R_NET6 $R_ASN $R_ASN $R_ASN"

# c_dn42_exact WHO PREFIX WANT...: WHO's route for PREFIX carries exactly these
# DN42 (64511,x) communities, in any order.
c_dn42_exact() {
    local who=$1 pfx=$2 got want
    shift 2
    got=$(peer_route "$who" "$pfx" communities | tr ' ' '\n' | grep '^64511:' | sort | tr '\n' ' ')
    want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    echo "$who: $pfx DN42 communities '$got' (want '$want')"
    [ "$got" = "$want" ]
}

# c_link_communities: a's routes left a with (3, 24, 34); imported over peer-a (4, 24, 34)
# they become latency 4; exported over peer-b (2, 22, 33) bandwidth 22 and crypto 33. The
# router's own prefix gets peer-b's link values and region / country.
c_link_communities() {
    local ok=0
    c_peer_paths_within 10 "b $A_NET4 $R_ASN $A_ASN" "b $R_NET4 $R_ASN" || ok=1
    c_dn42_exact b "$A_NET4" 64511:4 64511:22 64511:33 || ok=1
    c_dn42_exact b "$A_NET6" 64511:4 64511:22 64511:33 || ok=1
    c_dn42_exact b "$PLAIN4" 64511:4 64511:22 64511:33 || ok=1
    c_dn42_exact b "$R_NET4" 64511:2 64511:22 64511:33 64511:41 64511:1276 || ok=1
    c_dn42_exact b "$R_NET6" 64511:2 64511:22 64511:33 64511:41 64511:1276 || ok=1
    [ "$ok" = 0 ] || peer_show b "$A_NET4"
    return "$ok"
}
run_check link_communities_wiki_rules c_link_communities

# c_import_link: the router's own table holds a's route with peer-a's link applied.
c_import_link() {
    ctl show routes --json | "$PY" -c '
import json, sys
pfx = sys.argv[1]
d = json.load(sys.stdin)
r = next((r for r in d.get("routes", []) if r.get("prefix") == pfx), None)
if r is None:
    sys.exit("no route for %s" % pfx)
got = sorted(c.replace(" ", "") for c in r.get("communities", []) if c.replace(" ", "").startswith("(64511,"))
want = sorted(["(64511,4)", "(64511,24)", "(64511,34)"])
print("router: %s communities %s (want %s)" % (pfx, got, want))
sys.exit(0 if got == want else 1)' "$A_NET4"
}
run_check import_link_communities c_import_link

# c_b_out: (65000,100) deleted by b-out, large communities untouched.
c_b_out() {
    local ok=0 c l
    c=$(peer_route b "$LP4" communities)
    l=$(peer_route b "$LP4" large)
    echo "b: $LP4 communities '$c', large '$l'"
    [[ " $c " == *" 65000:100 "* ]] && { echo "(65000:100 was not deleted)"; ok=1; }
    [ "$l" = "$A_ASN:5:5" ] || { echo "(large communities changed: want exactly $A_ASN:5:5)"; ok=1; }
    l=$(peer_route b "$A_NET4" large)
    echo "b: $A_NET4 large '$l'"
    [ "$l" = "$A_ASN:1:2" ] || { echo "(want exactly $A_ASN:1:2)"; ok=1; }
    return "$ok"
}
run_check export_delete_community_large_untouched c_b_out
run_check router_alive_at_end router_alive

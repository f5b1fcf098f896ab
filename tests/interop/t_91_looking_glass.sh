#!/usr/bin/env bash
# rootless-router's looking glass ([looking_glass] listen = "127.0.0.1:8042" in the
# router's namespace) in a real headless Chromium, with the BGP topology of t_50: the
# router as uid 65534 between two BIRD 2 peers over WireGuard; b also originates
# 172.20.2.128/25 and fd00:b:42::/48 with the path "B 4242420098 4242420099" (BIRD adds
# B once more on export). Chromium (Debian's chromium + chromium-driver, driven through
# python3-selenium by lg_browser.py) runs in the router's namespace (loopback and the
# test's veths only, no route out, background networking off) as uid 65533 with no
# capabilities, its own sandbox on, and a HOME in the test's temp dir. Checks: `/` lists
# both sessions Established (as `ctl show bgp` says); an address typed in the form +
# Route shows the best route of the longest prefix with exactly the AS path that BIRD b
# sent (b's `show route all` + b's ASN), that the router holds (`ctl show routes --json`)
# and that a received from the router (minus the router's ASN), for v4 and v6; Ping from
# the form gets replies from b and a; hostile inputs typed or in the URL (script and img
# markup, `;id`, `../../etc/passwd`, `::/0` to ping, 200 characters, %00, 300 and 10 000
# characters, host bits, multicast, a second parameter, bad percent-encoding, /etc/passwd)
# get the 400 (431, 404) page with the input as text and no element or alert injected,
# and the router still answers; a 390x844 phone viewport has no horizontal overflow and
# its screenshots are kept ($RRT_ARTIFACTS, else /tmp/rr-lg-screenshots).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"
. "$(dirname "$0")/roa_lib.sh"

LG=127.0.0.1:8042
LG_NET4=172.20.2.128/25
LG_NET6=fd00:b:42::/48
LG_ADDR4=172.20.2.200
LG_ADDR6=fd00:b:42::7
LG_PREPEND="bgp_path.prepend(4242420099); bgp_path.prepend(4242420098); bgp_path.prepend($B_ASN);"
BROWSER_UID=65533
SHOTS=${RRT_ARTIFACTS:-/tmp/rr-lg-screenshots}
BROWSER_CHECKS=(lg_sessions_established lg_route_v4_as_path lg_route_v6_as_path lg_ping_b_v4
    lg_ping_a_v6 lg_hostile_inputs_refused lg_router_still_answers lg_phone_no_overflow_screenshots)

require_netns sessions_established "${BROWSER_CHECKS[@]}"
# Without the browser there is nothing to check here: each check is skipped, naming it.
lg_missing=()
for t in /usr/lib/chromium/chromium /usr/bin/chromedriver; do
    [ -x "$t" ] || lg_missing+=("$t")
done
/usr/bin/python3 -c 'import selenium' 2>/dev/null || lg_missing+=(python3-selenium)
if [ "${#lg_missing[@]}" -gt 0 ]; then
    for c in "${BROWSER_CHECKS[@]}"; do
        skip "$c" "missing ${lg_missing[*]} (apt: chromium chromium-driver python3-selenium)"
    done
    exit 0
fi
require_tools ip wg wireguard-go ping bird birdc setpriv nsenter unshare sysctl timeout "$PY"
require_router_bin

rrt_init
topo_up
bgp_peers_up
peer_bird_conf_with b "lg4 ipv4 '$LG_NET4' '$LG_PREPEND'" "lg6 ipv6 '$LG_NET6' '$LG_PREPEND'"
write_bgp_router_config "$W/router.toml"
printf '\n[looking_glass]\nlisten = "%s"\n' "$LG" >>"$W/router.toml"
router_start "$W/router.toml"
pass router_started
RRT_NEED_ROUTER=1
peer_start a
peer_start b

# The browser's HOME (profile, caches) and where it writes screenshots: its own.
BH=$W/browser-home
{ mkdir -p "$BH/shots" && chown -R "$BROWSER_UID:$BROWSER_UID" "$BH"; } || die "browser home $BH"

# browser ACTION ARGS...: lg_browser.py as uid 65533, no capabilities, in the router's
# namespace, with a clean environment.
browser() {
    nsx "$NS_R" setpriv --reuid="$BROWSER_UID" --regid="$BROWSER_UID" --clear-groups \
        --inh-caps=-all --bounding-set=-all --no-new-privs \
        env -i HOME="$BH" PATH=/usr/bin:/bin LANG=C.UTF-8 \
        /usr/bin/python3 "$RRT_DIR/lg_browser.py" "http://$LG" "$@"
}

c_lg_sessions() {
    echo "ctl: peer_a $(rtr_state peer_a), peer_b $(rtr_state peer_b)"
    rtr_established peer_a && rtr_established peer_b || return 1
    browser sessions peer_a peer_b
}

# c_lg_route ADDR PREFIX: the AS path of PREFIX at BIRD b (its own route, to which BIRD
# adds b's ASN on export), at the router (ctl) and at BIRD a (which has the router's ASN
# in front) agree; the browser, with ADDR typed in the form, shows that path.
c_lg_route() {
    local addr=$1 pfx=$2 at_b at_a rr want
    wait_until 20 peer_has_route a "$pfx"
    at_b=$(peer_as_path b "$pfx")
    at_a=$(peer_as_path a "$pfx")
    rr=$(rr_json route "$pfx" | awk '{ gsub(/,/, " ", $3); print $3 }')
    want="$B_ASN $at_b"
    echo "BIRD b: '$at_b' (+ $B_ASN on export); router (ctl): '$rr'; BIRD a: '$at_a'"
    [ -n "$at_b" ] && [ "$rr" = "$want" ] && [ "$at_a" = "$R_ASN $want" ] || return 1
    case $want in *" 4242420098 4242420099") ;; *) echo "not the prepended path"; return 1 ;; esac
    browser route "$addr" "$pfx" "$want"
}

c_lg_ping() {
    browser ping "$1"
}

c_lg_hostile() {
    browser hostile
}

c_lg_still_answers() {
    local out
    out=$(ctl show bgp 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    rtr_established peer_a && rtr_established peer_b && browser sessions peer_a peer_b
}

c_lg_phone() {
    local f rc=0
    rm -f "$BH"/shots/*.png
    browser mobile "$BH/shots" "$LG_ADDR4" || rc=1
    mkdir -p "$SHOTS" || return 1
    for f in "$BH"/shots/*.png; do
        [ -s "$f" ] || { echo "no screenshot"; return 1; }
        cp "$f" "$SHOTS/" || return 1
        echo "screenshot: $SHOTS/$(basename "$f") ($(stat -c %s "$f") bytes)"
    done
    return "$rc"
}

run_check sessions_established c_sessions_up 60 || exit 1
run_check lg_sessions_established c_lg_sessions
run_check lg_route_v4_as_path c_lg_route "$LG_ADDR4" "$LG_NET4"
run_check lg_route_v6_as_path c_lg_route "$LG_ADDR6" "$LG_NET6"
run_check lg_ping_b_v4 c_lg_ping "$B_V4"
run_check lg_ping_a_v6 c_lg_ping "$A_V6"
run_check lg_hostile_inputs_refused c_lg_hostile
run_check lg_router_still_answers c_lg_still_answers
run_check lg_phone_no_overflow_screenshots c_lg_phone
info "phone screenshots: $SHOTS/lg-phone-{sessions,route,refused}.png"
RRT_NEED_ROUTER=

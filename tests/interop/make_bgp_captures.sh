#!/usr/bin/env bash
# Makes the real BGP captures in crates/rr-bgp/tests/data/ (see the README there).
#
# What it does: in two network namespaces joined by a veth pair, runs BIRD 2 <-> BIRD 2
# and then FRR bgpd <-> BIRD 2, configured as the DN42 wiki does (4-byte ASNs, one MP-BGP
# session over IPv6 link-local with extended next hop carrying ipv4 + ipv6, plus one
# IPv4-neighbor session), drives each pair through establishment, a withdrawal and
# re-announcement, a ROUTE-REFRESH and an administrative shutdown (NOTIFICATION Cease),
# captures it all with tcpdump and extracts each direction's BGP messages with
# pcap_bgp_streams.py.
#
# What it is not: a test (run.sh does not run it; it is a maintainer's tool). Needs root,
# bird2, frr, tcpdump, python3.
#
#   sudo bash tests/interop/make_bgp_captures.sh OUTDIR
# OUTDIR must exist. The files in crates/rr-bgp/tests/data came from this script; its tests
# read those exact files, so write new captures elsewhere and compare.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bgp_lib.sh"

[ "$#" = 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUT=$(cd "$1" 2>/dev/null && pwd) || { echo "no such directory: $1" >&2; exit 2; }
require_tools ip bird birdc tcpdump /usr/lib/frr/bgpd /usr/lib/frr/zebra vtysh "$PY"
rrt_init

A_LL=fe80::a
B_LL=fe80::b
A_P2P=172.20.1.1
B_P2P=172.20.2.1

# pair_up: namespaces a and b, one veth between them with link-locals and a /32 pair.
pair_up() {
    local ns
    for ns in "$NS_A" "$NS_B"; do
        ip netns add "$ns" || die "ip netns add $ns"
        RRT_NAMESPACES+=("$ns")
        ip -n "$ns" link set lo up
    done
    ip link add veth0 netns "$NS_A" type veth peer name veth0 netns "$NS_B" || die "veth"
    ip -n "$NS_A" link set veth0 addrgenmode none
    ip -n "$NS_B" link set veth0 addrgenmode none
    ip -n "$NS_A" addr add "$A_LL/64" dev veth0 nodad &&
        ip -n "$NS_B" addr add "$B_LL/64" dev veth0 nodad &&
        ip -n "$NS_A" addr add "$A_P2P/32" peer "$B_P2P/32" dev veth0 &&
        ip -n "$NS_B" addr add "$B_P2P/32" peer "$A_P2P/32" dev veth0 &&
        ip -n "$NS_A" link set veth0 up && ip -n "$NS_B" link set veth0 up || die "veth addresses"
    wait_until 10 nsx "$NS_A" ping -c 1 -W 1 "$B_P2P" || die "veth a<->b does not work"
}

pair_down() {
    local ns pids
    frr_stop_all
    for ns in "$NS_A" "$NS_B"; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill $pids 2>/dev/null
    done
    sleep 0.5
    for ns in "$NS_A" "$NS_B"; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null
        ip netns del "$ns"
    done
    RRT_NAMESPACES=()
}

capture_start() { # FILE
    rm -f "$1"
    ip netns exec "$NS_A" tcpdump -i veth0 -s 0 -U -w "$1" 'tcp port 179' >"$W/tcpdump.log" 2>&1 &
    TCPDUMP_PID=$!
    wait_until 5 grep -q 'listening on' "$W/tcpdump.log" || die "tcpdump did not start"
}
capture_stop() {
    sleep 1
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID"
}

# BIRD a (AS A_ASN): the wiki's config and prefixes carrying DN42 communities (latency 3,
# bandwidth 24, crypto 34, region 41) and a large community; a second static protocol
# "extra" is withdrawn and restored during the capture.
bird_a_conf() {
    local f=$W/bird-a.conf
    bird_conf_head "$f" "$A_ASN" "$A_P2P" "172.20.1.0/24+, 10.127.1.0/24+" "fd00:a::/44+" "" ""
    bird_conf_static "$f" own4 ipv4 "172.20.1.0/24 10.127.1.0/24 172.23.1.16/28" \
        'bgp_community.add((64511,3)); bgp_community.add((64511,24)); bgp_community.add((64511,34)); bgp_community.add((64511,41)); bgp_large_community.add((4242420001,1,2));'
    bird_conf_static "$f" own6 ipv6 "fd00:a::/48 fd00:a:2::/48" \
        'bgp_community.add((64511,3)); bgp_community.add((64511,24)); bgp_community.add((64511,34)); bgp_community.add((64511,41)); bgp_large_community.add((4242420001,1,2)); bgp_large_community.add((4242420001,2,1000));'
    bird_conf_static "$f" extra4 ipv4 "$A_EXTRA4" 'bgp_community.add((64511,5));'
    bird_conf_static "$f" extra6 ipv6 "$A_EXTRA6" 'bgp_med = 50;'
    bird_conf_peer "$f" ll "$B_LL" veth0 "$1" mp
    bird_conf_peer "$f" v4 "$B_P2P" "" "$1" v4
    echo "$f"
}

bird_b_conf() {
    local f=$W/bird-b.conf
    bird_conf_head "$f" "$B_ASN" "$B_P2P" "172.20.2.0/24+" "fd00:b::/48+" "" ""
    bird_conf_static "$f" own4 ipv4 "172.20.2.0/24" \
        'bgp_community.add((64511,2)); bgp_community.add((64511,25)); bgp_large_community.add((4242420003,3,4));'
    bird_conf_static "$f" own6 ipv6 "fd00:b::/48" \
        'bgp_community.add((64511,2)); bgp_community.add((64511,25)); bgp_large_community.add((4242420003,3,4));'
    bird_conf_peer "$f" ll "$A_LL" veth0 "$A_ASN" mp
    bird_conf_peer "$f" v4 "$A_P2P" "" "$A_ASN" v4
    echo "$f"
}

# FRR in b (AS B_ASN), the DN42 wiki's FRR style: neighbor fe80::a interface veth0 with
# capability extended-nexthop for both families, plus an IPv4 neighbor for ipv4 only.
frr_b_conf() {
    local f=$W/frr-b.conf
    {
        cat <<EOF
hostname frr-b
!
EOF
        frr_dn42_prefix_lists
        cat <<EOF
route-map originate permit 10
 set community 64511:2 64511:25
 set large-community 4242420003:3:4
!
router bgp $B_ASN
 bgp router-id $B_P2P
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 neighbor $A_LL remote-as $A_ASN
 neighbor $A_LL interface veth0
 neighbor $A_LL capability extended-nexthop
 neighbor $A_LL timers $BGP_KEEPALIVE $BGP_HOLD
 neighbor $A_LL timers connect 2
 neighbor $A_P2P remote-as $A_ASN
 neighbor $A_P2P timers $BGP_KEEPALIVE $BGP_HOLD
 neighbor $A_P2P timers connect 2
 !
 address-family ipv4 unicast
  network 172.20.2.0/24 route-map originate
  network 172.20.2.128/25
  neighbor $A_LL activate
  neighbor $A_LL route-map dn42-v4 in
  neighbor $A_LL route-map dn42-v4 out
  neighbor $A_P2P activate
  neighbor $A_P2P route-map dn42-v4 in
  neighbor $A_P2P route-map dn42-v4 out
 exit-address-family
 !
 address-family ipv6 unicast
  network fd00:b::/48 route-map originate
  neighbor $A_LL activate
  neighbor $A_LL route-map dn42-v6 in
  neighbor $A_LL route-map dn42-v6 out
 exit-address-family
!
EOF
    } >"$f"
    echo "$f"
}

# extract PCAP SRC DST OUTNAME [TYPES]: the session's main connection (the one with the
# most messages: not a collision loser nor a refused reconnect), optionally only TYPES.
extract() {
    "$PY" "$RRT_DIR/pcap_bgp_streams.py" "$1" extract --src "$2" --dst "$3" -o "$OUT/$4" \
        --connection longest ${5:+--types "$5"} || die "extract $4"
}

# ---------------------------------------------------------------- BIRD <-> BIRD
info "BIRD $(bird --version 2>&1 | awk '{ print $3 }') <-> BIRD"
pair_up
capture_start "$W/bird_bird.pcap"
bird_start "$NS_A" a "$(bird_a_conf "$B_ASN")"
bird_start "$NS_B" b "$(bird_b_conf)"
wait_until 30 bird_established a ll && wait_until 30 bird_established a v4 || die "BIRD sessions did not come up"
wait_until 20 bird_has_route b "$A_EXTRA6" && wait_until 20 bird_has_route a "$B_NET6" || die "routes not exchanged"
sleep 4 # a keepalive or two after the initial exchange
birdc a disable extra4 && birdc a disable extra6 >/dev/null
wait_until 10 eval '! bird_has_route b "$A_EXTRA6"' || die "withdrawal did not arrive"
birdc a enable extra4 && birdc a enable extra6 >/dev/null
wait_until 10 bird_has_route b "$A_EXTRA6" || die "re-announcement did not arrive"
birdc b reload in ll >/dev/null # ROUTE-REFRESH (enhanced: a answers with BoRR ... EoRR)
birdc b reload in v4 >/dev/null
sleep 2
birdc a disable ll '"going down for maintenance"' >/dev/null # Cease, RFC 9003 message
birdc a disable v4 >/dev/null                                  # Cease, no message
wait_until 10 bird_down b ll && wait_until 10 bird_down b v4 || die "shutdown did not arrive"
capture_stop
"$PY" "$RRT_DIR/pcap_bgp_streams.py" "$W/bird_bird.pcap" list
extract "$W/bird_bird.pcap" "$A_LL" "$B_LL" bird_llenh_a2b.bgp
extract "$W/bird_bird.pcap" "$B_LL" "$A_LL" bird_llenh_b2a.bgp
extract "$W/bird_bird.pcap" "$A_P2P" "$B_P2P" bird_v4_a2b.bgp
extract "$W/bird_bird.pcap" "$B_P2P" "$A_P2P" bird_v4_b2a.bgp
extract "$W/bird_bird.pcap" "$A_LL" "$B_LL" bird_notification_cease_msg.bgp NOTIFICATION
extract "$W/bird_bird.pcap" "$A_P2P" "$B_P2P" bird_notification_cease.bgp NOTIFICATION
extract "$W/bird_bird.pcap" "$B_LL" "$A_LL" bird_route_refresh.bgp ROUTE-REFRESH
cp "$W/bird_bird.pcap" "$OUT/bird_bird.pcap"
pair_down

# ---------------------------------------------------------------- FRR <-> BIRD
info "FRR $(/usr/lib/frr/bgpd --version 2>&1 | awk '/version/ { print $NF; exit }') <-> BIRD"
pair_up
capture_start "$W/frr_bird.pcap"
bird_start "$NS_A" a "$(bird_a_conf "$B_ASN")"
frr_start "$NS_B" b "$(frr_b_conf)"
wait_until 40 bird_established a ll && wait_until 40 bird_established a v4 || die "FRR sessions did not come up"
wait_until 20 bird_has_route a "$B_NET6" && wait_until 20 bird_has_route a "$B_NET4" || die "routes from FRR missing"
wait_until 20 eval '[ -n "$(frr_route_field b "$A_EXTRA6" aspath)" ]' || die "routes to FRR missing"
sleep 4
birdc a disable extra4 >/dev/null && birdc a disable extra6 >/dev/null
wait_until 10 eval '[ -z "$(frr_route_field b "$A_EXTRA6" aspath)" ]' || die "withdrawal did not reach FRR"
birdc a enable extra4 >/dev/null && birdc a enable extra6 >/dev/null
wait_until 10 eval '[ -n "$(frr_route_field b "$A_EXTRA6" aspath)" ]' || die "re-announcement did not reach FRR"
vtysh b -c "clear bgp ipv4 unicast $A_LL soft in" -c "clear bgp ipv6 unicast $A_LL soft in" >/dev/null
vtysh b -c "clear bgp ipv4 unicast $A_P2P soft in" >/dev/null
birdc a reload in ll >/dev/null # BIRD asks FRR for a refresh too
sleep 2
vtysh b -c "configure terminal" -c "router bgp $B_ASN" \
    -c "neighbor $A_P2P shutdown message going down for maintenance" >/dev/null # FRR's Cease
birdc a disable ll >/dev/null                                                  # BIRD's Cease
wait_until 10 bird_down a v4 && wait_until 10 bird_down a ll || die "FRR shutdown did not arrive"
capture_stop
"$PY" "$RRT_DIR/pcap_bgp_streams.py" "$W/frr_bird.pcap" list
extract "$W/frr_bird.pcap" "$B_LL" "$A_LL" frr_llenh_frr2bird.bgp
extract "$W/frr_bird.pcap" "$A_LL" "$B_LL" frr_llenh_bird2frr.bgp
extract "$W/frr_bird.pcap" "$B_P2P" "$A_P2P" frr_v4_frr2bird.bgp
extract "$W/frr_bird.pcap" "$A_P2P" "$B_P2P" frr_v4_bird2frr.bgp
extract "$W/frr_bird.pcap" "$B_P2P" "$A_P2P" frr_notification_cease_msg.bgp NOTIFICATION
extract "$W/frr_bird.pcap" "$B_LL" "$A_LL" frr_route_refresh.bgp ROUTE-REFRESH
cp "$W/frr_bird.pcap" "$OUT/frr_bird.pcap"
if [ -n "${RRT_KEEP_CONFIGS:-}" ]; then
    mkdir -p "$RRT_KEEP_CONFIGS" && cp "$W"/bird-a.conf "$W"/bird-b.conf "$W"/frr-b.conf "$RRT_KEEP_CONFIGS/"
fi
pair_down
ls -l "$OUT"
pass captures

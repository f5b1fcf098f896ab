#!/usr/bin/env bash
# peer-b has no `endpoint` in the router's config: b initiates (it knows the router's
# endpoint and keeps the tunnel alive), the router learns b's endpoint, then follows b
# when b roams to another port and to another address.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"
. "$(dirname "$0")/ctl_checks.sh"

require_netns endpoint_topology
require_tools ip wg wireguard-go ping setpriv nsenter unshare sysctl timeout "$PY"
require_router_bin
rrt_init
topo_up
write_router_config "$W/router.toml" none
grep -q '^endpoint = "203' "$W/router.toml" && die "config still has peer-b's endpoint"
router_start "$W/router.toml"
pass router_started
RRT_NEED_ROUTER=1
peers_up yes # b: endpoint 203.0.113.2:51821 + persistent keepalive 25

# c_endpoint_shown EP: `ctl show interfaces` shows EP (polls up to 10 s).
endpoint_in_show() { ctl show interfaces 2>/dev/null | grep -qF "$1"; }
c_endpoint_shown() {
    wait_until 10 endpoint_in_show "$1"
    local rc=$?
    ctl show interfaces 2>&1
    [ "$rc" = 0 ] || echo "(endpoint $1 not shown after 10 s)"
    return "$rc"
}

run_check learned_endpoint_shown c_endpoint_shown "$B_OUTER:$PEER_PORT"
run_check b_to_a_v4 c_ping "$NS_B" -c 2 -W 2 "$A_V4"
run_check a_to_b_v4 c_ping "$NS_A" -c 2 -W 2 "$B_V4"
run_check a_to_b_v6 c_ping "$NS_A" -6 -c 2 -W 2 "$B_V6"
B_EP_EXPECT=$B_OUTER:$PEER_PORT
run_check learned_endpoint_json c_ctl_show_interfaces_json

# Roam 1: b's WireGuard moves to another UDP port.
wgx "$NS_B" wg set wg0 listen-port 51999 || die "wg set listen-port 51999 in b"
run_check roam_port_b_to_a_v4 c_ping "$NS_B" -c 2 -W 2 "$A_V4"
run_check roam_port_endpoint_shown c_endpoint_shown "$B_OUTER:51999"
run_check roam_port_a_to_b_v4 c_ping "$NS_A" -c 2 -W 2 "$B_V4"
run_check roam_port_a_to_b_v6 c_ping "$NS_A" -6 -c 2 -W 2 "$B_V6"

# Roam 2: b's outer address changes (203.0.113.1 -> 203.0.113.5). wireguard-go keeps
# sending from its cached ("sticky") source address until it re-handshakes, about 15 s
# later (the same with the kernel + wireguard-go as the router), hence the patience.
ip -n "$NS_B" addr del "$B_OUTER/24" dev veth0 && ip -n "$NS_B" addr add 203.0.113.5/24 dev veth0 ||
    die "moving b's outer address"
run_check roam_addr_b_to_a_v4 c_ping_within 40 "$NS_B" -c 1 -W 1 "$A_V4"
run_check roam_addr_endpoint_shown c_endpoint_shown "203.0.113.5:51999"
run_check roam_addr_a_to_b_v6 c_ping "$NS_A" -6 -c 2 -W 2 "$B_V6"
run_check router_alive_at_end router_alive

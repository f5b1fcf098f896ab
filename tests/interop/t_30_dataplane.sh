#!/usr/bin/env bash
# rootless-router between two real WireGuard peers (wireguard-go + kernel stacks):
# own addresses, forwarding both ways, traceroute, unreachables, PMTU and
# fragmentation, TCP through it, the control CLI, garbage on the tunnel ports, and
# the process's lack of privileges. Kernel forwarding in the router's namespace is off.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"
. "$(dirname "$0")/ctl_checks.sh"

require_netns dataplane_topology
require_tools ip wg wireguard-go ping traceroute setpriv nsenter unshare sysctl timeout "$PY"
require_router_bin
rrt_init
topo_up
peers_up no # b is passive: a->b needs the router to initiate the handshake with b
write_router_config "$W/router.toml"
run_check check_config_ok c_check_config "$W/router.toml"
router_start "$W/router.toml"
pass router_started
RRT_NEED_ROUTER=1

run_check router_unprivileged c_unprivileged
run_check router_no_tun_device c_no_tun
run_check router_udp_ports c_udp_ports
run_check kernel_forwarding_off c_forwarding_off

dataplane_checks

run_check ctl_show_interfaces c_ctl_show_interfaces
run_check ctl_show_interfaces_json c_ctl_show_interfaces_json
run_check ctl_show_routes c_ctl_show_routes
run_check ctl_show_routes_json c_ctl_show_routes_json
run_check ctl_route_lookup c_ctl_route_lookup
run_check ctl_ping c_ctl_ping
run_check ctl_traceroute c_ctl_traceroute
run_check ctl_refuses_other_uid c_ctl_refuses 65533
run_check ctl_refuses_root c_ctl_refuses 0
run_check garbage_on_tunnel_ports c_garbage
run_check bogus_ip_inside_the_tunnel c_bogus_inner

run_check kernel_forwarding_still_off c_forwarding_off
run_check router_alive_at_end router_alive
RRT_NEED_ROUTER=
run_check router_exits_on_sigterm c_sigterm

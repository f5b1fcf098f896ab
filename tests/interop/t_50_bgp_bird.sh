#!/usr/bin/env bash
# rootless-router's BGP against BIRD 2 as DN42 runs it: the router in namespace r with two
# WireGuard tunnels (wireguard-go peers a and b), one MP-BGP session per tunnel over IPv6
# link-local with extended next hop, 4-byte ASNs, ipv4 + ipv6; BIRD in a and b configured
# per the DN42 wiki exports what it learns to its namespace's kernel. Checks: sessions,
# AS paths, communities, next hops, the peers' kernels pinging each other across the
# router on BGP routes only, withdrawal, the DN42 import filter and own-prefix protection,
# a peer SIGKILLed (routes gone within the hold time) and restarted, and the CLI.
#
# With BGP_RTR=ref (t_05_bgp_reference.sh) the router is BIRD 2 + kernel forwarding, what
# operators run today: the same checks pass there, which shows they test the right thing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"
. "$(dirname "$0")/ctl_checks.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"

require_netns sessions_established
require_tools ip wg wireguard-go ping bird birdc setpriv nsenter unshare sysctl timeout "$PY"
[ "$BGP_RTR" = ref ] || require_router_bin
bgp_router_up check
PEER_KIND=([a]=bird [b]=bird)
peer_start a
peer_start b

bgp_checks

if [ "$BGP_RTR" = rr ]; then
    run_check ctl_show_bgp c_ctl_show_bgp
    run_check ctl_show_bgp_json c_ctl_show_bgp_json
    run_check ctl_show_routes_for c_ctl_routes_for
    run_check ctl_show_routes_json c_ctl_routes_json
    run_check kernel_forwarding_off c_forwarding_off
    run_check router_alive_at_end router_alive
fi

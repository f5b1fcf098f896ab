#!/usr/bin/env bash
# rootless-router's BGP against GoBGP (gobgpd) in both peer namespaces: the t_50 topology,
# one MP-BGP session per tunnel to fe80::1%wg0 with ipv4 + ipv6. GoBGP cannot program the
# kernel without zebra, so the peers' kernels carry no BGP routes and nothing here pings
# across the router on them (t_50/t_60 do). Checked through `gobgp neighbor` and `gobgp
# global rib`: sessions, AS paths, communities, withdrawal (`global rib del`), the
# router's import filter, gobgpd frozen (hold timer), killed and restarted. Not checked:
# the data plane, and the link-local next hop (gobgp shows only the "::" part).
# BGP_RTR=ref runs it against the reference router (BIRD 2 + kernel forwarding in r).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"
. "$(dirname "$0")/ctl_checks.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"

require_netns sessions_established
require_tools ip wg wireguard-go bird birdc gobgpd gobgp setpriv nsenter unshare sysctl timeout "$PY"
[ "$BGP_RTR" = ref ] || require_router_bin
bgp_router_up
PEER_KIND=([a]=gobgp [b]=gobgp)
peer_start a
peer_start b

bgp_checks nodata

if [ "$BGP_RTR" = rr ]; then
    run_check ctl_show_bgp c_ctl_show_bgp
    run_check router_alive_at_end router_alive
fi

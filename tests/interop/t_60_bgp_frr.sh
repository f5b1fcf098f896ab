#!/usr/bin/env bash
# rootless-router's BGP against FRR (zebra + bgpd) as DN42 runs it: the t_50 topology with
# FRR in both peer namespaces instead of BIRD (`neighbor fe80::1 interface wg0`,
# `capability extended-nexthop`, ipv4 + ipv6 over the one link-local session, the
# registry's prefix lists in and out). zebra installs the learned routes in the peers'
# kernels, so the same checks run: sessions, AS paths, communities, next hops, pings on
# BGP routes, withdrawal (`no network`), the router's import filter, bgpd frozen (hold
# timer) and killed, restart, and the router's CLI.
# BGP_RTR=ref runs it against the reference router (BIRD 2 + kernel forwarding in r).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"
. "$(dirname "$0")/ctl_checks.sh"
. "$(dirname "$0")/bgp_lib.sh"
. "$(dirname "$0")/bgp_checks.sh"

require_netns sessions_established
require_tools ip wg wireguard-go ping bird birdc /usr/lib/frr/zebra /usr/lib/frr/bgpd vtysh \
    setpriv nsenter unshare sysctl timeout "$PY"
[ "$BGP_RTR" = ref ] || require_router_bin
bgp_router_up
PEER_KIND=([a]=frr [b]=frr)
peer_start a
peer_start b

bgp_checks

if [ "$BGP_RTR" = rr ]; then
    run_check ctl_show_bgp c_ctl_show_bgp
    run_check ctl_show_routes_for c_ctl_routes_for
    run_check router_alive_at_end router_alive
fi
frr_stop_all

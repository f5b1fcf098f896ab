#!/usr/bin/env bash
# The same topology and data-plane checks as t_30_dataplane.sh, but with the kernel
# and two wireguard-go interfaces as the router (kernel forwarding ON in the router
# namespace). It needs no rootless-router: it proves the test machine, the peers and
# the checks themselves work, so a failure in t_30 points at the router.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"

require_netns reference_topology
require_tools ip wg wireguard-go ping traceroute setpriv nsenter unshare sysctl timeout
rrt_init
topo_up
peers_up no
ref_router_start
pass reference_topology
dataplane_checks

#!/usr/bin/env bash
# t_50_bgp_bird.sh's checks with the REFERENCE router: BIRD 2 (DN42 wiki config) and two
# wireguard-go interfaces with kernel forwarding in namespace r. It needs no
# rootless-router; it proves the machine, the peers and the BGP checks themselves work,
# so a t_50 failure points at the router.
BGP_RTR=ref
. "$(dirname "$0")/t_50_bgp_bird.sh"

//! The forwarding information base: longest-prefix match over IPv4 and IPv6 routes.
//!
//! What it is: [`Fib`], an immutable-after-build LPM table mapping prefixes to a
//! [`NextHop`] (a tunnel index and an optional gateway), and [`SharedFib`], the one
//! table the control plane writes and the data plane reads without blocking
//! (read-copy-update through `arc-swap`: readers load a snapshot, writers publish a new one).
//!
//! What it is not: a RIB. It holds exactly one next hop per prefix, no attributes, no
//! route selection; the control plane decides and writes the result here.
#![forbid(unsafe_code)]

/// Index of an interface (tunnel) in the node, dense from 0.
pub type IfIndex = u32;

/// Where a matching packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// The tunnel the packet leaves through.
    pub iface: IfIndex,
    /// The gateway on that tunnel, if any (tunnels are point-to-point, so mostly informational).
    pub gateway: Option<std::net::IpAddr>,
}

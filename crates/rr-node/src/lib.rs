//! The OS layer: the only crate that opens sockets, starts threads and reads the clock.
//!
//! What it is: [`Node`], which takes a validated [`rr_config::Config`] and runs it —
//! one UDP socket and one receive thread per WireGuard tunnel (the kernel schedules them
//! over all cores; each tunnel's crypto state sits behind its own mutex, held for one
//! open or seal), one control thread (WireGuard timers, the node's own TCP/UDP stack,
//! ping/traceroute probes, the BGP sessions and the route table that programs the
//! FIB, the relays of programs under `exec` and of the `[[forward]]`/`[[expose]]`
//! gateways, all waited for in one epoll; the `[roa]` files and RTR caches that feed
//! route origin validation), and the unix control socket.
//!
//! What it is not: protocol logic. Forwarding decisions, ICMP errors, the WireGuard
//! protocol, TCP, BGP and route selection live in the sans-IO crates (`rr-dataplane`,
//! `rr-stack`, `rr-bgp`, `rr-rib`); this crate
//! moves bytes between them and the kernel.

mod bgp;
mod control;
mod ctl_server;
mod exec;
mod http;
mod lg;
mod logging;
mod metrics;
mod roa;
mod roa_io;
mod shared;
pub mod signals;
mod sys;
mod tunnels;
mod udp;

pub use shared::{ExecStats, NodeError, NodeHandle};

use rr_config::Config;

/// A running node.
pub struct Node;

impl Node {
    /// Binds every tunnel's socket and the control socket, then starts the node's threads.
    /// Fails, changing nothing, if any socket cannot be had.
    pub fn start(config: Config) -> Result<NodeHandle, NodeError> {
        shared::start(config)
    }
}

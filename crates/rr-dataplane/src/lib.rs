//! The data plane's protocol logic, sans-IO.
//!
//! What it is: the forwarding decision for one IP packet ([`forward`]): local delivery,
//! TTL / hop-limit decrement, longest-prefix match, ICMP/ICMPv6 errors sourced from the
//! node's own addresses (RFC 792, RFC 1191, RFC 4443, RFC 8201), IPv4 fragmentation
//! (RFC 791), link-local scoping per tunnel; and the WireGuard tunnel wrapper ([`tunnel`])
//! around boringtun's `Tunn`.
//!
//! What it is not: I/O. Nothing here opens a socket, reads the clock or spawns a thread;
//! callers pass packets, `now` and a [`forward::Sink`] in.
#![forbid(unsafe_code)]

pub mod forward;
pub mod probe;
pub mod tunnel;

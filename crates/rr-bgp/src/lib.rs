//! BGP-4 for rootless-router: the wire codec and the per-neighbor session, sans-IO.
//!
//! What it is:
//! - [`packet`]: every message a DN42 session carries, decoded from and encoded to bytes
//!   (RFC 4271 BGP-4, RFC 4760 MP-BGP, RFC 2545 / RFC 8950 IPv6 and extended next hops,
//!   RFC 6793 4-byte ASNs, RFC 1997 communities, RFC 8092 large communities, RFC 2918
//!   route refresh, RFC 8654 extended messages, RFC 7606 revised error handling).
//! - [`session`]: one neighbor's finite state machine (RFC 4271 section 8), timers,
//!   capability negotiation and connection collision handling, driven by bytes, events
//!   and `now` in, bytes, actions and events out.
//!
//! What it is not: a RIB, a policy engine or a socket owner. Routes leave a session as
//! decoded UPDATEs ([`session::Event::Update`]); deciding what to do with them is
//! `rr-rib`'s job, moving the bytes is `rr-node`'s. Nothing here reads the clock, opens a
//! socket or spawns a thread.
#![forbid(unsafe_code)]

pub mod packet;
pub mod session;

//! The node's own TCP/UDP endpoints, on smoltcp, sans-IO.
#![forbid(unsafe_code)]

//! forwarding core (being written)

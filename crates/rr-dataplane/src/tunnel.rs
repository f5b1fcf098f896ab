//! tunnel wrapper (being written)

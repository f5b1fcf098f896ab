//! The OS layer.

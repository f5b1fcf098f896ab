//! The configuration file.
#![forbid(unsafe_code)]

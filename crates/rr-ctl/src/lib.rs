//! Control protocol types shared by the daemon and the CLI.
#![forbid(unsafe_code)]

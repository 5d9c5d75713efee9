//! portside: a live socket monitor for Linux terminals.
//!
//! Layers, each importing only from those below it:
//! `cli` -> `tui` / `output` -> `analysis` -> `source` -> `model`.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod model;
pub mod output;
pub mod source;
pub mod tui;

#[cfg(not(target_os = "linux"))]
compile_error!("portside reads Linux's netlink sock_diag and /proc: it builds for Linux only");

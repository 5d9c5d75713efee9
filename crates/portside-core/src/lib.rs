//! portside-core: the engine behind portside, with no terminal, UI or CLI dependency.
//!
//! Layers, each importing only from those below it: `analysis` -> `source` -> `model`.

pub mod analysis;
pub mod engine;
pub mod model;
pub mod source;

#[cfg(not(target_os = "linux"))]
compile_error!("portside reads Linux's netlink sock_diag and /proc: it builds for Linux only");

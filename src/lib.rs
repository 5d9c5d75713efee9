//! portside: a live socket monitor for Linux terminals.
//!
//! The engine (model, kernel access, analysis) is the `portside-core` crate; this crate is
//! the program around it. Layers, each importing only from those below it:
//! `app` -> `cli` -> `config` -> `tui` / `output` -> `portside_core::{analysis, source, model}`.

pub use portside_core::{analysis, model, source};

pub mod app;
pub mod cli;
pub mod config;
pub mod exporter;
pub mod output;
pub mod record;
pub mod serve;
pub mod toml_error;
pub mod tui;
pub mod vocabulary;

/// The version `--version` prints: the package version, and the git commit when built from
/// a checkout (`0.2.0 (git 1a2b3c4d)`; see build.rs).
pub const VERSION: &str = env!("PORTSIDE_VERSION");

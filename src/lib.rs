//! portside: a live socket monitor for Linux terminals.
//!
//! The engine (model, kernel access, analysis) is the `portside-core` crate; this crate is
//! the program around it. Layers, each importing only from those below it:
//! `app` -> `cli` -> `tui` / `output` -> `portside_core::{analysis, source, model}`.

pub use portside_core::{analysis, model, source};

pub mod app;
pub mod cli;
pub mod exporter;
pub mod output;
pub mod serve;
pub mod tui;

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

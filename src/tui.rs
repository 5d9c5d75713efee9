//! The interactive terminal UI.

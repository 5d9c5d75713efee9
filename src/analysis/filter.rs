//! The filter language shared by the command line and the TUI's `/` prompt.

use crate::model::{Snapshot, Socket};

/// A parsed filter expression: terms ANDed together. The empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {}

/// A filter expression that does not parse: names the bad term and where it starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter term '{term}' at position {position}: {message}")]
pub struct FilterError {
    /// The offending term, as the user typed it.
    pub term: String,
    /// 1-based character position of the term in the expression.
    pub position: usize,
    pub message: String,
}

impl Filter {
    /// Parse an expression (the positional arguments joined by spaces).
    pub fn parse(_expr: &str) -> Result<Filter, FilterError> {
        Ok(Filter {})
    }

    pub fn is_empty(&self) -> bool {
        true
    }

    /// Whether the filter looks at owners (`proc:`, `pid:`, `user:`).
    pub fn needs_owners(&self) -> bool {
        false
    }

    pub fn matches(&self, _socket: &Socket, _snapshot: &Snapshot) -> bool {
        true
    }
}

//! Record and replay: `portside record FILE` appends engine ticks to a `SQLite` recording;
//! `portside replay FILE --at TIME --once` prints the state at a recorded moment with the
//! same writers as `--once`.
//!
//! One file per concern: the schema and opening a file (`schema`), column encodings
//! (`codec`), appending ticks with the size and age bounds (`writer`), rebuilding a moment
//! (`reader`), TIME and size arguments (`when`), and the two commands (`record_cmd`,
//! `replay_cmd`).

pub mod codec;
pub mod reader;
pub mod record_cmd;
pub mod replay_cmd;
pub mod schema;
pub mod when;
pub mod writer;

#[cfg(test)]
mod tests;

/// Why a record or replay command stopped: bad input (exit 2) or a failure (exit 1).
#[derive(Debug)]
pub enum CommandError {
    Usage(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for CommandError {
    fn from(e: anyhow::Error) -> CommandError {
        CommandError::Failed(e)
    }
}

impl From<schema::StoreError> for CommandError {
    /// A foreign, newer or unreadable file is bad input: one line, exit 2.
    fn from(e: schema::StoreError) -> CommandError {
        CommandError::Usage(e.to_string())
    }
}

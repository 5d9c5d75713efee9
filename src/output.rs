//! Non-interactive writers: table, JSON, CSV.

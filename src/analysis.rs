//! Pure analysis over snapshots: the filter language, grouping by local port and state.

pub mod filter;
pub mod group;

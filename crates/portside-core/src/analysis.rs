//! Pure analysis over snapshots: the filter language, grouping by local port and state,
//! history, rates, TIME_WAIT and listener insight, alerts.

pub mod alerts;
pub mod connections;
pub mod filter;
pub mod group;
pub mod history;
pub mod insight;
pub mod listeners;
pub mod ports;
pub mod printable;
pub mod rates;
pub mod ring;
pub mod sides;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod timewait;

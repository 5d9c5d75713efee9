//! Connection churn figures: new and closed connections per second.
//!
//! What counts as new and closed, and how exactly, is decided by the connection tracker
//! (`connections`, sampled) and the socket-destroy notifications (`source::destroyed`).

use std::time::Duration;

/// What happened to one connection between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEvent {
    New,
    Closed,
}

/// Connections opened and closed per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnRate {
    pub new_per_sec: f64,
    pub closed_per_sec: f64,
}

impl ConnRate {
    /// Rates of `new` and `closed` events over `span_ms`; `None` when no time passed.
    pub fn of(new: u32, closed: u32, span_ms: u32) -> Option<ConnRate> {
        (span_ms > 0).then(|| {
            let secs = f64::from(span_ms) / 1000.0;
            ConnRate {
                new_per_sec: f64::from(new) / secs,
                closed_per_sec: f64::from(closed) / secs,
            }
        })
    }
}

/// Totals of one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickChurn {
    /// Real time since the previous snapshot; `None` on the first tick or a clock step back.
    pub elapsed: Option<Duration>,
    pub new: u32,
    pub closed: u32,
}

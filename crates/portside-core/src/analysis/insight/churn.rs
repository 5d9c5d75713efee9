//! How a tick's new and closed connections are counted: exactly from the kernel's
//! socket-destroy notifications when the snapshot carries them, else estimated by
//! comparing samples (the connection tracker's events).
//!
//! Exact: every full socket is reported once when it is destroyed, so **closed** is the
//! number of notifications (per local port, and per listener for accepted connections),
//! and **new** = closed + the change in open connections (full sockets with a remote end,
//! TIME_WAIT excluded) since the previous tick: a connection that opened and closed within
//! one interval is counted both ways. A socket destroyed between the dump and the drain (or
//! notified after the drain) moves one event into the next tick; negative results are
//! clamped at 0. If the notification queue overflowed, that tick falls back to sampling.

use crate::analysis::connections::is_connection;
use crate::analysis::insight::Insight;
use crate::analysis::ports::PortKey;
use crate::analysis::rates::TickChurn;
use crate::model::{Destroyed, Proto, Snapshot};

/// How the last tick's new/closed connections were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChurnSource {
    /// No rates yet: the first tick, or the clock stepped back.
    None,
    /// Estimated by comparing samples: no destroy notifications (the `/proc/net` source,
    /// or the subscription failed). Connections shorter than the interval that leave no
    /// TIME_WAIT socket are missed.
    Sampled,
    /// Counted from the kernel's destroy notifications: exact.
    Notified,
    /// The notification queue overflowed (`overflows` times) since the last tick, so
    /// notifications were lost: this tick is estimated by sampling.
    Overflowed { overflows: u32 },
}

impl ChurnSource {
    pub fn is_exact(self) -> bool {
        self == ChurnSource::Notified
    }

    /// `exact` or `estimated` (`None` before the first rate).
    pub fn name(self) -> Option<&'static str> {
        match self {
            ChurnSource::None => None,
            ChurnSource::Notified => Some("exact"),
            ChurnSource::Sampled | ChurnSource::Overflowed { .. } => Some("estimated"),
        }
    }
}

impl Insight {
    /// Settle this tick's churn per port and listener, and its host totals.
    pub(super) fn count_churn(&mut self, snapshot: &Snapshot) {
        let elapsed = self.connections.elapsed();
        self.churn_source = match (&snapshot.destroyed, elapsed) {
            (_, None) => ChurnSource::None,
            (None, Some(_)) => ChurnSource::Sampled,
            (Some(d), Some(_)) if d.overflows > 0 => ChurnSource::Overflowed {
                overflows: d.overflows,
            },
            (Some(d), Some(_)) => {
                self.count_destroyed(d);
                ChurnSource::Notified
            }
        };
        let (new, closed) = self
            .ports
            .rows()
            .iter()
            .fold((0, 0), |(n, c), r| (n + r.new, c + r.closed));
        self.churn = TickChurn {
            elapsed,
            new,
            closed,
        };
    }

    fn count_destroyed(&mut self, destroyed: &Destroyed) {
        for row in self.ports.rows_mut() {
            row.new = 0;
            row.closed = 0;
        }
        for c in &mut self.listener_counts {
            c.new = 0;
            c.closed = 0;
        }
        let tcp_listening = self.listening.of(Proto::Tcp);
        for s in &destroyed.sockets {
            if !is_connection(s) {
                continue;
            }
            let port = s.local.port();
            self.ports.row_mut(PortKey::new(s.proto, port)).closed += 1;
            if s.proto == Proto::Tcp
                && tcp_listening.contains(port)
                && let Some(l) = self.listener_index.find(&self.listeners, s.local, s.owners)
            {
                self.listener_counts[l].closed += 1;
            }
        }
        for row in self.ports.rows_mut() {
            let before = self.prev_ports.get(row.key).map_or(0, |r| r.live);
            row.new = (row.closed + row.live).saturating_sub(before);
        }
        for (l, c) in self.listeners.iter().zip(&mut self.listener_counts) {
            let key = l.key();
            let before = self
                .prev_listeners
                .binary_search_by_key(&key, |p| p.0)
                .map_or(0, |k| self.prev_listeners[k].1);
            c.new = (c.closed + c.live).saturating_sub(before);
        }
    }
}

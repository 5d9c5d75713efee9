//! Connections opened and closed per inbound port, accumulated across ticks into counters.
//!
//! A port's own series grows by the connections of the ticks in which it had its own
//! series; the ticks in which it was folded add to its protocol's `other` series. Every
//! series only grows (Prometheus counter semantics) and the sum over `port` of the
//! increase equals the connections counted.

use foldhash::{HashMap, HashMapExt};

use crate::analysis::insight::Insight;
use crate::exporter::fold::{Folded, Group, GroupKey};
use crate::model::Proto;

/// Opened/closed totals per inbound port since the exporter started.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    totals: HashMap<GroupKey, (u64, u64)>,
}

impl ConnectionCounters {
    pub fn new() -> ConnectionCounters {
        ConnectionCounters {
            totals: HashMap::new(),
        }
    }

    /// Add the connections `insight` counted in its last tick on listening ports.
    pub fn add_tick(&mut self, insight: &Insight, inbound: &Folded<Group>) {
        for row in insight.ports().rows() {
            if !row.listening || (row.new == 0 && row.closed == 0) {
                continue;
            }
            let own = GroupKey::Port(row.key.proto, row.key.port);
            let key = if inbound.has_own_series(own) {
                own
            } else {
                GroupKey::Other(row.key.proto)
            };
            let t = self.totals.entry(key).or_default();
            t.0 += u64::from(row.new);
            t.1 += u64::from(row.closed);
        }
    }

    /// (key, opened, closed) for every inbound series of this tick, and each protocol's
    /// `other` once it has counted anything (a counter series does not vanish).
    pub fn snapshot(&self, inbound: &Folded<Group>) -> Vec<(GroupKey, u64, u64)> {
        let mut out: Vec<(GroupKey, u64, u64)> = inbound
            .groups
            .iter()
            .filter(|g| matches!(g.key, GroupKey::Port(..)))
            .map(|g| {
                let (o, c) = self.totals.get(&g.key).copied().unwrap_or_default();
                (g.key, o, c)
            })
            .collect();
        for proto in [Proto::Tcp, Proto::Udp] {
            let key = GroupKey::Other(proto);
            let total = self.totals.get(&key).copied();
            let present = inbound.groups.iter().any(|g| g.key == key);
            if present || total.is_some() {
                let (o, c) = total.unwrap_or_default();
                out.push((key, o, c));
            }
        }
        out
    }
}

//! `Exposition`: the values one tick exposes, already folded to the series limits.
//!
//! Built from a snapshot and the `Insight` that took it in. Inbound groups are the ports
//! with a listener (every socket on such a local port); outbound groups are the other
//! connected sockets, keyed by remote port only: never the remote address or the local
//! ephemeral port, whose counts grow with traffic. A bound socket that neither listens nor
//! connects is in neither.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use foldhash::{HashMap, HashMapExt};

use portside_core::engine::Tick;

use crate::analysis::insight::Insight;
use crate::analysis::timewait::{EphemeralUse, TimeWaitSplit};
use crate::exporter::counters::ConnectionCounters;
use crate::exporter::fold::{self, Folded, Group, GroupKey, ListenerGroup};
use crate::model::{Coverage, Proto, Snapshot, TcpState};
use crate::source::sysctl::ListenStats;

/// Series limits, from `--max-ports` and `--top-destinations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Ports with their own series, per direction; the rest are summed under `other`.
    pub max_ports: usize,
    /// Destinations whose ephemeral-port use is exported.
    pub top_destinations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ports: 100,
            top_destinations: 10,
        }
    }
}

/// Everything a scrape shows, from one tick.
#[derive(Debug, Clone)]
pub struct Exposition {
    pub taken_at: SystemTime,
    /// Wall time of the tick: socket dump, owner join and analysis.
    pub tick_duration: Duration,
    pub ticks: u64,
    pub tick_errors: u64,
    pub inbound: Folded<Group>,
    pub outbound: Folded<Group>,
    pub listeners: Folded<ListenerGroup>,
    /// Connections opened/closed per inbound port since the exporter started; `None` in
    /// a one-shot run (a counter must not restart at every run of a textfile collector).
    pub connections: Option<Vec<(GroupKey, u64, u64)>>,
    pub time_wait: TimeWaitSplit,
    pub ephemeral_top: Vec<EphemeralUse>,
    pub ephemeral_destinations: usize,
    pub ephemeral_range_size: u32,
    pub listen_stats: Option<ListenStats>,
    pub coverage: Coverage,
}

impl Exposition {
    /// The exposition of an engine tick's scope (every socket without a filter), with the
    /// tick's kernel counters and duration.
    pub fn of_tick(
        tick: &Tick,
        limits: Limits,
        counters: Option<&mut ConnectionCounters>,
    ) -> Exposition {
        let mut e = Exposition::build(
            &tick.scope.snapshot,
            &tick.scope.insight,
            tick.listen_stats,
            limits,
            counters,
        );
        e.tick_duration = tick.took;
        e.ticks = tick.sample;
        e
    }

    /// The exposition of `snapshot`, which `insight` has just taken in. `counters` carries
    /// the connection counters across ticks (`None` for a one-shot run).
    pub fn build(
        snapshot: &Snapshot,
        insight: &Insight,
        listen_stats: Option<ListenStats>,
        limits: Limits,
        counters: Option<&mut ConnectionCounters>,
    ) -> Exposition {
        let inbound_rows: Vec<Group> = insight
            .ports()
            .rows()
            .iter()
            .filter(|r| r.listening)
            .map(|r| Group {
                key: GroupKey::Port(r.key.proto, r.key.port),
                counts: r.counts,
            })
            .collect();
        let inbound = fold::fold_groups(inbound_rows, limits.max_ports);
        let outbound = fold::fold_groups(outbound_groups(snapshot, insight), limits.max_ports);
        let listeners = fold::fold_listeners(listener_groups(insight), &inbound, limits.max_ports);
        let connections = counters.map(|c| {
            c.add_tick(insight, &inbound);
            c.snapshot(&inbound)
        });
        Exposition {
            taken_at: snapshot.taken_at,
            tick_duration: snapshot.duration,
            ticks: 1,
            tick_errors: 0,
            inbound,
            outbound,
            listeners,
            connections,
            time_wait: insight.time_wait(),
            ephemeral_top: insight.ephemeral_top(limits.top_destinations),
            ephemeral_destinations: insight.ephemeral().count(),
            ephemeral_range_size: crate::analysis::timewait::range_size(insight.ephemeral_range()),
            listen_stats,
            coverage: snapshot.coverage,
        }
    }
}

/// Connected sockets on local ports without a listener, per (protocol, remote port).
fn outbound_groups(snapshot: &Snapshot, insight: &Insight) -> Vec<Group> {
    let listening = insight.listening();
    let mut by_remote: HashMap<(Proto, u16), [u32; TcpState::COUNT]> = HashMap::new();
    for s in &snapshot.sockets {
        let remote = s.remote.port();
        if remote == 0 || listening.contains(s.proto, s.local.port()) {
            continue;
        }
        by_remote
            .entry((s.proto, remote))
            .or_insert([0; TcpState::COUNT])[s.state.index()] += 1;
    }
    by_remote
        .into_iter()
        .map(|((proto, port), counts)| Group {
            key: GroupKey::Port(proto, port),
            counts,
        })
        .collect()
}

/// TCP listeners per (local address, port): sockets sharing one (`SO_REUSEPORT`) are one
/// series, their queues and limits summed (the capacity of that address).
fn listener_groups(insight: &Insight) -> Vec<ListenerGroup> {
    let mut by_addr: HashMap<(IpAddr, u16), (u32, u32)> = HashMap::new();
    for l in insight.listeners() {
        let e = by_addr.entry((l.local.ip(), l.local.port())).or_default();
        e.0 = e.0.saturating_add(l.queue);
        e.1 = e.1.saturating_add(l.backlog);
    }
    by_addr
        .into_iter()
        .map(|((ip, port), (queue, limit))| ListenerGroup {
            address: Some(ip),
            port: Some(port),
            queue,
            limit,
        })
        .collect()
}

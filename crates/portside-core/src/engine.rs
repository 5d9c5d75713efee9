//! The tick engine: one pipeline for every consumer (printed output, the live view, and
//! the exporter, recorder and replay to come).
//!
//! One tick, in order:
//! 1. **Sample** ([`SnapshotSource`]): the socket snapshot with its owners, then the
//!    kernel counters (`/proc/net/netstat` ListenOverflows/ListenDrops) and the kernel
//!    settings, read right after the dump so rates and counts cover the same time.
//! 2. **Host-wide**: per-state totals and coverage of every socket ([`HostTotals`]) and the
//!    host [`Insight`] (history, rates): what a screen's header shows whatever the filter.
//! 3. **Scope**: the filter selects the sockets every table, panel, report and alert
//!    describes. With a filter, a scoped snapshot (the matching sockets) feeds a second
//!    `Insight`; without one, the scope shares the host's.
//! 4. **Reports and alerts** on the scope: the TIME_WAIT report, one row per listener, the
//!    firing alerts.
//! 5. The result is one immutable [`Tick`] behind an `Arc`, shared by every consumer; none
//!    re-derives what it holds.
//!
//! A new filter ([`Engine::set_filter`], or [`Control::SetFilter`] to the engine thread)
//! re-derives steps 3-4 from the last sample at once, without sampling: the scope's
//! history and rates start afresh with the new filter (rates after the next sample).
//!
//! Sharing: each `Insight` lives in an `Arc` that the next tick updates in place when no
//! consumer holds the previous tick any more, and copies first when one does
//! (`Arc::make_mut`): a consumer that keeps one tick while the next is derived costs one
//! copy of the insight per tick (history rings and connection lists: ~13 MB at 100k
//! sockets), on the engine thread.

mod cancel;
mod source;
mod thread;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::analysis::alerts::{self, Alert, FiredAlert};
use crate::analysis::filter::Filter;
use crate::analysis::insight::{Insight, InsightConfig};
use crate::analysis::listeners::{ListenerRow, listener_rows};
use crate::analysis::timewait::TimeWaitReport;
use crate::model::{Coverage, Destroyed, Proto, Snapshot, Socket, TcpState};
use crate::source::sysctl::{KernelSettings, ListenStats};

pub use cancel::Cancel;
pub use source::{KernelSource, Sample, SnapshotSource};
pub use thread::{Control, EngineEvent, EngineHandle, panic_message, spawn};

/// What the engine computes and for which sockets.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub insight: InsightConfig,
    /// Alert rules checked on every tick.
    pub alerts: Vec<Alert>,
    /// The sockets the analysis describes (empty: all).
    pub filter: Filter,
    /// The filter as the user typed it, for display.
    pub filter_text: String,
    /// Entries kept in each breakdown of the TIME_WAIT report.
    pub report_top: usize,
    /// Remote peers kept per listener row.
    pub top_peers: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            insight: InsightConfig::default(),
            alerts: alerts::default_alerts(),
            filter: Filter::default(),
            filter_text: String::new(),
            report_top: 100,
            top_peers: 5,
        }
    }
}

/// A tick that could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TickError(pub String);

/// Sockets per state of every socket on the host, whatever the filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostTotals {
    /// TCP sockets per state, indexed by [`TcpState::index`].
    pub tcp: [u32; TcpState::COUNT],
    /// UDP sockets per state (UNCONN is `Close`, connected is `Established`).
    pub udp: [u32; TcpState::COUNT],
    pub sockets: usize,
    /// How many sockets were joined to a process, and why the others were not.
    pub coverage: Coverage,
}

impl HostTotals {
    /// TCP + UDP sockets in `state`.
    pub fn state(&self, state: TcpState) -> u32 {
        self.tcp[state.index()] + self.udp[state.index()]
    }

    pub fn of(&self, proto: Proto) -> &[u32; TcpState::COUNT] {
        match proto {
            Proto::Tcp => &self.tcp,
            Proto::Udp => &self.udp,
        }
    }
}

/// Connections opened and closed on the host since the engine started (as the host
/// insight's tracker counts them): monotonic, for counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Churn {
    pub opened: u64,
    pub closed: u64,
}

/// The filter-scoped results: what every table, panel, report and alert describes.
#[derive(Debug, Clone)]
pub struct Scope {
    pub filter: Filter,
    /// The filter as typed; empty without a filter.
    pub filter_text: String,
    /// The matching sockets (the host snapshot itself, shared, without a filter).
    pub snapshot: Arc<Snapshot>,
    /// History, per-port counts and rates, listeners, TIME_WAIT split and ephemeral use of
    /// the matching sockets (the host insight, shared, without a filter).
    pub insight: Arc<Insight>,
    /// The TIME_WAIT report, each breakdown cut to [`EngineConfig::report_top`].
    pub time_wait: TimeWaitReport,
    /// One row per listening TCP socket, ordered by port then address.
    pub listeners: Vec<ListenerRow>,
    /// Alerts firing now, most severe first.
    pub alerts: Vec<FiredAlert>,
}

impl Scope {
    pub fn is_filtered(&self) -> bool {
        !self.filter.is_empty()
    }

    /// Owner coverage of the matching sockets.
    pub fn coverage(&self) -> Coverage {
        self.snapshot.coverage
    }
}

/// One tick: immutable, shared by every consumer through an `Arc`.
#[derive(Debug, Clone)]
pub struct Tick {
    /// Number of the sample (1 for the first); a re-derivation for a new filter keeps it.
    pub sample: u64,
    /// When the sample was taken.
    pub taken_at: SystemTime,
    /// How long the tick took: the sample plus the analysis (for a re-derivation, the
    /// sample's time plus the new analysis).
    pub took: Duration,
    /// Every socket on the host.
    pub snapshot: Arc<Snapshot>,
    pub totals: HostTotals,
    /// History and rates of every socket: the header's sparklines and NEW/s.
    pub host: Arc<Insight>,
    pub churn: Churn,
    /// Raw kernel counters (monotonic) read with the sample; `None` when unreadable.
    pub listen_stats: Option<ListenStats>,
    /// The newest kernel settings the source gave.
    pub settings: Option<KernelSettings>,
    /// The source's note on how this sample was read (see `Sample::note`).
    pub note: Option<String>,
    pub scope: Scope,
}

impl Tick {
    /// The tick a consumer shows before the first sample: no sockets, no history.
    pub fn empty(filter: Filter, filter_text: String) -> Tick {
        let snapshot = Arc::new(Snapshot::empty());
        let insight = Arc::new(Insight::default());
        Tick {
            sample: 0,
            taken_at: snapshot.taken_at,
            took: Duration::ZERO,
            totals: totals(&snapshot),
            host: Arc::clone(&insight),
            churn: Churn::default(),
            listen_stats: None,
            settings: None,
            note: None,
            scope: Scope {
                filter,
                filter_text,
                time_wait: TimeWaitReport::build(&insight, &snapshot, 0),
                snapshot: Arc::clone(&snapshot),
                insight,
                listeners: Vec::new(),
                alerts: Vec::new(),
            },
            snapshot,
        }
    }
}

/// What the last sample left for a re-derivation.
struct Last {
    sample: u64,
    snapshot: Arc<Snapshot>,
    totals: HostTotals,
    listen_stats: Option<ListenStats>,
    note: Option<String>,
    sampled_in: Duration,
}

/// The pipeline: a source plus everything derived across ticks.
pub struct Engine {
    source: Box<dyn SnapshotSource>,
    config: EngineConfig,
    host: Arc<Insight>,
    /// The scope's own insight while a filter is set.
    scoped: Option<Arc<Insight>>,
    settings: Option<KernelSettings>,
    churn: Churn,
    last: Option<Last>,
    samples: u64,
}

impl Engine {
    pub fn new(source: impl SnapshotSource, config: EngineConfig) -> Engine {
        let host = Arc::new(Insight::new(config.insight));
        let scoped = (!config.filter.is_empty()).then(|| Arc::new(Insight::new(config.insight)));
        Engine {
            source: Box::new(source),
            config,
            host,
            scoped,
            settings: None,
            churn: Churn::default(),
            last: None,
            samples: 0,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Samples the source and derives a tick.
    pub fn tick(&mut self) -> Result<Arc<Tick>, TickError> {
        let started = Instant::now();
        let sample = self.source.sample().map_err(TickError)?;
        Ok(self.ingest(sample, started))
    }

    /// Derives a tick from `sample` (taken from the engine's source, or given by a test,
    /// a demo or replay), `started` being when sampling began.
    pub fn ingest(&mut self, sample: Sample, started: Instant) -> Arc<Tick> {
        let sampled_in = started.elapsed();
        let Sample {
            snapshot,
            listen_stats,
            settings,
            note,
        } = sample;
        if settings.is_some() {
            self.settings = settings;
        }
        self.samples += 1;
        let mut snapshot = snapshot;
        let host = Arc::make_mut(&mut self.host);
        // The host insight's connection tracker infers the owners of TIME_WAIT and other
        // inode-less sockets into the snapshot before anyone reads it.
        host.update(&mut snapshot);
        let snapshot = Arc::new(snapshot);
        let totals = totals(&snapshot);
        if let Some(stats) = &listen_stats {
            host.record_listen_stats(stats);
        }
        let churn = host.churn();
        self.churn.opened += u64::from(churn.new);
        self.churn.closed += u64::from(churn.closed);
        let scoped_snapshot = self.scope_snapshot(&snapshot, listen_stats);
        self.last = Some(Last {
            sample: self.samples,
            snapshot,
            totals,
            listen_stats,
            note,
            sampled_in,
        });
        self.derive(scoped_snapshot, started)
    }

    /// Scopes the analysis to `filter` and re-derives the last sample at once (`None`
    /// before the first sample). The scope's history and rates start afresh.
    pub fn set_filter(&mut self, filter: Filter, text: String) -> Option<Arc<Tick>> {
        let started = Instant::now();
        self.scoped = (!filter.is_empty()).then(|| Arc::new(Insight::new(self.config.insight)));
        self.config.filter = filter;
        self.config.filter_text = text;
        let last = self.last.as_ref()?;
        let snapshot = Arc::clone(&last.snapshot);
        let stats = last.listen_stats;
        let started = started.checked_sub(last.sampled_in).unwrap_or(started);
        let scoped_snapshot = self.scope_snapshot(&snapshot, stats);
        Some(self.derive(scoped_snapshot, started))
    }

    /// Replaces the alert rules, from the next tick on.
    pub fn set_alerts(&mut self, rules: Vec<Alert>) {
        self.config.alerts = rules;
    }

    /// After a panic in a tick: the source starts afresh.
    pub fn recover(&mut self) {
        self.source.reset();
    }

    /// The matching sockets, with their coverage recounted, fed to the scope's insight;
    /// the snapshot itself without a filter.
    fn scope_snapshot(
        &mut self,
        snapshot: &Arc<Snapshot>,
        stats: Option<ListenStats>,
    ) -> Arc<Snapshot> {
        let filter = &self.config.filter;
        if filter.is_empty() {
            return Arc::clone(snapshot);
        }
        let sockets: Vec<_> = snapshot
            .sockets
            .iter()
            .filter(|s| filter.matches(s, snapshot))
            .copied()
            .collect();
        let mut coverage = Coverage::default();
        for s in &sockets {
            coverage.add(s.owners);
        }
        let mut scoped_snapshot = Snapshot {
            taken_at: snapshot.taken_at,
            duration: snapshot.duration,
            source: snapshot.source,
            sockets,
            processes: snapshot.processes.clone(),
            usage: snapshot.usage.clone(),
            owner_sets: snapshot.owner_sets.clone(),
            coverage,
            privileged: snapshot.privileged,
            ephemeral_range: snapshot.ephemeral_range,
            destroyed: snapshot.destroyed.as_ref().map(|d| Destroyed {
                // A destroyed connection (reported in state CLOSE) is in scope when it
                // would match as the open connection it was.
                sockets: d
                    .sockets
                    .iter()
                    .filter(|s| {
                        let open = Socket {
                            state: TcpState::Established,
                            ..**s
                        };
                        filter.matches(&open, snapshot)
                    })
                    .copied()
                    .collect(),
                overflows: d.overflows,
            }),
        };
        if let Some(scoped) = &mut self.scoped {
            let insight = Arc::make_mut(scoped);
            insight.update(&mut scoped_snapshot);
            if let Some(stats) = &stats {
                insight.record_listen_stats(stats);
            }
        }
        Arc::new(scoped_snapshot)
    }

    /// Steps 4-5: reports and alerts on the scope, then the tick.
    fn derive(&self, scoped_snapshot: Arc<Snapshot>, started: Instant) -> Arc<Tick> {
        let last = self.last.as_ref().expect("derive follows a sample");
        let insight = Arc::clone(self.scoped.as_ref().unwrap_or(&self.host));
        let time_wait = TimeWaitReport::build(&insight, &scoped_snapshot, self.config.report_top);
        let listeners = listener_rows(&insight, &scoped_snapshot, self.config.top_peers);
        let alerts = alerts::evaluate(&self.config.alerts, &insight);
        Arc::new(Tick {
            sample: last.sample,
            taken_at: last.snapshot.taken_at,
            took: started.elapsed(),
            snapshot: Arc::clone(&last.snapshot),
            totals: last.totals,
            host: Arc::clone(&self.host),
            churn: self.churn,
            listen_stats: last.listen_stats,
            settings: self.settings,
            note: last.note.clone(),
            scope: Scope {
                filter: self.config.filter.clone(),
                filter_text: self.config.filter_text.clone(),
                snapshot: scoped_snapshot,
                insight,
                time_wait,
                listeners,
                alerts,
            },
        })
    }
}

fn totals(snapshot: &Snapshot) -> HostTotals {
    let mut t = HostTotals {
        sockets: snapshot.sockets.len(),
        coverage: snapshot.coverage,
        ..HostTotals::default()
    };
    for s in &snapshot.sockets {
        match s.proto {
            Proto::Tcp => t.tcp[s.state.index()] += 1,
            Proto::Udp => t.udp[s.state.index()] += 1,
        }
    }
    t
}

#[cfg(test)]
mod tests;

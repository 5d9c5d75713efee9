//! `Insight`: everything derived from the stream of snapshots, updated once per tick.
//!
//! One pass over the sockets fills per-state and per-port counts, the listener list, the
//! TIME_WAIT split and the ephemeral-port use per destination; the connection tracker adds
//! new/closed events; the history records the result. Every table is kept across ticks and
//! cleared, not reallocated: a warm tick allocates nothing per socket. Measured cost at 100k
//! sockets: see the `tick_cost_at_100k_sockets` test (release build, `--ignored`).
//!
//! Memory (defaults): history rings <= 11.7 MB ([`History::max_heap_bytes`]: 667 points x
//! (144 B host + 256 ports x 60 B + 512 listeners x 4 B)), connection lists 48 B per
//! connection (4.8 MB at 100k), port tables 512 KiB + 60 B per port in use, ephemeral
//! destinations ~64 B each: ~13 MB at 100k sockets. [`Insight::heap_bytes`] reports it live.

use std::time::{Duration, SystemTime};

use foldhash::HashMap;

use crate::analysis::history::History;
use crate::analysis::listeners::{ListenRate, Listener};
use crate::analysis::ports::{Listening, PortKey, PortRow, PortTable, proto_index, top_counts};
use crate::analysis::rates::{ConnEvent, ConnRate, ConnTracker, TickChurn, is_connection};
use crate::analysis::timewait::{Destination, EphemeralUse, TimeWaitSplit, range_size};
use crate::model::{Proto, Snapshot, TcpState};
use crate::source::sysctl::ListenStats;

/// How much history to keep, and for how many ports and listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsightConfig {
    /// Time covered by every history ring (at least).
    pub window: Duration,
    /// Spacing of history points; faster ticks merge into one point.
    pub resolution: Duration,
    /// Ports with a history ring (listening ports first, then the busiest).
    pub max_ports: usize,
    /// Listeners with an accept-queue history.
    pub max_listeners: usize,
}

impl Default for InsightConfig {
    fn default() -> Self {
        InsightConfig {
            window: Duration::from_secs(600),
            resolution: Duration::from_secs(1),
            max_ports: 256,
            max_listeners: 512,
        }
    }
}

/// Derived state of a snapshot stream: feed every snapshot to [`Insight::update`].
/// `Clone` lets the engine share it in a `Tick` and copy it on write (`Arc::make_mut`).
#[derive(Debug, Clone)]
pub struct Insight {
    tracker: ConnTracker,
    listening: Listening,
    ports: PortTable,
    listeners: Vec<Listener>,
    destinations: HashMap<Destination, u32>,
    /// Indexes of the TCP connections whose local port is in the ephemeral range.
    outbound: Vec<u32>,
    ephemeral_range: (u16, u16),
    states: [[u32; TcpState::COUNT]; 2],
    time_wait: TimeWaitSplit,
    churn: TickChurn,
    taken_at: Option<SystemTime>,
    /// (time, ListenOverflows, ListenDrops) of the last counter reading.
    counters: Option<(SystemTime, u64, u64)>,
    listen_rate: Option<ListenRate>,
    history: History,
}

impl Default for Insight {
    fn default() -> Self {
        Insight::new(InsightConfig::default())
    }
}

impl Insight {
    pub fn new(config: InsightConfig) -> Insight {
        Insight {
            tracker: ConnTracker::new(),
            listening: Listening::default(),
            ports: PortTable::default(),
            listeners: Vec::new(),
            destinations: HashMap::default(),
            outbound: Vec::new(),
            ephemeral_range: (0, 0),
            states: [[0; TcpState::COUNT]; 2],
            time_wait: TimeWaitSplit::default(),
            churn: TickChurn::default(),
            taken_at: None,
            counters: None,
            listen_rate: None,
            history: History::new(
                config.window,
                config.resolution,
                config.max_ports,
                config.max_listeners,
            ),
        }
    }

    /// Take in the next snapshot (in time order; one stepping back in time yields no rates).
    ///
    /// One full pass over the sockets feeds the tracker, the counts and the listening sets;
    /// what depends on knowing every listener (TIME_WAIT side, ephemeral use) is settled
    /// afterwards from the port rows and from the indexes of the outbound candidates, so
    /// the 10 MB of a 100k-socket snapshot stream through the cache once.
    pub fn update(&mut self, snapshot: &Snapshot) {
        self.listening.clear();
        self.ports.clear();
        self.listeners.clear();
        self.destinations.clear();
        self.outbound.clear();
        self.states = [[0; TcpState::COUNT]; 2];
        self.ephemeral_range = snapshot.ephemeral_range;
        self.taken_at = Some(snapshot.taken_at);

        let (lo, hi) = snapshot.ephemeral_range;
        self.tracker.begin();
        for (i, s) in snapshot.sockets.iter().enumerate() {
            self.tracker.push(s);
            let port = s.local.port();
            self.states[proto_index(s.proto)][s.state.index()] += 1;
            let row = self.ports.row_mut(PortKey::new(s.proto, port));
            row.counts[s.state.index()] += 1;
            if s.is_listening() {
                row.listening = true;
                self.listening.insert(s.proto, port);
            }
            if s.proto == Proto::Tcp {
                if s.state == TcpState::Listen {
                    self.listeners.push(Listener::of(s));
                } else if (lo..=hi).contains(&port) && is_connection(s) {
                    self.outbound.push(i as u32);
                }
            }
        }
        let ports = &mut self.ports;
        self.churn = self
            .tracker
            .finish(snapshot.taken_at, |proto, port, event| {
                let row = ports.row_mut(PortKey::new(proto, port));
                match event {
                    ConnEvent::New => row.new += 1,
                    ConnEvent::Closed => row.closed += 1,
                }
            });

        self.time_wait = TimeWaitSplit::default();
        for row in self
            .ports
            .rows()
            .iter()
            .filter(|r| r.key.proto == Proto::Tcp)
        {
            let tw = row.count(TcpState::TimeWait);
            if row.listening {
                self.time_wait.server_side += tw;
            } else {
                self.time_wait.client_side += tw;
            }
        }
        let tcp_listening = self.listening.of(Proto::Tcp);
        for &i in &self.outbound {
            let s = &snapshot.sockets[i as usize];
            if !tcp_listening.contains(s.local.port()) {
                let d = Destination {
                    local_ip: s.local.ip(),
                    remote: s.remote,
                };
                *self.destinations.entry(d).or_default() += 1;
            }
        }
        self.record_history(snapshot.taken_at);
    }

    fn record_history(&mut self, at: SystemTime) {
        self.history.begin_tick(at);
        if let Some(p) = self.history.host_mut() {
            p.tcp = self.states[0];
            p.udp = self.states[1];
            if let Some(elapsed) = self.churn.elapsed {
                p.new += self.churn.new;
                p.closed += self.churn.closed;
                p.span_ms = p.span_ms.saturating_add(millis(elapsed));
            }
        }
        self.history.record_ports(at, &self.ports);
        self.history
            .record_listeners(self.listeners.iter().map(|l| (l.key(), l.queue)));
    }

    /// Take in `/proc/net/netstat` ListenOverflows and ListenDrops, read with the snapshot
    /// last passed to `update`. A counter going down (reset) skips one rate.
    pub fn record_listen_counters(&mut self, overflows: u64, drops: u64) {
        let Some(now) = self.taken_at else { return };
        self.listen_rate = None;
        if let Some((then, o, d)) = self.counters
            && let Ok(elapsed) = now.duration_since(then)
            && !elapsed.is_zero()
            && overflows >= o
            && drops >= d
        {
            let (o, d) = (clamp_u32(overflows - o), clamp_u32(drops - d));
            let ms = millis(elapsed);
            self.listen_rate = ListenRate::of(o, d, ms);
            if let Some(p) = self.history.host_mut() {
                p.listen_overflows = p.listen_overflows.saturating_add(o);
                p.listen_drops = p.listen_drops.saturating_add(d);
                p.counters_span_ms = p.counters_span_ms.saturating_add(ms);
            }
        }
        self.counters = Some((now, overflows, drops));
    }

    /// [`Insight::record_listen_counters`] from a `/proc/net/netstat` reading.
    pub fn record_listen_stats(&mut self, stats: &ListenStats) {
        self.record_listen_counters(stats.listen_overflows, stats.listen_drops);
    }

    /// Time of the last snapshot taken in.
    pub fn taken_at(&self) -> Option<SystemTime> {
        self.taken_at
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Sockets of `proto` per state now, indexed by [`TcpState::index`].
    pub fn state_counts(&self, proto: Proto) -> &[u32; TcpState::COUNT] {
        &self.states[proto_index(proto)]
    }

    pub fn count(&self, proto: Proto, state: TcpState) -> u32 {
        self.states[proto_index(proto)][state.index()]
    }

    /// Per-port counts and events now, for every port in use.
    pub fn ports(&self) -> &PortTable {
        &self.ports
    }

    pub fn port(&self, key: PortKey) -> Option<&PortRow> {
        self.ports.get(key)
    }

    pub fn listening(&self) -> &Listening {
        &self.listening
    }

    /// Listening TCP sockets now, in snapshot order.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    pub fn time_wait(&self) -> TimeWaitSplit {
        self.time_wait
    }

    /// Host-wide new/closed connections of the last tick and the time it covered.
    pub fn churn(&self) -> TickChurn {
        self.churn
    }

    /// Host-wide new/closed connections per second over the last tick.
    pub fn rate(&self) -> Option<ConnRate> {
        let ms = millis(self.churn.elapsed?);
        ConnRate::of(self.churn.new, self.churn.closed, ms)
    }

    /// New/closed connections per second on `key` over the last tick.
    pub fn port_rate(&self, key: PortKey) -> Option<ConnRate> {
        let ms = millis(self.churn.elapsed?);
        let (new, closed) = self.ports.get(key).map_or((0, 0), |r| (r.new, r.closed));
        ConnRate::of(new, closed, ms)
    }

    /// ListenOverflows / ListenDrops per second, once counters were recorded twice.
    pub fn listen_rate(&self) -> Option<ListenRate> {
        self.listen_rate
    }

    /// The ephemeral range of the last snapshot.
    pub fn ephemeral_range(&self) -> (u16, u16) {
        self.ephemeral_range
    }

    /// Ephemeral-port use of every outbound TCP destination now (unordered).
    pub fn ephemeral(&self) -> impl Iterator<Item = EphemeralUse> + '_ {
        let size = range_size(self.ephemeral_range);
        self.destinations
            .iter()
            .map(move |(d, &used)| EphemeralUse {
                destination: *d,
                used,
                range_size: size,
            })
    }

    /// The `n` destinations using the most ephemeral ports, most first.
    pub fn ephemeral_top(&self, n: usize) -> Vec<EphemeralUse> {
        let size = range_size(self.ephemeral_range);
        top_counts(self.destinations.iter().map(|(d, &c)| (*d, c)), n)
            .into_iter()
            .map(|(destination, used)| EphemeralUse {
                destination,
                used,
                range_size: size,
            })
            .collect()
    }

    /// Heap bytes held now by all tables and the history.
    pub fn heap_bytes(&self) -> usize {
        self.tracker.heap_bytes()
            + self.ports.heap_bytes()
            + self.listeners.capacity() * size_of::<Listener>()
            + self.outbound.capacity() * size_of::<u32>()
            + self.destinations.capacity() * (size_of::<(Destination, u32)>() + 1)
            + self.history.heap_bytes()
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod scale;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::{at, snapshot, tcp};

    fn server(ms: u64, clients: &[&str], time_wait: &[&str]) -> Snapshot {
        let mut sockets = vec![tcp(TcpState::Listen, 443, "0.0.0.0:0")];
        sockets.extend(clients.iter().map(|c| tcp(TcpState::Established, 443, c)));
        sockets.extend(time_wait.iter().map(|c| tcp(TcpState::TimeWait, 443, c)));
        snapshot(at(ms), sockets)
    }

    #[test]
    fn counts_states_ports_and_listeners() {
        let mut insight = Insight::default();
        let mut s = server(0, &["10.0.0.1:1", "10.0.0.2:1"], &["10.0.0.3:1"]);
        s.sockets
            .push(tcp(TcpState::TimeWait, 40000, "10.9.9.9:80"));
        insight.update(&s);
        assert_eq!(insight.count(Proto::Tcp, TcpState::Established), 2);
        assert_eq!(insight.count(Proto::Tcp, TcpState::TimeWait), 2);
        assert_eq!(
            insight.time_wait(),
            TimeWaitSplit {
                server_side: 1,
                client_side: 1
            }
        );
        let row = insight.port(PortKey::new(Proto::Tcp, 443)).unwrap();
        assert!(row.listening);
        assert_eq!(row.total(), 4);
        assert_eq!(insight.listeners().len(), 1);
        assert_eq!(insight.rate(), None, "no rate on the first tick");
        let tw: Vec<u32> = insight
            .history()
            .state_series(Proto::Tcp, TcpState::TimeWait)
            .collect();
        assert_eq!(tw, vec![2]);
    }

    #[test]
    fn rates_divide_by_the_real_interval() {
        let mut insight = Insight::default();
        insight.update(&server(0, &["10.0.0.1:1", "10.0.0.2:1"], &[]));
        // 2.5 s later: one client closed to TIME_WAIT, one vanished, three arrived.
        insight.update(&server(
            2500,
            &["10.0.0.4:1", "10.0.0.5:1", "10.0.0.6:1"],
            &["10.0.0.1:1"],
        ));
        let rate = insight.port_rate(PortKey::new(Proto::Tcp, 443)).unwrap();
        assert!((rate.new_per_sec - 1.2).abs() < 1e-9, "{rate:?}");
        assert!((rate.closed_per_sec - 0.8).abs() < 1e-9, "{rate:?}");
        let host = insight.rate().unwrap();
        assert!((host.new_per_sec - 1.2).abs() < 1e-9);
        let last = insight.history().host().last().unwrap();
        assert_eq!((last.new, last.closed, last.span_ms), (3, 2, 2500));
    }

    #[test]
    fn listen_counters_become_rates() {
        let mut insight = Insight::default();
        insight.record_listen_counters(5, 5);
        assert_eq!(insight.listen_rate(), None, "no snapshot yet");
        insight.update(&server(0, &[], &[]));
        insight.record_listen_counters(100, 200);
        assert_eq!(insight.listen_rate(), None, "one reading is no rate");
        insight.update(&server(2000, &[], &[]));
        insight.record_listen_counters(110, 206);
        let r = insight.listen_rate().unwrap();
        assert!((r.overflows_per_sec - 5.0).abs() < 1e-9 && (r.drops_per_sec - 3.0).abs() < 1e-9);
        let point = insight
            .history()
            .host()
            .last()
            .unwrap()
            .listen_rate()
            .unwrap();
        assert!((point.overflows_per_sec - 5.0).abs() < 1e-9);
        insight.update(&server(3000, &[], &[]));
        insight.record_listen_counters(0, 0);
        assert_eq!(insight.listen_rate(), None, "a counter reset skips a rate");
    }
}

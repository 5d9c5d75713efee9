//! `Insight`: everything derived from the stream of snapshots, updated once per tick.
//!
//! The connection tracker goes first (ages, sampled events, inferred owners); one pass over
//! the sockets then fills per-state and per-port counts, the listener list, the TIME_WAIT
//! split and the ephemeral-port use per destination; the accepted connections are then
//! attributed to their listeners (`listeners`); churn is counted exactly from the
//! socket-destroy notifications when the snapshot has them (`churn`); the history records
//! the result. Every table is kept across ticks and
//! cleared, not reallocated: a warm tick allocates nothing per socket. Measured cost at 100k
//! sockets: see the `tick_cost_at_100k_sockets` test (release build, `--ignored`).
//!
//! Memory (defaults): history rings <= 11.7 MB ([`History::max_heap_bytes`]: 667 points x
//! (144 B host + 256 ports x 64 B + 512 listeners x 8 B)), the connection tracker ~130 B
//! per socket (13 MB at 100k, see `connections`), two port tables of 512 KiB + 64 B per port
//! in use, ephemeral destinations ~64 B each: ~26 MB at 100k sockets. [`Insight::heap_bytes`] reports it live.

use std::time::{Duration, SystemTime};

use foldhash::HashMap;

use crate::analysis::connections::{Connections, is_connection};
use crate::analysis::history::History;
use crate::analysis::listeners::{ListenRate, Listener, ListenerCounts, ListenerIndex};
use crate::analysis::ports::{Listening, PortKey, PortRow, PortTable, proto_index, top_counts};
use crate::analysis::rates::{ConnRate, TickChurn};
use crate::analysis::timewait::{Destination, EphemeralUse, TimeWaitSplit, range_size};
use crate::model::{Proto, Snapshot, TcpState};

mod churn;
use crate::source::sysctl::ListenStats;
pub use churn::ChurnSource;

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
    connections: Connections,
    listening: Listening,
    ports: PortTable,
    /// The previous tick's port rows (their open connections, for the exact churn).
    prev_ports: PortTable,
    listeners: Vec<Listener>,
    /// Per listener (same order): its connections' counts and churn.
    listener_counts: Vec<ListenerCounts>,
    prev_listeners: Vec<(crate::analysis::listeners::ListenerKey, u32)>,
    listener_index: ListenerIndex,
    /// TCP sockets with a remote end on a listening port: (socket index, listener index).
    inbound: Vec<(u32, u32)>,
    /// Indexes of TCP sockets with a remote end: candidates for `inbound`.
    remote_tcp: Vec<u32>,
    /// How this tick's churn was counted.
    churn_source: ChurnSource,
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
            connections: Connections::new(),
            listening: Listening::default(),
            ports: PortTable::default(),
            prev_ports: PortTable::default(),
            listeners: Vec::new(),
            listener_counts: Vec::new(),
            prev_listeners: Vec::new(),
            listener_index: ListenerIndex::default(),
            inbound: Vec::new(),
            remote_tcp: Vec::new(),
            churn_source: ChurnSource::None,
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
    /// Owners inferred by the connection tracker are written into `snapshot`.
    ///
    /// One full pass over the sockets fills the counts and the listening sets; what depends
    /// on knowing every listener (TIME_WAIT side, ephemeral use, which listener accepted a
    /// connection) is settled afterwards from the port rows and from index lists, so the
    /// 10 MB of a 100k-socket snapshot stream through the cache once.
    pub fn update(&mut self, snapshot: &mut Snapshot) {
        self.connections.update(snapshot);
        let snapshot: &Snapshot = snapshot;
        std::mem::swap(&mut self.ports, &mut self.prev_ports);
        self.prev_listeners.clear();
        self.prev_listeners.extend(
            self.listeners
                .iter()
                .zip(&self.listener_counts)
                .map(|(l, c)| (l.key(), c.live)),
        );
        self.prev_listeners.sort_unstable_by_key(|p| p.0);
        self.listening.clear();
        self.ports.clear();
        self.listeners.clear();
        self.listener_counts.clear();
        self.destinations.clear();
        self.outbound.clear();
        self.remote_tcp.clear();
        self.inbound.clear();
        self.states = [[0; TcpState::COUNT]; 2];
        self.ephemeral_range = snapshot.ephemeral_range;
        self.taken_at = Some(snapshot.taken_at);

        let (lo, hi) = snapshot.ephemeral_range;
        for (i, s) in snapshot.sockets.iter().enumerate() {
            let port = s.local.port();
            self.states[proto_index(s.proto)][s.state.index()] += 1;
            let row = self.ports.row_mut(PortKey::new(s.proto, port));
            row.counts[s.state.index()] += 1;
            let events = self.connections.events(i);
            row.new += u32::from(events.new);
            row.closed += u32::from(events.closed);
            if is_connection(s) && s.state != TcpState::TimeWait {
                row.live += 1;
            }
            if s.is_listening() {
                row.listening = true;
                self.listening.insert(s.proto, port);
            }
            if s.proto == Proto::Tcp {
                if s.state == TcpState::Listen {
                    self.listeners.push(Listener::of(s));
                    self.listener_counts.push(ListenerCounts::default());
                } else if s.remote.port() != 0 {
                    self.remote_tcp.push(i as u32);
                    if (lo..=hi).contains(&port) && is_connection(s) {
                        self.outbound.push(i as u32);
                    }
                }
            }
        }
        for g in self.connections.gone() {
            self.ports
                .row_mut(PortKey::new(g.proto, g.local.port()))
                .closed += 1;
        }
        self.attribute_to_listeners(snapshot);
        self.count_churn(snapshot);

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

    /// Give each TCP socket on a listening port to the listener that accepted it, and
    /// count its state and sampled events there.
    fn attribute_to_listeners(&mut self, snapshot: &Snapshot) {
        self.listener_index.build(&self.listeners);
        let tcp_listening = self.listening.of(Proto::Tcp);
        for &i in &self.remote_tcp {
            let s = &snapshot.sockets[i as usize];
            if !tcp_listening.contains(s.local.port()) {
                continue;
            }
            let Some(l) = self.listener_index.find(&self.listeners, s.local, s.owners) else {
                continue;
            };
            let counts = &mut self.listener_counts[l];
            counts.add_state(s.state);
            if is_connection(s) {
                let events = self.connections.events(i as usize);
                counts.new += u32::from(events.new);
                counts.closed += u32::from(events.closed);
                if s.state != TcpState::TimeWait {
                    counts.live += 1;
                }
            }
            self.inbound.push((i, l as u32));
        }
        for g in self.connections.gone() {
            if g.proto == Proto::Tcp
                && let Some(l) = self.listener_index.find(
                    &self.listeners,
                    g.local,
                    crate::model::Owners::None(crate::model::Unattributed::NoInode),
                )
            {
                self.listener_counts[l].closed += 1;
            }
        }
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
        self.history.record_listeners(
            self.listeners
                .iter()
                .zip(&self.listener_counts)
                .map(|(l, c)| (l.key(), l.queue, c.close_wait)),
        );
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

    /// Counts and churn of each listener's connections, in the order of `listeners`.
    pub fn listener_counts(&self) -> &[ListenerCounts] {
        &self.listener_counts
    }

    /// (socket index, listener index) of every TCP socket a listener accepted, in the
    /// snapshot last passed to `update`.
    pub fn inbound(&self) -> &[(u32, u32)] {
        &self.inbound
    }

    /// New/closed connections per second through listener `index` over the last tick.
    pub fn listener_rate(&self, index: usize) -> Option<ConnRate> {
        let ms = millis(self.churn.elapsed?);
        let c = self.listener_counts.get(index)?;
        ConnRate::of(c.new, c.closed, ms)
    }

    /// The connection tracker: ages of the last snapshot's sockets.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// How the last tick's new/closed connections were counted.
    pub fn churn_source(&self) -> ChurnSource {
        self.churn_source
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
        self.connections.heap_bytes()
            + self.ports.heap_bytes()
            + self.prev_ports.heap_bytes()
            + self.listener_counts.capacity() * size_of::<ListenerCounts>()
            + self.prev_listeners.capacity() * 24
            + (self.inbound.capacity() * 2 + self.remote_tcp.capacity()) * size_of::<u32>()
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
        insight.update(&mut s);
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
        insight.update(&mut server(0, &["10.0.0.1:1", "10.0.0.2:1"], &[]));
        // 2.5 s later: one client closed to TIME_WAIT, one vanished, three arrived.
        insight.update(&mut server(
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
    fn destroy_notifications_count_churn_exactly() {
        use crate::model::Destroyed;
        let closed = |remote: &str| {
            let mut s = tcp(TcpState::Close, 443, remote);
            s.inode = 0;
            s
        };
        let mut insight = Insight::default();
        let mut s0 = server(0, &["10.0.0.1:1", "10.0.0.2:1"], &[]);
        s0.destroyed = Some(Destroyed::default());
        insight.update(&mut s0);
        assert_eq!(insight.churn_source(), ChurnSource::None);
        // One second later: 10.0.0.1 closed through TIME_WAIT, and 30 connections opened
        // and closed between the samples without a trace in the dump (peer closed first);
        // 10.0.0.3 is new and open. Sampling sees 1 new and 1 closed.
        let mut s1 = server(1000, &["10.0.0.2:1", "10.0.0.3:1"], &["10.0.0.1:1"]);
        let mut sampled = s1.clone();
        let mut sockets = vec![closed("10.0.0.1:1")];
        sockets.extend((0..30).map(|i| closed(&format!("10.0.1.{i}:1"))));
        // A listener and a request socket destroyed are no connections.
        sockets.push(tcp(TcpState::Close, 443, "0.0.0.0:0"));
        s1.destroyed = Some(Destroyed {
            sockets,
            overflows: 0,
        });
        let mut exact = Insight::default();
        exact.update(&mut s0.clone());
        exact.update(&mut s1);
        assert_eq!(exact.churn_source(), ChurnSource::Notified);
        let row = exact.port(PortKey::new(Proto::Tcp, 443)).unwrap();
        assert_eq!((row.new, row.closed), (31, 31));
        assert_eq!((exact.churn().new, exact.churn().closed), (31, 31));
        let c = exact.listener_counts()[0];
        assert_eq!((c.new, c.closed, c.live), (31, 31, 2));
        // Without notifications: the sampled estimate.
        insight.update(&mut sampled);
        assert_eq!(insight.churn_source(), ChurnSource::Sampled);
        assert_eq!((insight.churn().new, insight.churn().closed), (1, 1));
        // Notifications lost to an overflow: this tick is estimated.
        let mut s2 = server(2000, &["10.0.0.2:1", "10.0.0.3:1"], &["10.0.0.1:1"]);
        s2.destroyed = Some(Destroyed {
            sockets: vec![],
            overflows: 2,
        });
        exact.update(&mut s2);
        assert_eq!(
            exact.churn_source(),
            ChurnSource::Overflowed { overflows: 2 }
        );
        assert_eq!(exact.churn_source().name(), Some("estimated"));
    }

    #[test]
    fn listen_counters_become_rates() {
        let mut insight = Insight::default();
        insight.record_listen_counters(5, 5);
        assert_eq!(insight.listen_rate(), None, "no snapshot yet");
        insight.update(&mut server(0, &[], &[]));
        insight.record_listen_counters(100, 200);
        assert_eq!(insight.listen_rate(), None, "one reading is no rate");
        insight.update(&mut server(2000, &[], &[]));
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
        insight.update(&mut server(3000, &[], &[]));
        insight.record_listen_counters(0, 0);
        assert_eq!(insight.listen_rate(), None, "a counter reset skips a rate");
    }
}

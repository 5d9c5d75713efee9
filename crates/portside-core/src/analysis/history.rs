//! Bounded history: fixed-capacity rings of per-state counts, host-wide and per tracked
//! (proto, local port), plus each listener's accept queue.
//!
//! Time is cut into points at least 0.9 x `resolution` apart (ticks closer than that merge
//! into the last point: counts take the latest value, events add up), so the ring capacity
//! `ceil(window / (0.9 x resolution))` always covers `window`, whatever the sample interval.
//! Every tracked series ends at the newest host point: series of a port tracked later are
//! just shorter, aligned on the right.
//!
//! Memory: a host point is ~150 B, a port point 60 B, a listener point 8 B (queue and CLOSE_WAIT). With the defaults
//! (10 min, 1 s, 256 ports, 512 listeners: 667 points) the worst case is ~11.7 MB, see
//! [`History::max_heap_bytes`]. Which ports get a ring is decided in `record_ports`.

use foldhash::{HashMap, HashMapExt};
use std::time::{Duration, SystemTime};

use crate::analysis::listeners::{ListenRate, ListenerKey};
use crate::analysis::ports::PortKey;
use crate::analysis::rates::ConnRate;
pub use crate::analysis::ring::Ring;
pub use tracking::{PortHistory, PortPoint};

mod tracking;
use crate::model::{Proto, TcpState};

/// One host-wide history point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostPoint {
    /// Time of the newest snapshot merged into this point.
    pub at: SystemTime,
    /// TCP sockets per state, indexed by [`TcpState::index`].
    pub tcp: [u32; TcpState::COUNT],
    /// UDP sockets per state (`Established` connected, `Close` unconnected).
    pub udp: [u32; TcpState::COUNT],
    /// Connections opened / closed host-wide during `span_ms` (see `rates`).
    pub new: u32,
    pub closed: u32,
    /// Real time between snapshots covered by `new` and `closed`.
    pub span_ms: u32,
    /// Increase of `/proc/net/netstat` ListenOverflows / ListenDrops during `counters_span_ms`.
    pub listen_overflows: u32,
    pub listen_drops: u32,
    pub counters_span_ms: u32,
}

impl HostPoint {
    fn new(at: SystemTime) -> HostPoint {
        HostPoint {
            at,
            tcp: [0; TcpState::COUNT],
            udp: [0; TcpState::COUNT],
            new: 0,
            closed: 0,
            span_ms: 0,
            listen_overflows: 0,
            listen_drops: 0,
            counters_span_ms: 0,
        }
    }

    /// Sockets of `proto` in `state` at this point.
    pub fn count(&self, proto: Proto, state: TcpState) -> u32 {
        match proto {
            Proto::Tcp => self.tcp[state.index()],
            Proto::Udp => self.udp[state.index()],
        }
    }

    /// Connections opened and closed per second, if time passed.
    pub fn rate(&self) -> Option<ConnRate> {
        ConnRate::of(self.new, self.closed, self.span_ms)
    }

    /// ListenOverflows and ListenDrops per second, if the counters were read twice.
    pub fn listen_rate(&self) -> Option<ListenRate> {
        ListenRate::of(
            self.listen_overflows,
            self.listen_drops,
            self.counters_span_ms,
        )
    }
}

/// One listener's series.
#[derive(Debug, Clone)]
struct ListenerSeries {
    queue: Ring<u32>,
    close_wait: Ring<u32>,
    seen: u32,
}

/// Bounded history: host series, per-port series for at most `max_ports` ports, and
/// accept-queue series for at most `max_listeners` listeners.
#[derive(Debug, Clone)]
pub struct History {
    capacity: usize,
    /// Ticks closer than this to the start of the last point merge into it.
    merge_below: Duration,
    window: Duration,
    max_ports: usize,
    max_listeners: usize,
    host: Ring<HostPoint>,
    ports: HashMap<PortKey, PortHistory>,
    /// Per listener: accept queue, CLOSE_WAIT of its connections, last tick recorded.
    listeners: HashMap<ListenerKey, ListenerSeries>,
    point_start: Option<SystemTime>,
    /// The current tick merges into the last point instead of starting one.
    merging: bool,
    tick: u32,
    candidates: Vec<((bool, u32), PortKey)>,
}

impl History {
    /// History covering at least `window` at `resolution` points (at least 100 ms apart).
    pub fn new(
        window: Duration,
        resolution: Duration,
        max_ports: usize,
        max_listeners: usize,
    ) -> History {
        let merge_below = resolution.max(Duration::from_millis(100)).mul_f64(0.9);
        let capacity = (window.as_secs_f64() / merge_below.as_secs_f64()).ceil() as usize;
        let capacity = capacity.max(2);
        History {
            capacity,
            merge_below,
            window,
            max_ports,
            max_listeners,
            host: Ring::new(capacity),
            ports: HashMap::new(),
            listeners: HashMap::new(),
            point_start: None,
            merging: false,
            tick: 0,
            candidates: Vec::new(),
        }
    }

    /// Points per ring.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Host-wide points, oldest to newest.
    pub fn host(&self) -> &Ring<HostPoint> {
        &self.host
    }

    /// How many points back the newest point reaches `ago` into the past: the `points`
    /// argument of [`PortHistory::delta`] for "change over the last minute".
    pub fn points_within(&self, ago: Duration) -> usize {
        let Some(newest) = self.host.last() else {
            return 0;
        };
        let since = newest.at.checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH);
        self.host
            .iter()
            .rev()
            .skip(1)
            .take_while(|p| p.at >= since)
            .count()
    }

    /// Host-wide sockets of `proto` in `state`, oldest to newest: the header sparklines.
    pub fn state_series(
        &self,
        proto: Proto,
        state: TcpState,
    ) -> impl DoubleEndedIterator<Item = u32> + ExactSizeIterator + '_ {
        self.host.iter().map(move |p| p.count(proto, state))
    }

    /// History of `key`, if the port is tracked.
    pub fn port(&self, key: PortKey) -> Option<&PortHistory> {
        self.ports.get(&key)
    }

    /// Every tracked port (unordered).
    pub fn ports(&self) -> impl Iterator<Item = (PortKey, &PortHistory)> + '_ {
        self.ports.iter().map(|(k, h)| (*k, h))
    }

    /// Opened/closed connections per second on `key`, oldest to newest (`None` where a
    /// point covers no elapsed time, e.g. the first).
    pub fn port_rates(
        &self,
        key: PortKey,
    ) -> Option<impl DoubleEndedIterator<Item = Option<ConnRate>> + ExactSizeIterator + '_> {
        let port = self.ports.get(&key)?;
        let skip = self.host.len() - port.points().len();
        Some(
            self.host
                .iter()
                .skip(skip)
                .zip(port.points().iter())
                .map(|(h, p)| ConnRate::of(p.new, p.closed, h.span_ms)),
        )
    }

    /// Accept-queue lengths of a listener, oldest to newest.
    pub fn listener_queue(&self, key: &ListenerKey) -> Option<&Ring<u32>> {
        self.listeners.get(key).map(|l| &l.queue)
    }

    /// CLOSE_WAIT connections of a listener, oldest to newest.
    pub fn listener_close_wait(&self, key: &ListenerKey) -> Option<&Ring<u32>> {
        self.listeners.get(key).map(|l| &l.close_wait)
    }

    /// Start a tick at `at`: a new point, or a merge into the last one if it is recent.
    pub(crate) fn begin_tick(&mut self, at: SystemTime) {
        self.tick = self.tick.wrapping_add(1);
        self.merging = self
            .point_start
            .and_then(|start| at.duration_since(start).ok())
            .is_some_and(|d| d < self.merge_below);
        if self.merging {
            if let Some(p) = self.host.last_mut() {
                p.at = at;
            }
        } else {
            self.point_start = Some(at);
            self.host.push(HostPoint::new(at));
        }
    }

    /// The current host point (created by `begin_tick`).
    pub(crate) fn host_mut(&mut self) -> Option<&mut HostPoint> {
        self.host.last_mut()
    }

    /// Record each current listener's (key, accept queue, CLOSE_WAIT); forget listeners
    /// that are gone.
    pub(crate) fn record_listeners(
        &mut self,
        listeners: impl Iterator<Item = (ListenerKey, u32, u32)>,
    ) {
        let (tick, merging, capacity) = (self.tick, self.merging, self.capacity);
        for (key, queue, close_wait) in listeners {
            let full = self.listeners.len() >= self.max_listeners;
            let series = match self.listeners.get_mut(&key) {
                Some(e) => e,
                None if full => continue,
                None => self.listeners.entry(key).or_insert(ListenerSeries {
                    queue: Ring::new(capacity),
                    close_wait: Ring::new(capacity),
                    seen: tick.wrapping_sub(1),
                }),
            };
            if series.seen == tick {
                continue;
            }
            // An existing listener's last point is the current one when merging: every
            // tick updates every present listener, and absent ones are dropped below.
            for (ring, value) in [
                (&mut series.queue, queue),
                (&mut series.close_wait, close_wait),
            ] {
                match ring.last_mut() {
                    Some(last) if merging => *last = value,
                    _ => ring.push(value),
                }
            }
            series.seen = tick;
        }
        self.listeners.retain(|_, l| l.seen == tick);
    }

    /// Heap bytes held now (rings and maps).
    pub fn heap_bytes(&self) -> usize {
        let map_entry = size_of::<PortKey>() + size_of::<PortHistory>() + 8;
        let listener_entry = size_of::<ListenerKey>() + size_of::<ListenerSeries>() + 8;
        self.host.heap_bytes()
            + self.ports.capacity() * map_entry
            + self
                .ports
                .values()
                .map(|h| h.points().heap_bytes())
                .sum::<usize>()
            + self.listeners.capacity() * listener_entry
            + self
                .listeners
                .values()
                .map(|l| l.queue.heap_bytes() + l.close_wait.heap_bytes())
                .sum::<usize>()
            + self.candidates.capacity() * size_of::<((bool, u32), PortKey)>()
    }

    /// The most heap the rings can ever hold with this configuration (maps excluded).
    pub fn max_heap_bytes(&self) -> usize {
        self.capacity
            * (size_of::<HostPoint>()
                + self.max_ports * size_of::<PortPoint>()
                + self.max_listeners * 2 * size_of::<u32>())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::analysis::ports::PortTable;
    use crate::analysis::testing::at;

    pub(super) fn history(max_ports: usize) -> History {
        History::new(
            Duration::from_secs(60),
            Duration::from_secs(1),
            max_ports,
            4,
        )
    }

    /// A table with `(proto port, sockets, listening)` rows, sockets all ESTABLISHED.
    pub(super) fn table(rows: &[(u16, u32, bool)]) -> PortTable {
        let mut t = PortTable::default();
        for &(port, n, listening) in rows {
            let row = t.row_mut(PortKey::new(Proto::Tcp, port));
            row.counts[TcpState::Established.index()] = n;
            row.listening = listening;
        }
        t
    }

    pub(super) fn tick(h: &mut History, ms: u64, t: &PortTable) {
        h.begin_tick(at(ms));
        h.record_ports(at(ms), t);
    }

    pub(super) fn tracked(h: &History) -> Vec<u16> {
        let mut ports: Vec<u16> = h.ports().map(|(k, _)| k.port).collect();
        ports.sort_unstable();
        ports
    }

    #[test]
    fn capacity_covers_the_window_at_any_tick_spacing() {
        let h = history(1);
        assert_eq!(h.capacity(), 67); // 60 s / 0.9 s
        let fast = History::new(Duration::from_secs(600), Duration::ZERO, 1, 1);
        assert_eq!(fast.capacity(), 6667, "resolution is clamped to 100 ms");
    }

    #[test]
    fn close_ticks_merge_and_far_ticks_append() {
        let mut h = history(8);
        let t = table(&[(80, 3, true)]);
        for ms in [0, 500, 950, 1000, 1900, 2100] {
            tick(&mut h, ms, &t);
            if let Some(p) = h.host_mut() {
                p.new += 1;
                p.span_ms += 100;
            }
        }
        // Points start at 0, 950 and 1900 (each >= 900 ms after the previous start); the
        // other ticks merge: the point's time is its newest tick, its events add up.
        let times: Vec<SystemTime> = h.host().iter().map(|p| p.at).collect();
        assert_eq!(times, vec![at(500), at(1000), at(2100)]);
        let news: Vec<u32> = h.host().iter().map(|p| p.new).collect();
        assert_eq!(news, vec![2, 2, 2]);
        let port = h.port(PortKey::new(Proto::Tcp, 80)).unwrap();
        assert_eq!(
            port.points().len(),
            3,
            "port series stay aligned with the host"
        );
    }

    #[test]
    fn points_within_counts_back_by_time() {
        let mut h = history(1);
        assert_eq!(h.points_within(Duration::from_secs(60)), 0);
        for s in 0..10 {
            tick(&mut h, s * 2000, &table(&[]));
        }
        assert_eq!(h.points_within(Duration::from_secs(4)), 2);
        assert_eq!(h.points_within(Duration::from_secs(5)), 2);
        assert_eq!(h.points_within(Duration::from_secs(600)), 9);
    }

    #[test]
    fn port_rates_align_with_host_spans() {
        let mut h = history(8);
        tick(&mut h, 0, &table(&[]));
        let mut t = table(&[(443, 4, true)]);
        let row = t.row_mut(PortKey::new(Proto::Tcp, 443));
        row.new = 6;
        row.closed = 2;
        tick(&mut h, 2000, &t);
        h.host_mut().unwrap().span_ms = 2000;
        let rates: Vec<Option<ConnRate>> = h
            .port_rates(PortKey::new(Proto::Tcp, 443))
            .unwrap()
            .collect();
        assert_eq!(
            rates,
            vec![Some(ConnRate {
                new_per_sec: 3.0,
                closed_per_sec: 1.0
            })]
        );
    }

    #[test]
    fn listener_history_follows_present_listeners_only() {
        let mut h = history(1);
        let k = |inode| ListenerKey {
            local: "0.0.0.0:80".parse().unwrap(),
            inode,
        };
        for (ms, queue) in [(0, 1), (1000, 5), (1500, 7)] {
            h.begin_tick(at(ms));
            h.record_listeners([(k(1), queue, 0), (k(2), 0, 0)].into_iter());
        }
        assert_eq!(
            h.listener_queue(&k(1)).unwrap().iter().collect::<Vec<_>>(),
            vec![1, 7]
        );
        h.begin_tick(at(3000));
        h.record_listeners([(k(2), 3, 0)].into_iter());
        assert!(h.listener_queue(&k(1)).is_none());
        assert_eq!(h.listener_queue(&k(2)).unwrap().len(), 3);
    }

    #[test]
    fn listeners_past_the_budget_get_no_history() {
        let mut h = history(1);
        h.begin_tick(at(0));
        let keys: Vec<ListenerKey> = (0..10)
            .map(|i| ListenerKey {
                local: "0.0.0.0:80".parse().unwrap(),
                inode: i,
            })
            .collect();
        h.record_listeners(keys.iter().map(|k| (*k, 0, 0)));
        assert_eq!(
            keys.iter()
                .filter(|k| h.listener_queue(k).is_some())
                .count(),
            4
        );
    }
}

//! Bounded history: fixed-capacity rings of per-state counts, host-wide and per tracked
//! (proto, local port), plus each listener's accept queue.
//!
//! Time is cut into points at least 0.9 x `resolution` apart (ticks closer than that merge
//! into the last point: counts take the latest value, events add up), so the ring capacity
//! `ceil(window / (0.9 x resolution))` always covers `window`, whatever the sample interval.
//! Every tracked series ends at the newest host point: series of a port tracked later are
//! just shorter, aligned on the right.
//!
//! Memory: a host point is ~150 B, a port point 60 B, a listener point 4 B. With the defaults
//! (10 min, 1 s, 256 ports, 512 listeners: 667 points) the worst case is ~11.7 MB, see
//! [`History::max_heap_bytes`]. Which ports get a ring is decided in `record_ports`.

use foldhash::{HashMap, HashMapExt};
use std::time::{Duration, SystemTime};

use crate::analysis::listeners::{ListenRate, ListenerKey};
use crate::analysis::ports::{PortKey, PortRow, PortTable};
use crate::analysis::rates::ConnRate;
pub use crate::analysis::ring::Ring;
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

/// One per-port history point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPoint {
    pub counts: [u32; TcpState::COUNT],
    pub new: u32,
    pub closed: u32,
}

impl PortPoint {
    const ZERO: PortPoint = PortPoint {
        counts: [0; TcpState::COUNT],
        new: 0,
        closed: 0,
    };

    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }
}

/// History of one tracked (proto, local port).
#[derive(Debug, Clone)]
pub struct PortHistory {
    points: Ring<PortPoint>,
    /// Last time the port had a socket; evicted `window` after.
    last_active: SystemTime,
    /// Whether the port listened at the last tick.
    pub listening: bool,
}

impl PortHistory {
    pub fn points(&self) -> &Ring<PortPoint> {
        &self.points
    }

    /// Sockets in `state`, oldest to newest.
    pub fn series(
        &self,
        state: TcpState,
    ) -> impl DoubleEndedIterator<Item = u32> + ExactSizeIterator + '_ {
        self.points.iter().map(move |p| p.counts[state.index()])
    }

    /// All sockets of the port, oldest to newest.
    pub fn totals(&self) -> impl DoubleEndedIterator<Item = u32> + ExactSizeIterator + '_ {
        self.points.iter().map(|p| p.total())
    }

    /// Change of the count in `state` (all states for `None`) over the last `points`
    /// points (or since tracking began, if shorter): the trend arrow of the grouped view.
    pub fn delta(&self, state: Option<TcpState>, points: usize) -> i64 {
        let value = |p: PortPoint| i64::from(state.map_or(p.total(), |s| p.counts[s.index()]));
        let (Some(now), Some(oldest)) = (
            self.points.last(),
            self.points
                .back(points.min(self.points.len().saturating_sub(1))),
        ) else {
            return 0;
        };
        value(now) - value(oldest)
    }
}

/// Non-listening ports need this many sockets to be worth a ring: this keeps the 30k
/// one-socket ephemeral ports of a busy client out of the history.
const MIN_SOCKETS_TO_TRACK: u32 = 2;
/// Tracked ports replaced per tick at most once the budget is full, to bound churn.
const MAX_REPLACEMENTS_PER_TICK: usize = 4;

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
    listeners: HashMap<ListenerKey, (Ring<u32>, u32)>,
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
        let skip = self.host.len() - port.points.len();
        Some(
            self.host
                .iter()
                .skip(skip)
                .zip(port.points.iter())
                .map(|(h, p)| ConnRate::of(p.new, p.closed, h.span_ms)),
        )
    }

    /// Accept-queue lengths of a listener, oldest to newest.
    pub fn listener_queue(&self, key: &ListenerKey) -> Option<&Ring<u32>> {
        self.listeners.get(key).map(|(ring, _)| ring)
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

    /// Record this tick's per-port rows: evict, admit, then append to every tracked port.
    ///
    /// Policy: listening ports and ports with at least 2 sockets are candidates, larger
    /// first (listening before not); free slots go to the best candidates; when full, up to
    /// 4 per tick replace the weakest tracked port if clearly stronger (listening beats not,
    /// else more than twice the sockets). Ports without sockets for `window` are evicted.
    pub(crate) fn record_ports(&mut self, at: SystemTime, table: &PortTable) {
        let window = self.window;
        self.ports.retain(|_, h| {
            at.duration_since(h.last_active)
                .map_or(true, |idle| idle <= window)
        });

        self.candidates.clear();
        for row in table.rows() {
            let total = row.total();
            if (row.listening || total >= MIN_SOCKETS_TO_TRACK)
                && !self.ports.contains_key(&row.key)
            {
                self.candidates.push(((row.listening, total), row.key));
            }
        }
        // Only the best `free + replacements` candidates can get in: select, then sort those.
        let order = |a: &((bool, u32), PortKey), b: &((bool, u32), PortKey)| {
            b.0.cmp(&a.0).then(a.1.cmp(&b.1))
        };
        let keep = self.max_ports.saturating_sub(self.ports.len()) + MAX_REPLACEMENTS_PER_TICK;
        if self.candidates.len() > keep {
            self.candidates.select_nth_unstable_by(keep, order);
            self.candidates.truncate(keep);
        }
        self.candidates.sort_unstable_by(order);
        let mut replaced = 0;
        for i in 0..self.candidates.len() {
            let (score, key) = self.candidates[i];
            if self.ports.len() >= self.max_ports {
                if replaced == MAX_REPLACEMENTS_PER_TICK {
                    break;
                }
                let Some((victim, victim_score)) = self.weakest(table) else {
                    break;
                };
                if !beats(score, victim_score) {
                    break;
                }
                self.ports.remove(&victim);
                replaced += 1;
            }
            self.ports.insert(
                key,
                PortHistory {
                    points: Ring::new(self.capacity),
                    last_active: at,
                    listening: false,
                },
            );
        }

        let merging = self.merging;
        for (key, h) in &mut self.ports {
            let row = table.get(*key);
            append(h, row, merging);
            h.listening = row.is_some_and(|r| r.listening);
            if row.is_some_and(|r| r.total() > 0) {
                h.last_active = at;
            }
        }
    }

    /// The tracked port with the lowest current score.
    fn weakest(&self, table: &PortTable) -> Option<(PortKey, (bool, u32))> {
        self.ports
            .keys()
            .map(|k| {
                let score = table
                    .get(*k)
                    .map_or((false, 0), |r| (r.listening, r.total()));
                (*k, score)
            })
            .min_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
    }

    /// Record each current listener's accept queue; forget listeners that are gone.
    pub(crate) fn record_listeners(&mut self, listeners: impl Iterator<Item = (ListenerKey, u32)>) {
        let (tick, merging, capacity) = (self.tick, self.merging, self.capacity);
        for (key, queue) in listeners {
            let full = self.listeners.len() >= self.max_listeners;
            let (ring, seen) = match self.listeners.get_mut(&key) {
                Some(e) => e,
                None if full => continue,
                None => self
                    .listeners
                    .entry(key)
                    .or_insert((Ring::new(capacity), tick.wrapping_sub(1))),
            };
            if *seen == tick {
                continue;
            }
            // An existing listener's last point is the current one when merging: every
            // tick updates every present listener, and absent ones are dropped below.
            match ring.last_mut() {
                Some(last) if merging => *last = queue,
                _ => ring.push(queue),
            }
            *seen = tick;
        }
        self.listeners.retain(|_, (_, seen)| *seen == tick);
    }

    /// Heap bytes held now (rings and maps).
    pub fn heap_bytes(&self) -> usize {
        let map_entry = size_of::<PortKey>() + size_of::<PortHistory>() + 8;
        let listener_entry = size_of::<ListenerKey>() + size_of::<(Ring<u32>, u32)>() + 8;
        self.host.heap_bytes()
            + self.ports.capacity() * map_entry
            + self
                .ports
                .values()
                .map(|h| h.points.heap_bytes())
                .sum::<usize>()
            + self.listeners.capacity() * listener_entry
            + self
                .listeners
                .values()
                .map(|(r, _)| r.heap_bytes())
                .sum::<usize>()
            + self.candidates.capacity() * size_of::<((bool, u32), PortKey)>()
    }

    /// The most heap the rings can ever hold with this configuration (maps excluded).
    pub fn max_heap_bytes(&self) -> usize {
        self.capacity
            * (size_of::<HostPoint>()
                + self.max_ports * size_of::<PortPoint>()
                + self.max_listeners * size_of::<u32>())
    }
}

fn beats(candidate: (bool, u32), victim: (bool, u32)) -> bool {
    candidate.0 && !victim.0
        || candidate.0 == victim.0 && u64::from(candidate.1) > 2 * u64::from(victim.1) + 1
}

/// Append (or merge into the last point) this tick's row of one tracked port.
fn append(h: &mut PortHistory, row: Option<&PortRow>, merging: bool) {
    let point = row.map_or(PortPoint::ZERO, |r| PortPoint {
        counts: r.counts,
        new: r.new,
        closed: r.closed,
    });
    match h.points.last_mut() {
        Some(last) if merging => {
            last.counts = point.counts;
            last.new += point.new;
            last.closed += point.closed;
        }
        _ => h.points.push(point),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::at;

    fn history(max_ports: usize) -> History {
        History::new(
            Duration::from_secs(60),
            Duration::from_secs(1),
            max_ports,
            4,
        )
    }

    /// A table with `(proto port, sockets, listening)` rows, sockets all ESTABLISHED.
    fn table(rows: &[(u16, u32, bool)]) -> PortTable {
        let mut t = PortTable::default();
        for &(port, n, listening) in rows {
            let row = t.row_mut(PortKey::new(Proto::Tcp, port));
            row.counts[TcpState::Established.index()] = n;
            row.listening = listening;
        }
        t
    }

    fn tick(h: &mut History, ms: u64, t: &PortTable) {
        h.begin_tick(at(ms));
        h.record_ports(at(ms), t);
    }

    fn tracked(h: &History) -> Vec<u16> {
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
    fn listening_and_busy_ports_are_tracked_singletons_are_not() {
        let mut h = history(8);
        tick(
            &mut h,
            0,
            &table(&[(80, 0, true), (8080, 5, false), (40001, 1, false)]),
        );
        assert_eq!(tracked(&h), vec![80, 8080]);
        let p = h.port(PortKey::new(Proto::Tcp, 80)).unwrap();
        assert!(p.listening);
    }

    #[test]
    fn budget_prefers_listeners_then_size_and_replaces_with_hysteresis() {
        let mut h = history(2);
        tick(
            &mut h,
            0,
            &table(&[(1000, 10, false), (1001, 9, false), (1002, 8, false)]),
        );
        assert_eq!(tracked(&h), vec![1000, 1001]);
        // 1002 grows past twice the weakest: it replaces it. A listener beats any non-listener.
        tick(
            &mut h,
            1000,
            &table(&[(1000, 10, false), (1001, 9, false), (1002, 20, false)]),
        );
        assert_eq!(tracked(&h), vec![1000, 1002]);
        tick(
            &mut h,
            2000,
            &table(&[(1000, 10, false), (1002, 20, false), (22, 0, true)]),
        );
        assert_eq!(tracked(&h), vec![22, 1002]);
        // Not clearly stronger: no churn.
        tick(
            &mut h,
            3000,
            &table(&[(1002, 20, false), (22, 0, true), (1000, 21, false)]),
        );
        assert_eq!(tracked(&h), vec![22, 1002]);
    }

    #[test]
    fn idle_ports_are_evicted_after_the_window() {
        let mut h = history(8);
        tick(&mut h, 0, &table(&[(8080, 5, false)]));
        for s in 1..=60 {
            tick(&mut h, s * 1000, &table(&[]));
        }
        assert_eq!(tracked(&h), vec![8080], "idle for exactly the window: kept");
        let p = h.port(PortKey::new(Proto::Tcp, 8080)).unwrap();
        assert_eq!(p.series(TcpState::Established).next_back(), Some(0));
        assert_eq!(p.delta(None, 60), -5);
        tick(&mut h, 61_000, &table(&[]));
        assert!(tracked(&h).is_empty());
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
            h.record_listeners([(k(1), queue), (k(2), 0)].into_iter());
        }
        assert_eq!(
            h.listener_queue(&k(1)).unwrap().iter().collect::<Vec<_>>(),
            vec![1, 7]
        );
        h.begin_tick(at(3000));
        h.record_listeners([(k(2), 3)].into_iter());
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
        h.record_listeners(keys.iter().map(|k| (*k, 0)));
        assert_eq!(
            keys.iter()
                .filter(|k| h.listener_queue(k).is_some())
                .count(),
            4
        );
    }
}

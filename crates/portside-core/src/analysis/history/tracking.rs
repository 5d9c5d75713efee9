//! Which ports get a history ring, and the per-port series themselves.

use std::time::SystemTime;

use crate::analysis::history::{History, Ring};
use crate::analysis::ports::{PortKey, PortRow, PortTable};
use crate::model::TcpState;

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

impl History {
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
    use crate::analysis::history::tests::{history, table, tick, tracked};
    use crate::model::Proto;

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
}

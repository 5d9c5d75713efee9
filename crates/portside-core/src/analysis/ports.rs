//! Dense per-port tables for one tick: which ports listen, and socket counts per
//! (proto, local port, state). Indexed by port number, so a tick at 100k sockets does one
//! array lookup per socket instead of a hash lookup, and allocates nothing once warm.

use std::cmp::Reverse;
use std::hash::Hash;

use crate::model::{Proto, TcpState};

/// A protocol and a local port: the key of a port group and of per-port history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub proto: Proto,
    pub port: u16,
}

impl PortKey {
    pub fn new(proto: Proto, port: u16) -> PortKey {
        PortKey { proto, port }
    }
}

/// Dense index of a protocol into per-protocol arrays.
pub(crate) fn proto_index(proto: Proto) -> usize {
    match proto {
        Proto::Tcp => 0,
        Proto::Udp => 1,
    }
}

/// A set of ports as a 65,536-bit bitset (8 KiB): O(1) membership, cleared in microseconds.
#[derive(Clone)]
pub struct PortSet {
    bits: Box<[u64; 1024]>,
}

impl Default for PortSet {
    fn default() -> Self {
        PortSet {
            bits: Box::new([0; 1024]),
        }
    }
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl PortSet {
    pub fn insert(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] |= 1 << (port & 63);
    }

    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }

    pub fn clear(&mut self) {
        self.bits.fill(0);
    }

    /// The ports in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(|&p| self.contains(p))
    }
}

/// The listening ports of a snapshot, per protocol (TCP LISTEN, unconnected UDP).
#[derive(Debug, Clone, Default)]
pub struct Listening {
    sets: [PortSet; 2],
}

impl Listening {
    pub fn clear(&mut self) {
        for set in &mut self.sets {
            set.clear();
        }
    }

    pub fn insert(&mut self, proto: Proto, port: u16) {
        self.sets[proto_index(proto)].insert(port);
    }

    /// Whether some socket of `proto` listens on `port`.
    pub fn contains(&self, proto: Proto, port: u16) -> bool {
        self.sets[proto_index(proto)].contains(port)
    }

    pub fn of(&self, proto: Proto) -> &PortSet {
        &self.sets[proto_index(proto)]
    }
}

/// Counts of one (proto, local port) in one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRow {
    pub key: PortKey,
    /// Sockets per state, indexed by [`TcpState::index`].
    pub counts: [u32; TcpState::COUNT],
    /// Connections on this port that appeared since the previous tick (see `connections` and `insight::churn`).
    pub new: u32,
    /// Connections on this port that closed since the previous tick (see `connections` and `insight::churn`).
    pub closed: u32,
    /// Open connections (full sockets with a remote end, TIME_WAIT excluded): what the
    /// exact churn compares between ticks.
    pub live: u32,
    /// Some socket listens on this port.
    pub listening: bool,
}

impl PortRow {
    fn new(key: PortKey) -> PortRow {
        PortRow {
            key,
            counts: [0; TcpState::COUNT],
            new: 0,
            closed: 0,
            live: 0,
            listening: false,
        }
    }

    pub fn count(&self, state: TcpState) -> u32 {
        self.counts[state.index()]
    }

    /// All sockets on the port, every state.
    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }
}

const NO_SLOT: u32 = u32::MAX;

/// Per-port counts of one tick: a 65,536-entry slot array per protocol (512 KiB in all)
/// pointing into a compact row list, so memory grows with the ports in use, not with 65,536.
#[derive(Clone)]
pub struct PortTable {
    slots: [Box<[u32]>; 2],
    rows: Vec<PortRow>,
}

impl Default for PortTable {
    fn default() -> Self {
        PortTable {
            slots: [
                vec![NO_SLOT; 1 << 16].into_boxed_slice(),
                vec![NO_SLOT; 1 << 16].into_boxed_slice(),
            ],
            rows: Vec::new(),
        }
    }
}

impl std::fmt::Debug for PortTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.rows).finish()
    }
}

impl PortTable {
    /// Forget every row; touches only the slots in use, keeps the row capacity.
    pub fn clear(&mut self) {
        for row in &self.rows {
            self.slots[proto_index(row.key.proto)][usize::from(row.key.port)] = NO_SLOT;
        }
        self.rows.clear();
    }

    /// The row of `key`, created empty if absent.
    pub fn row_mut(&mut self, key: PortKey) -> &mut PortRow {
        let slot = &mut self.slots[proto_index(key.proto)][usize::from(key.port)];
        if *slot == NO_SLOT {
            *slot = self.rows.len() as u32;
            self.rows.push(PortRow::new(key));
        }
        &mut self.rows[*slot as usize]
    }

    pub fn get(&self, key: PortKey) -> Option<&PortRow> {
        let slot = self.slots[proto_index(key.proto)][usize::from(key.port)];
        self.rows.get(slot as usize)
    }

    /// Every port with sockets or events this tick, in first-seen order.
    pub fn rows(&self) -> &[PortRow] {
        &self.rows
    }

    pub(crate) fn rows_mut(&mut self) -> &mut [PortRow] {
        &mut self.rows
    }

    /// Heap bytes held (for the memory budget).
    pub fn heap_bytes(&self) -> usize {
        2 * (1 << 16) * size_of::<u32>() + self.rows.capacity() * size_of::<PortRow>()
    }
}

/// The `n` largest counts, largest first, ties by key ascending so output is deterministic.
pub(crate) fn top_counts<K: Ord + Copy>(
    items: impl Iterator<Item = (K, u32)>,
    n: usize,
) -> Vec<(K, u32)> {
    let mut all: Vec<(K, u32)> = items.collect();
    let order = |a: &(K, u32), b: &(K, u32)| Reverse(a.1).cmp(&Reverse(b.1)).then(a.0.cmp(&b.0));
    if all.len() > n && n > 0 {
        all.select_nth_unstable_by(n - 1, order);
        all.truncate(n);
    } else if n == 0 {
        all.clear();
    }
    all.sort_unstable_by(order);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_set_membership_at_the_edges() {
        let mut set = PortSet::default();
        for p in [0, 63, 64, 65535] {
            set.insert(p);
        }
        assert!(set.contains(0) && set.contains(63) && set.contains(64) && set.contains(65535));
        assert!(!set.contains(1) && !set.contains(65534));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 63, 64, 65535]);
        set.clear();
        assert_eq!(set.iter().count(), 0);
    }

    #[test]
    fn port_table_rows_and_clear() {
        let mut t = PortTable::default();
        t.row_mut(PortKey::new(Proto::Tcp, 443)).counts[TcpState::TimeWait.index()] += 2;
        t.row_mut(PortKey::new(Proto::Udp, 443)).counts[TcpState::Close.index()] += 1;
        t.row_mut(PortKey::new(Proto::Tcp, 443)).counts[TcpState::Established.index()] += 1;
        assert_eq!(t.rows().len(), 2);
        let tcp = t.get(PortKey::new(Proto::Tcp, 443)).unwrap();
        assert_eq!((tcp.count(TcpState::TimeWait), tcp.total()), (2, 3));
        assert_eq!(t.get(PortKey::new(Proto::Udp, 443)).unwrap().total(), 1);
        assert!(t.get(PortKey::new(Proto::Tcp, 80)).is_none());
        t.clear();
        assert!(t.rows().is_empty());
        assert!(t.get(PortKey::new(Proto::Tcp, 443)).is_none());
        assert_eq!(t.row_mut(PortKey::new(Proto::Tcp, 80)).total(), 0);
    }

    #[test]
    fn top_counts_orders_and_truncates() {
        let items = [(5u16, 1), (1, 7), (3, 7), (2, 9), (4, 0)];
        assert_eq!(
            top_counts(items.into_iter(), 3),
            vec![(2, 9), (1, 7), (3, 7)]
        );
        assert_eq!(top_counts(items.into_iter(), 10).len(), 5);
        assert!(top_counts(items.into_iter(), 0).is_empty());
    }
}

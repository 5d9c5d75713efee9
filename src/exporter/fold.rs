//! Bounded cardinality: the `max_ports` busiest groups keep their own series, the rest are
//! summed under `port="other"` per protocol, and the number folded is exported.
//!
//! Busiest means most sockets, ties broken by protocol then port, so the choice is stable
//! from tick to tick while the load is. A port near the cut may move between its own series
//! and `other`; sums over `port` stay exact either way.

use std::net::IpAddr;

use crate::model::{Proto, TcpState};

/// A group's port label: its own port, or everything folded for that protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    Port(Proto, u16),
    Other(Proto),
}

impl GroupKey {
    pub fn proto(self) -> Proto {
        match self {
            GroupKey::Port(p, _) | GroupKey::Other(p) => p,
        }
    }
}

/// Sockets per state of one port group (inbound: local port; outbound: remote port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub key: GroupKey,
    /// Indexed by [`TcpState::index`].
    pub counts: [u32; TcpState::COUNT],
}

impl Group {
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }
}

/// TCP listeners on one (address, port); `None` for both in the folded `other` group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerGroup {
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    /// Connections waiting in the accept queues now.
    pub queue: u32,
    /// The accept queues' limits (the backlogs the listeners asked for, capped by somaxconn).
    pub limit: u32,
}

/// Groups after folding: the kept ones first (busiest first), then the `other` groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded<T> {
    pub groups: Vec<T>,
    /// How many groups were summed into `other`.
    pub folded: usize,
}

impl Folded<Group> {
    /// Whether `key` kept its own series.
    pub fn has_own_series(&self, key: GroupKey) -> bool {
        matches!(key, GroupKey::Port(..)) && self.groups.iter().any(|g| g.key == key)
    }
}

/// Keep the `max` busiest groups; sum the rest per protocol under [`GroupKey::Other`].
pub fn fold_groups(mut groups: Vec<Group>, max: usize) -> Folded<Group> {
    groups.sort_unstable_by(|a, b| b.total().cmp(&a.total()).then(a.key.cmp(&b.key)));
    if groups.len() <= max {
        return Folded { groups, folded: 0 };
    }
    let rest = groups.split_off(max);
    let folded = rest.len();
    let mut other: [Option<Group>; 2] = [None, None];
    for g in rest {
        let proto = g.key.proto();
        let slot = other[proto_slot(proto)].get_or_insert(Group {
            key: GroupKey::Other(proto),
            counts: [0; TcpState::COUNT],
        });
        for (sum, c) in slot.counts.iter_mut().zip(g.counts) {
            *sum = sum.saturating_add(c);
        }
    }
    groups.extend(other.into_iter().flatten());
    Folded { groups, folded }
}

/// Keep up to `max` listeners, those of the inbound ports with their own series first, in
/// the order of those ports; sum the rest into one `other` listener group.
pub fn fold_listeners(
    mut listeners: Vec<ListenerGroup>,
    inbound: &Folded<Group>,
    max: usize,
) -> Folded<ListenerGroup> {
    let rank = |l: &ListenerGroup| {
        l.port
            .and_then(|p| {
                inbound
                    .groups
                    .iter()
                    .position(|g| g.key == GroupKey::Port(Proto::Tcp, p))
            })
            .unwrap_or(usize::MAX)
    };
    listeners.sort_unstable_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(a.port.cmp(&b.port))
            .then(a.address.cmp(&b.address))
    });
    let cut = listeners
        .iter()
        .take(max)
        .take_while(|l| rank(l) != usize::MAX)
        .count();
    let rest = listeners.split_off(cut);
    let folded = rest.len();
    if folded > 0 {
        let mut other = ListenerGroup {
            address: None,
            port: None,
            queue: 0,
            limit: 0,
        };
        for l in rest {
            other.queue = other.queue.saturating_add(l.queue);
            other.limit = other.limit.saturating_add(l.limit);
        }
        listeners.push(other);
    }
    Folded {
        groups: listeners,
        folded,
    }
}

fn proto_slot(proto: Proto) -> usize {
    match proto {
        Proto::Tcp => 0,
        Proto::Udp => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(proto: Proto, port: u16, listen: u32, est: u32) -> Group {
        let mut counts = [0; TcpState::COUNT];
        counts[TcpState::Listen.index()] = listen;
        counts[TcpState::Established.index()] = est;
        Group {
            key: GroupKey::Port(proto, port),
            counts,
        }
    }

    #[test]
    fn keeps_the_busiest_and_sums_the_rest_per_protocol() {
        let groups = vec![
            group(Proto::Tcp, 80, 1, 5),
            group(Proto::Tcp, 443, 1, 50),
            group(Proto::Tcp, 22, 1, 1),
            group(Proto::Udp, 53, 0, 3),
            group(Proto::Tcp, 8080, 1, 0),
        ];
        let f = fold_groups(groups, 2);
        let keys: Vec<GroupKey> = f.groups.iter().map(|g| g.key).collect();
        assert_eq!(
            keys,
            vec![
                GroupKey::Port(Proto::Tcp, 443),
                GroupKey::Port(Proto::Tcp, 80),
                GroupKey::Other(Proto::Tcp),
                GroupKey::Other(Proto::Udp),
            ]
        );
        assert_eq!(f.folded, 3);
        let tcp_other = f.groups[2];
        assert_eq!(tcp_other.counts[TcpState::Listen.index()], 2);
        assert_eq!(tcp_other.counts[TcpState::Established.index()], 1);
        assert_eq!(f.groups[3].counts[TcpState::Established.index()], 3);
        assert!(f.has_own_series(GroupKey::Port(Proto::Tcp, 80)));
        assert!(!f.has_own_series(GroupKey::Port(Proto::Tcp, 22)));
    }

    #[test]
    fn nothing_folded_under_the_limit_and_ties_break_by_port() {
        let f = fold_groups(
            vec![group(Proto::Tcp, 9000, 1, 0), group(Proto::Tcp, 22, 1, 0)],
            5,
        );
        assert_eq!(f.folded, 0);
        assert_eq!(f.groups[0].key, GroupKey::Port(Proto::Tcp, 22));
    }

    #[test]
    fn listeners_follow_their_ports_and_the_rest_fold() {
        let inbound = fold_groups(
            vec![group(Proto::Tcp, 80, 1, 5), group(Proto::Tcp, 443, 1, 50)],
            1,
        );
        let l = |port: u16, ip: &str, queue: u32| ListenerGroup {
            address: Some(ip.parse().unwrap()),
            port: Some(port),
            queue,
            limit: 128,
        };
        let f = fold_listeners(
            vec![l(80, "0.0.0.0", 1), l(443, "::", 2), l(443, "0.0.0.0", 3)],
            &inbound,
            10,
        );
        assert_eq!(f.folded, 1, "port 80 has no series of its own");
        assert_eq!(f.groups.len(), 3);
        assert_eq!(f.groups[0].address, Some("0.0.0.0".parse().unwrap()));
        assert_eq!(f.groups[1].address, Some("::".parse().unwrap()));
        assert_eq!(
            (f.groups[2].port, f.groups[2].queue, f.groups[2].limit),
            (None, 1, 128)
        );
    }
}

//! The grouper as it was before outbound groups (main before the `groups` branch), kept
//! here only as the baseline of this benchmark.
#![allow(
    dead_code,
    reason = "a copy of the old grouper: only what the benchmark calls is used"
)]

use std::net::IpAddr;

use foldhash::{HashMap, HashSet};

use portside_core::analysis::filter::Filter;
use portside_core::model::{Family, Owners, Proto, Snapshot, Socket, TcpState};
use portside_core::source::services;

/// Every socket of one protocol on one local port, counted per state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    pub proto: Proto,
    pub port: u16,
    /// Sockets per state, indexed by [`TcpState::index`].
    pub counts: [u32; TcpState::COUNT],
    pub total: u32,
    /// Some socket of the group listens (TCP LISTEN or unconnected UDP).
    pub listening: bool,
    /// Indexes into `snapshot.processes` of every process owning a socket of the group
    /// (known or inferred), sorted, without duplicates.
    pub owners: Vec<u32>,
    /// Families seen in the group: `[ipv4, ipv6]`.
    pub families: [bool; 2],
    /// Local addresses the listeners are bound to, sorted, without duplicates.
    pub listen_addrs: Vec<IpAddr>,
    /// Sum of the listeners' current accept queues (Recv-Q of LISTEN sockets).
    pub accept_queue: u32,
    /// Sum of the listeners' configured backlogs (Send-Q of LISTEN sockets).
    pub backlog: u32,
    /// Service name of the port for this protocol, if known; `None` for a port in the
    /// ephemeral range that nothing listens on (a client's side of connections).
    pub service: Option<&'static str>,
}

impl PortGroup {
    fn new(proto: Proto, port: u16) -> PortGroup {
        PortGroup {
            proto,
            port,
            counts: [0; TcpState::COUNT],
            total: 0,
            listening: false,
            owners: Vec::new(),
            families: [false; 2],
            listen_addrs: Vec::new(),
            accept_queue: 0,
            backlog: 0,
            service: None,
        }
    }

    /// Sockets of the group in `state`.
    pub fn count(&self, state: TcpState) -> u32 {
        self.counts[state.index()]
    }

    /// Whether the group holds the given family.
    pub fn has_family(&self, family: Family) -> bool {
        self.families[family_index(family)]
    }
}

fn family_index(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// Reusable grouping state: keeps its hash tables between calls so a live view regrouping
/// 100k sockets every second does not reallocate them.
#[derive(Debug, Default)]
pub struct Grouper {
    /// Group of each (protocol, port). foldhash: `SipHash` would double the cost of a
    /// 100k-socket regroup.
    index: HashMap<(Proto, u16), usize>,
    /// (group, owner set) pairs already merged, so each owner set is expanded once per group.
    sets_seen: HashSet<(usize, u32)>,
    /// Per group: the owner set merged last (fast path: sockets of a port mostly share one).
    last_set: Vec<Option<u32>>,
}

impl Grouper {
    pub fn new() -> Grouper {
        Grouper::default()
    }

    /// Groups the sockets of `snapshot` that match `filter` into `out` (cleared first), in
    /// order of first appearance.
    pub fn group_into(&mut self, snapshot: &Snapshot, filter: &Filter, out: &mut Vec<PortGroup>) {
        let match_all = filter.is_empty();
        let sockets = snapshot
            .sockets
            .iter()
            .filter(|s| match_all || filter.matches(s, snapshot));
        self.group_sockets(snapshot, sockets, out);
    }

    /// Groups the given sockets of `snapshot` into `out` (cleared first), in order of first
    /// appearance. One hash lookup per socket, and no allocation per socket: the owner sets
    /// of a group are expanded once each, not once per socket.
    pub fn group_sockets<'a>(
        &mut self,
        snapshot: &Snapshot,
        sockets: impl Iterator<Item = &'a Socket>,
        out: &mut Vec<PortGroup>,
    ) {
        out.clear();
        self.index.clear();
        self.sets_seen.clear();
        self.last_set.clear();
        for socket in sockets {
            let key = (socket.proto, socket.local.port());
            let at = *self.index.entry(key).or_insert_with(|| {
                out.push(PortGroup::new(key.0, key.1));
                self.last_set.push(None);
                out.len() - 1
            });
            let group = &mut out[at];
            add_socket(group, socket);
            if let Owners::Known(set) | Owners::Inferred(set) = socket.owners
                && self.last_set[at] != Some(set)
            {
                self.last_set[at] = Some(set);
                if self.sets_seen.insert((at, set))
                    && let Some(pids) = snapshot.owner_sets.get(set as usize)
                {
                    group.owners.extend_from_slice(pids);
                }
            }
        }
        for group in out.iter_mut() {
            // A client's ephemeral port has no service; a listener's port keeps its name.
            if group.listening || !snapshot.is_ephemeral(group.port) {
                group.service = services::service_name(group.port, group.proto);
            }
            group.owners.sort_unstable();
            group.owners.dedup();
            group.listen_addrs.sort_unstable();
            group.listen_addrs.dedup();
        }
    }
}

fn add_socket(group: &mut PortGroup, socket: &Socket) {
    group.counts[socket.state.index()] += 1;
    group.total += 1;
    group.families[family_index(socket.family)] = true;
    if socket.is_listening() {
        group.listening = true;
        let ip = socket.local.ip();
        if !group.listen_addrs.contains(&ip) {
            group.listen_addrs.push(ip);
        }
        if socket.proto == Proto::Tcp {
            group.accept_queue = group.accept_queue.saturating_add(socket.recv_q);
            group.backlog = group.backlog.saturating_add(socket.send_q);
        }
    }
}

/// One group per (protocol, local port) of the sockets matching `filter`, listening groups
/// first, then by protocol and port.
pub fn group(snapshot: &Snapshot, filter: &Filter) -> Vec<PortGroup> {
    let mut out = Vec::new();
    Grouper::new().group_into(snapshot, filter, &mut out);
    sort_default(&mut out);
    out
}

/// The default order: listening groups first, then by protocol and port.
pub fn sort_default(groups: &mut [PortGroup]) {
    groups.sort_unstable_by_key(|g| (!g.listening, g.proto, g.port));
}

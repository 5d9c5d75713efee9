//! Grouping of sockets by service: inbound per (protocol, listening port), outbound per
//! (protocol, remote service port, owning program), with a count per state.
//!
//! A client socket's local port is an ephemeral number the kernel picked; the service is
//! at the other end, so client sockets fold into one outbound row per remote port and
//! program (`→ 5432 postgresql  api-server (3 pids)`), with the number of distinct remote
//! addresses and ephemeral ports they use. [`Grouping::LocalPorts`] keeps the raw view, one
//! row per local port.
//!
//! IPv4 and IPv6 sockets on the same port merge into one group: a service usually listens on
//! both, and users ask "who is on port 443", not "who is on port 443 over IPv6". The families
//! seen are kept in [`PortGroup::families`].

mod key;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use foldhash::{HashMap, HashSet};

pub use key::{Classifier, Direction, GroupKey, Grouping, OwnerKey};

use crate::analysis::filter::Filter;
use crate::analysis::ports::top_counts;
use crate::analysis::reach::Reach;
use crate::model::{Family, Owners, Snapshot, Socket, TcpState, Unattributed};
use crate::source::services;

/// Remote addresses an outbound group names (the rest are counted).
pub const TOP_REMOTE_ADDRS: usize = 3;

/// How the sockets of a group are attributed, counted per socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attribution {
    pub known: u32,
    pub inferred: u32,
    /// Held by a process we may not look at (or could not find): its user is known.
    pub hidden: u32,
    /// No process by nature (TIME_WAIT, SYN_RECV: inode 0), none inferred.
    pub none: u32,
    /// The uid of the first hidden socket.
    pub hidden_uid: Option<u32>,
}

impl Attribution {
    fn add(&mut self, socket: &Socket) {
        match socket.owners {
            Owners::Known(_) => self.known += 1,
            Owners::Inferred(_) => self.inferred += 1,
            Owners::None(Unattributed::NoInode) => self.none += 1,
            Owners::None(Unattributed::PermissionDenied | Unattributed::NotFound) => {
                self.hidden += 1;
                self.hidden_uid.get_or_insert(socket.uid);
            }
        }
    }
}

/// One group: an inbound port, an outbound service of one program, or a raw local port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    pub key: GroupKey,
    /// Sockets per state, indexed by [`TcpState::index`].
    pub counts: [u32; TcpState::COUNT],
    pub total: u32,
    /// Some socket of the group listens (TCP LISTEN or unconnected UDP).
    pub listening: bool,
    /// Indexes into `snapshot.processes` of every process owning a socket of the group
    /// (known or inferred), sorted, without duplicates.
    pub owners: Vec<u32>,
    pub attribution: Attribution,
    /// Families seen in the group: `[ipv4, ipv6]`.
    pub families: [bool; 2],
    /// Local addresses the listeners are bound to, sorted, without duplicates.
    pub listen_addrs: Vec<IpAddr>,
    /// The widest reach of the listeners' bind addresses; `None` without a listener.
    pub reach: Option<Reach>,
    /// The accept queue of the port's fullest listener (Recv-Q of its LISTEN socket).
    /// Each listener has a queue of its own: adding backlogs would promise room that no
    /// single queue has (two listeners of 511 are not one of 1022).
    pub accept_queue: u32,
    /// That listener's configured backlog (Send-Q of its LISTEN socket).
    pub backlog: u32,
    /// Service name of the group's port for this protocol, if known; `None` for a raw
    /// group's client port in the ephemeral range.
    pub service: Option<&'static str>,
    /// Outbound: distinct remote addresses.
    pub remote_addrs: u32,
    /// Outbound: the remote addresses with the most sockets, most first.
    pub top_remote_addrs: Vec<(IpAddr, u32)>,
    /// Outbound: distinct local (ephemeral) ports the group's sockets use.
    pub local_ports: u32,
}

impl PortGroup {
    fn new(key: GroupKey) -> PortGroup {
        PortGroup {
            key,
            counts: [0; TcpState::COUNT],
            total: 0,
            listening: false,
            owners: Vec::new(),
            attribution: Attribution::default(),
            families: [false; 2],
            listen_addrs: Vec::new(),
            reach: None,
            accept_queue: 0,
            backlog: 0,
            service: None,
            remote_addrs: 0,
            top_remote_addrs: Vec::new(),
            local_ports: 0,
        }
    }

    pub fn direction(&self) -> Direction {
        self.key.direction
    }

    pub fn proto(&self) -> crate::model::Proto {
        self.key.proto
    }

    /// The port the row is about: local for inbound and raw rows, remote for outbound.
    pub fn port(&self) -> u16 {
        self.key.port
    }

    pub fn is_outbound(&self) -> bool {
        self.key.direction == Direction::Outbound
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

/// An address as one `u128` (IPv4 mapped), a cheap hash key.
fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

/// Reusable grouping state: keeps its hash tables between calls so a live view regrouping
/// 100k sockets every second does not reallocate them.
#[derive(Debug, Default)]
pub struct Grouper {
    classifier: Classifier,
    /// Group of each key. foldhash: `SipHash` would double the cost of a 100k regroup.
    index: HashMap<GroupKey, usize>,
    /// (group, owner set) pairs already merged, so each owner set is expanded once per group.
    sets_seen: HashSet<(usize, u32)>,
    /// Per group: the owner set merged last (fast path: sockets of a port mostly share one).
    last_set: Vec<Option<u32>>,
    /// Outbound: sockets per (group, remote address).
    remote: HashMap<(u32, u128), u32>,
    /// Outbound: (group, local port) pairs seen.
    local_ports: HashSet<u64>,
}

impl Grouper {
    pub fn new() -> Grouper {
        Grouper::default()
    }

    /// The classifier of the last grouped snapshot (for drill-downs of its groups).
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Groups the sockets of `snapshot` that match `filter` into `out` (cleared first), in
    /// order of first appearance.
    pub fn group_into(
        &mut self,
        snapshot: &Snapshot,
        filter: &Filter,
        grouping: Grouping,
        out: &mut Vec<PortGroup>,
    ) {
        let match_all = filter.is_empty();
        let sockets = snapshot
            .sockets
            .iter()
            .filter(|s| match_all || filter.matches(s, snapshot));
        self.group_sockets(snapshot, sockets, grouping, out);
    }

    /// Groups the given sockets of `snapshot` into `out` (cleared first), in order of first
    /// appearance. Per socket: one bitset probe to tell its side, one hash lookup for its
    /// group, and for client sockets two more (remote address, local port); no allocation
    /// per socket: a group's owner sets are expanded once each, not once per socket.
    pub fn group_sockets<'a>(
        &mut self,
        snapshot: &Snapshot,
        sockets: impl Iterator<Item = &'a Socket>,
        grouping: Grouping,
        out: &mut Vec<PortGroup>,
    ) {
        out.clear();
        self.index.clear();
        self.sets_seen.clear();
        self.last_set.clear();
        self.remote.clear();
        self.local_ports.clear();
        self.classifier.prepare(snapshot, grouping);
        for socket in sockets {
            let key = self.classifier.key(socket);
            let at = *self.index.entry(key).or_insert_with(|| {
                out.push(PortGroup::new(key));
                self.last_set.push(None);
                out.len() - 1
            });
            let group = &mut out[at];
            add_socket(group, socket);
            if key.direction == Direction::Outbound {
                *self
                    .remote
                    .entry((at as u32, ip_bits(socket.remote.ip())))
                    .or_default() += 1;
                self.local_ports
                    .insert((at as u64) << 16 | u64::from(socket.local.port()));
            }
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
        self.finish(snapshot, out);
    }

    /// Names, reach, remote address tops and owner lists, once per group.
    fn finish(&mut self, snapshot: &Snapshot, out: &mut [PortGroup]) {
        let mut per_group: Vec<Vec<(u128, u32)>> = vec![Vec::new(); out.len()];
        for (&(g, ip), &n) in &self.remote {
            per_group[g as usize].push((ip, n));
        }
        for &packed in &self.local_ports {
            out[(packed >> 16) as usize].local_ports += 1;
        }
        for (group, remotes) in out.iter_mut().zip(per_group) {
            let port = group.port();
            // A client's ephemeral port has no service; a listener's port keeps its name.
            if group.is_outbound() || group.listening || !snapshot.is_ephemeral(port) {
                group.service = services::service_name(port, group.proto());
            }
            group.owners.sort_unstable();
            group.owners.dedup();
            group.listen_addrs.sort_unstable();
            group.listen_addrs.dedup();
            group.reach = Reach::widest(group.listen_addrs.iter().copied());
            if group.is_outbound() {
                group.remote_addrs = remotes.len() as u32;
                group.top_remote_addrs = top_counts(remotes.into_iter(), TOP_REMOTE_ADDRS)
                    .into_iter()
                    .map(|(bits, n)| (unbits(bits), n))
                    .collect();
            }
        }
    }
}

/// The address of [`ip_bits`]: IPv4-mapped back to IPv4.
fn unbits(bits: u128) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from_bits(bits);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

fn add_socket(group: &mut PortGroup, socket: &Socket) {
    group.counts[socket.state.index()] += 1;
    group.total += 1;
    group.families[family_index(socket.family)] = true;
    group.attribution.add(socket);
    if socket.is_listening() {
        group.listening = true;
        let ip = socket.local.ip();
        if !group.listen_addrs.contains(&ip) {
            group.listen_addrs.push(ip);
        }
        // The fullest listener (by fill; at equal fill, the larger backlog) stands for the port.
        let new = u64::from(socket.recv_q) * u64::from(group.backlog.max(1));
        let old = u64::from(group.accept_queue) * u64::from(socket.send_q.max(1));
        if socket.proto == crate::model::Proto::Tcp
            && (new > old || new == old && socket.send_q > group.backlog)
        {
            group.accept_queue = socket.recv_q;
            group.backlog = socket.send_q;
        }
    }
}

/// The groups of the sockets matching `filter`, in the default order.
pub fn group(snapshot: &Snapshot, filter: &Filter, grouping: Grouping) -> Vec<PortGroup> {
    let mut out = Vec::new();
    Grouper::new().group_into(snapshot, filter, grouping, &mut out);
    sort_default(&mut out);
    out
}

/// The default order, busiest first: listening groups first, then by total sockets
/// descending, then inbound before outbound, by protocol, port and owner.
pub fn sort_default(groups: &mut [PortGroup]) {
    groups.sort_unstable_by_key(|g| (!g.listening, std::cmp::Reverse(g.total), g.key));
}

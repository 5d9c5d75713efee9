//! Grouping of sockets by (protocol, local port) with a count per TCP state.
//!
//! IPv4 and IPv6 sockets on the same port merge into one group: a service usually listens on
//! both, and users ask "who is on port 443", not "who is on port 443 over IPv6". The families
//! seen are kept in [`PortGroup::families`].

use std::net::IpAddr;

use foldhash::{HashMap, HashSet};

use crate::analysis::filter::Filter;
use crate::model::{Family, Owners, Proto, Snapshot, Socket, TcpState};
use crate::source::services;

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
    /// The accept queue of the port's fullest listener (Recv-Q of its LISTEN socket).
    /// Each listener has a queue of its own: adding backlogs would promise room that no
    /// single queue has (two listeners of 511 are not one of 1022).
    pub accept_queue: u32,
    /// That listener's configured backlog (Send-Q of its LISTEN socket).
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
        // The fullest listener (by fill; at equal fill, the larger backlog) stands for the port.
        let new = u64::from(socket.recv_q) * u64::from(group.backlog.max(1));
        let old = u64::from(group.accept_queue) * u64::from(socket.send_q.max(1));
        if socket.proto == Proto::Tcp && (new > old || new == old && socket.send_q > group.backlog)
        {
            group.accept_queue = socket.recv_q;
            group.backlog = socket.send_q;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Process, Unattributed};
    use std::sync::Arc;

    fn sock(proto: Proto, state: TcpState, local: &str, remote: &str, owners: Owners) -> Socket {
        Socket {
            inode: 1,
            ..Socket::for_test(proto, state, local, remote, owners)
        }
    }

    fn process(pid: u32, name: &str) -> Arc<Process> {
        Arc::new(Process {
            pid,
            start_time: 1,
            name: name.into(),
            cmdline: name.into(),
            uid: 0,
            user: "root".into(),
        })
    }

    fn snapshot() -> Snapshot {
        let mut s = Snapshot::empty();
        s.processes = vec![
            process(10, "nginx"),
            process(11, "nginx"),
            process(20, "curl"),
        ];
        s.owner_sets = vec![vec![0, 1].into(), vec![2].into(), vec![1].into()];
        let mut l4 = sock(
            Proto::Tcp,
            TcpState::Listen,
            "0.0.0.0:80",
            "0.0.0.0:0",
            Owners::Known(0),
        );
        l4.recv_q = 2;
        l4.send_q = 511;
        let mut l6 = sock(
            Proto::Tcp,
            TcpState::Listen,
            "[::]:80",
            "[::]:0",
            Owners::Known(2),
        );
        l6.send_q = 511;
        s.sockets = vec![
            l4,
            l6,
            sock(
                Proto::Tcp,
                TcpState::Established,
                "10.0.0.1:80",
                "10.0.0.9:5000",
                Owners::Known(0),
            ),
            sock(
                Proto::Tcp,
                TcpState::Established,
                "10.0.0.1:80",
                "10.0.0.9:5001",
                Owners::Known(0),
            ),
            sock(
                Proto::Tcp,
                TcpState::TimeWait,
                "10.0.0.1:80",
                "10.0.0.9:5002",
                Owners::Inferred(0),
            ),
            sock(
                Proto::Tcp,
                TcpState::Established,
                "10.0.0.9:5000",
                "10.0.0.1:80",
                Owners::Known(1),
            ),
            sock(
                Proto::Udp,
                TcpState::Close,
                "0.0.0.0:80",
                "0.0.0.0:0",
                Owners::None(Unattributed::NotFound),
            ),
            sock(
                Proto::Tcp,
                TcpState::TimeWait,
                "10.0.0.9:5003",
                "10.0.0.1:443",
                Owners::None(Unattributed::NoInode),
            ),
        ];
        s
    }

    #[test]
    fn groups_by_proto_and_port_merging_families() {
        let groups = group(&snapshot(), &Filter::default());
        let keys: Vec<_> = groups
            .iter()
            .map(|g| (g.proto, g.port, g.listening))
            .collect();
        assert_eq!(
            keys,
            vec![
                (Proto::Tcp, 80, true),
                (Proto::Udp, 80, true),
                (Proto::Tcp, 5000, false),
                (Proto::Tcp, 5003, false),
            ]
        );
        let web = &groups[0];
        assert_eq!(web.count(TcpState::Listen), 2);
        assert_eq!(web.count(TcpState::Established), 2);
        assert_eq!(web.count(TcpState::TimeWait), 1);
        assert_eq!(web.total, 5);
        assert_eq!(web.counts.iter().sum::<u32>(), web.total);
        assert!(web.has_family(Family::V4) && web.has_family(Family::V6));
        assert_eq!(web.owners, vec![0, 1]);
        // Two listeners of backlog 511, queues 2 and 0: the fuller one, never 2/1022.
        assert_eq!((web.accept_queue, web.backlog), (2, 511));
        let addrs: Vec<IpAddr> = vec!["0.0.0.0".parse().unwrap(), "::".parse().unwrap()];
        assert_eq!(web.listen_addrs, addrs);
    }

    #[test]
    fn unattributed_groups_have_no_owners_and_udp_has_no_backlog() {
        let groups = group(&snapshot(), &Filter::default());
        let udp = &groups[1];
        assert!(udp.owners.is_empty());
        assert_eq!((udp.accept_queue, udp.backlog), (0, 0));
        assert_eq!(udp.count(TcpState::Close), 1);
        assert!(!udp.has_family(Family::V6));
        assert!(groups[3].owners.is_empty());
        assert_eq!(groups[2].owners, vec![2]);
    }

    #[test]
    fn filter_applies_before_grouping() {
        let filter = Filter::parse("udp").unwrap();
        let groups = group(&snapshot(), &filter);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].proto, Proto::Udp);
    }

    #[test]
    fn client_ports_in_the_ephemeral_range_have_no_service() {
        let mut snap = snapshot();
        // 33434 has an IANA name (traceroute) but here it is a client's port.
        snap.sockets.push(sock(
            Proto::Udp,
            TcpState::Established,
            "10.0.0.9:33434",
            "10.0.0.1:53",
            Owners::Known(1),
        ));
        snap.sockets.push(sock(
            Proto::Udp,
            TcpState::Close,
            "0.0.0.0:33435",
            "0.0.0.0:0",
            Owners::Known(1),
        ));
        let groups = group(&snap, &Filter::default());
        let service = |port| groups.iter().find(|g| g.port == port).unwrap().service;
        assert_eq!(service(33434), None);
        assert_eq!(service(80), Some("http"));
        assert!(groups.iter().any(|g| g.port == 33435 && g.listening));
    }

    #[test]
    fn grouper_reuse_gives_same_result() {
        let snap = snapshot();
        let mut grouper = Grouper::new();
        let mut first = Vec::new();
        grouper.group_into(&snap, &Filter::default(), &mut first);
        let mut second = Vec::new();
        grouper.group_into(&snap, &Filter::default(), &mut second);
        assert_eq!(first, second);
        grouper.group_into(&Snapshot::empty(), &Filter::default(), &mut second);
        assert!(second.is_empty());
    }
}

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::model::{Process, Proto, Unattributed};

fn sock(proto: Proto, state: TcpState, local: &str, remote: &str, owners: Owners) -> Socket {
    Socket {
        inode: u64::from(owners != Owners::None(Unattributed::NoInode)),
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

fn tcp(state: TcpState, local: &str, remote: &str, owners: Owners) -> Socket {
    sock(Proto::Tcp, state, local, remote, owners)
}

/// nginx (pids 10, 11) on :80; curl and two api-server workers as clients of :80 and :5432.
fn snapshot() -> Snapshot {
    let mut s = Snapshot::empty();
    s.processes = vec![
        process(10, "nginx"),
        process(11, "nginx"),
        process(20, "curl"),
        process(30, "api-server"),
        process(31, "api-server"),
    ];
    s.owner_sets = vec![
        vec![0, 1].into(),
        vec![2].into(),
        vec![1].into(),
        vec![3].into(),
        vec![4].into(),
    ];
    let mut l4 = tcp(
        TcpState::Listen,
        "0.0.0.0:80",
        "0.0.0.0:0",
        Owners::Known(0),
    );
    l4.recv_q = 2;
    l4.send_q = 511;
    let mut l6 = tcp(TcpState::Listen, "[::1]:80", "[::]:0", Owners::Known(2));
    l6.send_q = 511;
    let est = TcpState::Established;
    let tw = TcpState::TimeWait;
    s.sockets = vec![
        l4,
        l6,
        tcp(est, "10.0.0.1:80", "10.0.0.9:50000", Owners::Known(0)),
        tcp(est, "10.0.0.1:80", "10.0.0.9:50001", Owners::Known(0)),
        tcp(tw, "10.0.0.1:80", "10.0.0.9:50002", Owners::Inferred(0)),
        // curl, a client of :80 (here, from the same host).
        tcp(est, "10.0.0.9:50000", "10.0.0.1:80", Owners::Known(1)),
        tcp(est, "10.0.0.9:50001", "10.0.0.1:80", Owners::Known(1)),
        // Client TIME_WAIT to :80 whose process was never seen.
        tcp(
            tw,
            "10.0.0.9:50002",
            "10.0.0.1:80",
            Owners::None(Unattributed::NoInode),
        ),
        // Two api-server workers to two postgres hosts.
        tcp(est, "10.0.0.1:40000", "10.0.0.5:5432", Owners::Known(3)),
        tcp(est, "10.0.0.1:40001", "10.0.0.5:5432", Owners::Known(4)),
        tcp(est, "10.0.0.1:40002", "10.0.0.6:5432", Owners::Known(3)),
        tcp(tw, "10.0.0.1:40003", "10.0.0.6:5432", Owners::Inferred(4)),
        // Hidden owner (another user's process, not root).
        Socket {
            uid: 1000,
            ..tcp(
                est,
                "10.0.0.1:40004",
                "10.0.0.7:443",
                Owners::None(Unattributed::PermissionDenied),
            )
        },
        sock(
            Proto::Udp,
            TcpState::Close,
            "0.0.0.0:53",
            "0.0.0.0:0",
            Owners::None(Unattributed::NotFound),
        ),
        // A connected UDP client of DNS.
        sock(
            Proto::Udp,
            est,
            "10.0.0.1:45000",
            "10.0.0.53:53",
            Owners::Known(1),
        ),
    ];
    s
}

fn find(groups: &[PortGroup], direction: Direction, proto: Proto, port: u16) -> Vec<&PortGroup> {
    groups
        .iter()
        .filter(|g| g.key.direction == direction && g.key.proto == proto && g.key.port == port)
        .collect()
}

#[test]
fn inbound_groups_per_listening_port_merge_families() {
    let groups = group(&snapshot(), &Filter::default(), Grouping::Services);
    let web = find(&groups, Direction::Inbound, Proto::Tcp, 80);
    assert_eq!(web.len(), 1);
    let web = web[0];
    assert_eq!(web.count(TcpState::Listen), 2);
    assert_eq!(web.count(TcpState::Established), 2);
    assert_eq!(web.count(TcpState::TimeWait), 1);
    assert_eq!(web.total, 5);
    assert!(web.has_family(Family::V4) && web.has_family(Family::V6));
    assert_eq!(web.owners, vec![0, 1]);
    // Two listeners of backlog 511, queues 2 and 0: the fuller one, never 2/1022.
    assert_eq!((web.accept_queue, web.backlog), (2, 511));
    let addrs: Vec<IpAddr> = vec!["0.0.0.0".parse().unwrap(), "::1".parse().unwrap()];
    assert_eq!(web.listen_addrs, addrs);
    assert_eq!(web.reach, Some(Reach::All));
    assert_eq!(web.service, Some("http"));
    assert_eq!(web.key.owner, OwnerKey::Any);
    assert_eq!(web.remote_addrs, 0);
}

#[test]
fn client_sockets_fold_into_outbound_groups_per_program() {
    let groups = group(&snapshot(), &Filter::default(), Grouping::Services);
    // No group for any client (ephemeral) local port.
    assert!(
        groups
            .iter()
            .all(|g| g.is_outbound() || !(40000..=50002).contains(&g.port())),
        "{groups:#?}"
    );
    let to_web = find(&groups, Direction::Outbound, Proto::Tcp, 80);
    assert_eq!(
        to_web.len(),
        2,
        "curl, and the TIME_WAIT of no known process"
    );
    let curl = to_web
        .iter()
        .find(|g| g.key.owner == OwnerKey::Program(2))
        .unwrap();
    assert_eq!((curl.count(TcpState::Established), curl.total), (2, 2));
    assert_eq!(curl.service, Some("http"));
    let unknown = to_web
        .iter()
        .find(|g| g.key.owner == OwnerKey::Unknown)
        .unwrap();
    assert_eq!(unknown.count(TcpState::TimeWait), 1);
    assert_eq!(unknown.attribution.none, 1);
    assert!(unknown.owners.is_empty());

    // Both api-server workers share one row, with the inferred TIME_WAIT.
    let pg = find(&groups, Direction::Outbound, Proto::Tcp, 5432);
    assert_eq!(pg.len(), 1);
    let pg = pg[0];
    assert_eq!(pg.key.owner, OwnerKey::Program(3));
    assert_eq!(pg.owners, vec![3, 4]);
    assert_eq!(
        (
            pg.count(TcpState::Established),
            pg.count(TcpState::TimeWait)
        ),
        (3, 1)
    );
    assert_eq!(pg.service, Some("postgresql"));
    assert_eq!(pg.remote_addrs, 2);
    assert_eq!(pg.local_ports, 4);
    let top: Vec<(IpAddr, u32)> = vec![
        ("10.0.0.5".parse().unwrap(), 2),
        ("10.0.0.6".parse().unwrap(), 2),
    ];
    assert_eq!(pg.top_remote_addrs, top);
    assert!(!pg.listening && pg.reach.is_none());

    let hidden = find(&groups, Direction::Outbound, Proto::Tcp, 443);
    assert_eq!(hidden[0].key.owner, OwnerKey::Hidden(1000));
    assert_eq!(hidden[0].attribution.hidden_uid, Some(1000));
}

#[test]
fn udp_unconnected_is_inbound_connected_follows_the_rule() {
    let groups = group(&snapshot(), &Filter::default(), Grouping::Services);
    let dns_in = find(&groups, Direction::Inbound, Proto::Udp, 53);
    assert_eq!(dns_in.len(), 1);
    assert!(dns_in[0].listening && dns_in[0].owners.is_empty());
    assert_eq!((dns_in[0].accept_queue, dns_in[0].backlog), (0, 0));
    let dns_out = find(&groups, Direction::Outbound, Proto::Udp, 53);
    assert_eq!(dns_out.len(), 1);
    assert_eq!(dns_out[0].count(TcpState::Established), 1);
    assert!(find(&groups, Direction::Inbound, Proto::Udp, 45000).is_empty());
}

#[test]
fn raw_grouping_keeps_one_row_per_local_port() {
    let groups = group(&snapshot(), &Filter::default(), Grouping::LocalPorts);
    assert!(groups.iter().all(|g| g.key.direction == Direction::Local));
    let client = find(&groups, Direction::Local, Proto::Tcp, 50000);
    assert_eq!(client.len(), 1);
    assert_eq!(
        client[0].service, None,
        "a client's ephemeral port has no service"
    );
    // 2 listeners' port, 13 distinct TCP local ports in all.
    assert_eq!(find(&groups, Direction::Local, Proto::Tcp, 80)[0].total, 5);
    let sockets: u32 = groups.iter().map(|g| g.total).sum();
    assert_eq!(sockets as usize, snapshot().sockets.len());
}

#[test]
fn default_order_is_listening_first_then_busiest() {
    let groups = group(&snapshot(), &Filter::default(), Grouping::Services);
    let listening = groups.iter().take_while(|g| g.listening).count();
    assert_eq!(listening, 2);
    assert!(groups[listening..].iter().all(|g| !g.listening));
    for pair in groups[..listening].windows(2) {
        assert!(pair[0].total >= pair[1].total);
    }
    for pair in groups[listening..].windows(2) {
        assert!(pair[0].total >= pair[1].total);
    }
    assert_eq!(groups[0].port(), 80);
    assert_eq!(
        groups[listening].port(),
        5432,
        "4 sockets: the busiest client row"
    );
}

#[test]
fn every_socket_is_in_exactly_one_group() {
    let snap = snapshot();
    for grouping in [Grouping::Services, Grouping::LocalPorts] {
        let groups = group(&snap, &Filter::default(), grouping);
        let total: u32 = groups.iter().map(|g| g.total).sum();
        assert_eq!(total as usize, snap.sockets.len());
        for g in &groups {
            assert_eq!(g.counts.iter().sum::<u32>(), g.total);
        }
    }
}

#[test]
fn filter_applies_before_grouping() {
    let filter = Filter::parse("udp").unwrap();
    let groups = group(&snapshot(), &filter, Grouping::Services);
    assert_eq!(groups.len(), 2);
    assert!(groups.iter().all(|g| g.proto() == Proto::Udp));
}

#[test]
fn client_ports_in_the_ephemeral_range_have_no_service_in_the_raw_view() {
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
    let groups = group(&snap, &Filter::default(), Grouping::LocalPorts);
    let service = |port| groups.iter().find(|g| g.port() == port).unwrap().service;
    assert_eq!(service(33434), None);
    assert_eq!(service(80), Some("http"));
    assert!(groups.iter().any(|g| g.port() == 33435 && g.listening));
}

#[test]
fn grouper_reuse_gives_same_result() {
    let snap = snapshot();
    let mut grouper = Grouper::new();
    let mut first = Vec::new();
    grouper.group_into(&snap, &Filter::default(), Grouping::Services, &mut first);
    let mut second = Vec::new();
    grouper.group_into(&snap, &Filter::default(), Grouping::Services, &mut second);
    assert_eq!(first, second);
    grouper.group_into(
        &Snapshot::empty(),
        &Filter::default(),
        Grouping::Services,
        &mut second,
    );
    assert!(second.is_empty());
}

#[test]
fn classifier_keys_match_the_groups() {
    let snap = snapshot();
    let mut grouper = Grouper::new();
    let mut groups = Vec::new();
    grouper.group_into(&snap, &Filter::default(), Grouping::Services, &mut groups);
    for g in &groups {
        let n = snap
            .sockets
            .iter()
            .filter(|s| grouper.classifier().key(s) == g.key)
            .count();
        assert_eq!(n as u32, g.total, "{:?}", g.key);
    }
}

//! Real sockets on loopback, checked against `ss` (and netstat2) on the same machine at
//! the same moment: same socket set, same owning pids.

#[path = "support/oracle.rs"]
mod oracle;

use std::collections::HashSet;
use std::net::SocketAddr;

use oracle::{BACKLOG, Key, Row, TestSockets, counts, missing, owned_by_me, portside, ss};

fn key(proto: &str, local: SocketAddr, remote: Option<SocketAddr>, state: &str) -> Key {
    let (rip, rport) = remote.map_or(("*".to_string(), 0), |r| (r.ip().to_string(), r.port()));
    (
        proto.to_string(),
        local.ip().to_string(),
        local.port(),
        rip,
        rport,
        state.to_string(),
    )
}

fn find<'a>(rows: &'a [Row], k: &Key) -> &'a Row {
    rows.iter()
        .find(|r| &r.key == k)
        .unwrap_or_else(|| panic!("portside does not report {k:?}"))
}

#[test]
fn reports_each_test_socket_with_state_queues_and_owner() {
    let t = TestSockets::open();
    let mine = |row: &Row| owned_by_me(&row.pids);
    let (_, rows) = portside(&[]);

    let l4 = find(&rows, &key("tcp", t.listener4_addr, None, "LISTEN"));
    assert_eq!(l4.send_q, BACKLOG as u64, "LISTEN Send-Q is the backlog");
    assert_eq!(l4.recv_q, 2, "LISTEN Recv-Q is the accept queue");
    assert!(mine(l4), "{l4:?}");
    // The two unaccepted connections have no file descriptor (inode 0, no owner for
    // `ss -p`); portside infers the listener's process for their server side.
    for q in &t.queued {
        let k = key(
            "tcp",
            t.listener4_addr,
            Some(q.local_addr().unwrap()),
            "ESTAB",
        );
        let row = find(&rows, &k);
        assert!(row.pids.is_empty(), "{k:?} has no fd");
        assert!(
            owned_by_me(&row.inferred),
            "{k:?} inferred from the listener: {row:?}"
        );
    }
    let l6 = find(
        &rows,
        &key("tcp", t.listener6.local_addr().unwrap(), None, "LISTEN"),
    );
    assert!(mine(l6), "{l6:?}");
    for (a, b) in [&t.est4, &t.est6] {
        for (s, peer) in [(a, b), (b, a)] {
            let k = key(
                "tcp",
                s.local_addr().unwrap(),
                Some(peer.local_addr().unwrap()),
                "ESTAB",
            );
            assert!(mine(find(&rows, &k)), "{k:?}");
        }
    }
    let tw = find(
        &rows,
        &key(
            "tcp",
            t.time_wait_client,
            Some(t.time_wait_server),
            "TIME-WAIT",
        ),
    );
    assert!(tw.pids.is_empty(), "TIME_WAIT has no owner");
    let cw = find(
        &rows,
        &key(
            "tcp",
            t.close_wait.local_addr().unwrap(),
            Some(t.close_wait.peer_addr().unwrap()),
            "CLOSE-WAIT",
        ),
    );
    assert!(mine(cw), "{cw:?}");
    for u in [&t.udp4, &t.udp6] {
        let row = find(&rows, &key("udp", u.local_addr().unwrap(), None, "UNCONN"));
        assert!(mine(row), "{row:?}");
    }
    let uc = find(
        &rows,
        &key(
            "udp",
            t.udp_connected.local_addr().unwrap(),
            Some(t.udp4.local_addr().unwrap()),
            "ESTAB",
        ),
    );
    assert!(mine(uc), "{uc:?}");
}

/// Compare portside with ss, tolerating sockets that other processes open or close in
/// between: a socket both ss runs saw must be in portside's list, and every socket of
/// portside must be in one of the ss runs. Retried a few times before failing.
fn compare_with_ss(ss_args: &str, extra: &[&str], check_pids: bool) {
    let t = TestSockets::open();
    let mut disagreement = String::new();
    for _attempt in 0..5 {
        let before = ss(ss_args);
        let (_, ours) = portside(extra);
        let after = ss(ss_args);
        let (seen_before, seen_after, reported) = (counts(&before), counts(&after), counts(&ours));
        let stable: std::collections::HashMap<_, _> = seen_before
            .iter()
            .filter_map(|(k, &n)| seen_after.get(k).map(|&m| (k.clone(), n.min(m))))
            .collect();
        let mut seen_any = seen_before.clone();
        for (k, &n) in &seen_after {
            let e = seen_any.entry(k.clone()).or_insert(0);
            *e = (*e).max(n);
        }
        let lost = missing(&stable, &reported);
        let extra_rows = missing(&reported, &seen_any);
        let mut pid_diffs = Vec::new();
        if check_pids {
            let stable_pids: HashSet<(Key, Vec<u32>)> = before
                .iter()
                .filter(|r| after.iter().any(|q| q.key == r.key && q.pids == r.pids))
                .map(|r| (r.key.clone(), r.pids.clone()))
                .collect();
            let reported_pids: HashSet<(Key, Vec<u32>)> = ours
                .iter()
                .map(|r| (r.key.clone(), r.pids.clone()))
                .collect();
            pid_diffs = stable_pids.difference(&reported_pids).cloned().collect();
        }
        if lost.is_empty() && extra_rows.is_empty() && pid_diffs.is_empty() {
            // The test's own sockets were part of the comparison.
            assert!(stable.contains_key(&key("tcp", t.listener4_addr, None, "LISTEN")));
            return;
        }
        disagreement = format!(
            "missing from portside: {lost:?}\nonly in portside: {extra_rows:?}\npid differences (ss's view): {pid_diffs:?}"
        );
    }
    panic!("portside and `ss {ss_args}` disagree after 5 tries:\n{disagreement}");
}

#[test]
fn socket_set_equals_ss() {
    compare_with_ss("-tanuH", &[], false);
}

#[test]
fn owners_equal_ss_p() {
    compare_with_ss("-tanupH", &[], true);
}

#[test]
fn proc_net_fallback_reports_the_same_set_as_ss() {
    compare_with_ss("-tanuH", &["--proc-net"], false);
}

#[test]
fn tcp_set_equals_netstat2() {
    use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo, get_sockets_info};
    let _t = TestSockets::open();
    let netstat2_tcp = || -> HashSet<(SocketAddr, SocketAddr, String)> {
        get_sockets_info(
            AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6,
            ProtocolFlags::TCP,
        )
        .expect("netstat2")
        .into_iter()
        .filter_map(|si| match si.protocol_socket_info {
            ProtocolSocketInfo::Tcp(t) => Some((
                SocketAddr::new(t.local_addr, t.local_port),
                SocketAddr::new(t.remote_addr, t.remote_port),
                format!("{:?}", t.state),
            )),
            ProtocolSocketInfo::Udp(_) => None,
        })
        .collect()
    };
    let mut disagreement = String::new();
    for _ in 0..5 {
        let before = netstat2_tcp();
        let (v, _) = portside(&["-t"]);
        let after = netstat2_tcp();
        let reported: HashSet<(SocketAddr, SocketAddr, String)> = v["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let addr = |a: &str, p: &str| {
                    SocketAddr::new(
                        s[a].as_str().unwrap().parse().unwrap(),
                        s[p].as_u64().unwrap() as u16,
                    )
                };
                (
                    addr("local_addr", "local_port"),
                    addr("remote_addr", "remote_port"),
                    netstat2_state(s["state"].as_str().unwrap()).to_string(),
                )
            })
            .collect();
        let stable: HashSet<_> = before.intersection(&after).cloned().collect();
        let seen_any: HashSet<_> = before.union(&after).cloned().collect();
        let lost: Vec<_> = stable.difference(&reported).collect();
        let extra: Vec<_> = reported.difference(&seen_any).collect();
        if lost.is_empty() && extra.is_empty() {
            return;
        }
        disagreement = format!("missing: {lost:?}\nextra: {extra:?}");
    }
    panic!("portside and netstat2 disagree:\n{disagreement}");
}

/// netstat2's `TcpState` Debug names for our kernel names.
fn netstat2_state(kernel: &str) -> &'static str {
    match kernel {
        "ESTABLISHED" => "Established",
        "SYN_SENT" => "SynSent",
        "SYN_RECV" => "SynReceived",
        "FIN_WAIT1" => "FinWait1",
        "FIN_WAIT2" => "FinWait2",
        "TIME_WAIT" => "TimeWait",
        "CLOSE" => "Closed",
        "CLOSE_WAIT" => "CloseWait",
        "LAST_ACK" => "LastAck",
        "LISTEN" => "Listen",
        "CLOSING" => "Closing",
        _ => "Unknown",
    }
}

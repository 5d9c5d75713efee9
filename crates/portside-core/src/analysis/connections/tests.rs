use std::sync::Arc;

use super::*;
use crate::analysis::testing::at;
use crate::model::{Coverage, Process};

const NO_INODE: Owners = Owners::None(Unattributed::NoInode);

fn process(pid: u32, name: &str) -> Arc<Process> {
    Arc::new(Process {
        pid,
        start_time: u64::from(pid) * 7,
        name: name.into(),
        cmdline: name.into(),
        uid: 0,
        user: "root".into(),
    })
}

fn sock(state: TcpState, local: &str, remote: &str, cookie: u64, owners: Owners) -> Socket {
    Socket {
        inode: u64::from(matches!(owners, Owners::Known(_))),
        cookie,
        ..Socket::for_test(Proto::Tcp, state, local, remote, owners)
    }
}

/// A snapshot at `ms` with `procs` (one owner set per process) and `sockets`.
fn snap(ms: u64, procs: Vec<Arc<Process>>, sockets: Vec<Socket>) -> Snapshot {
    let mut coverage = Coverage::default();
    for s in &sockets {
        coverage.add(s.owners);
    }
    Snapshot {
        taken_at: at(ms),
        owner_sets: (0..procs.len() as u32)
            .map(|i| vec![i].into_boxed_slice())
            .collect(),
        processes: procs,
        sockets,
        coverage,
        ..Snapshot::empty()
    }
}

fn owner_names(s: &Snapshot, i: usize) -> Vec<String> {
    s.owners_of(&s.sockets[i]).map(|p| p.name.clone()).collect()
}

/// (new, closed) over the sockets of the last update, plus the gone connections.
fn churn(c: &Connections, s: &Snapshot) -> (usize, usize) {
    let events: Vec<SocketEvents> = (0..s.sockets.len()).map(|i| c.events(i)).collect();
    (
        events.iter().filter(|e| e.new).count(),
        events.iter().filter(|e| e.closed).count() + c.gone().len(),
    )
}

const CLIENT: &str = "127.0.0.1:40000";
const SERVER: &str = "127.0.0.1:8080";

#[test]
fn a_reused_4_tuple_is_a_new_connection() {
    let mut c = Connections::new();
    let mut s0 = snap(
        0,
        vec![],
        vec![sock(TcpState::Established, CLIENT, SERVER, 11, NO_INODE)],
    );
    c.update(&mut s0);
    // The same 4-tuple a second later, with another cookie: the first connection closed
    // (gone) and a second one opened.
    let mut s1 = snap(
        1000,
        vec![],
        vec![sock(TcpState::Established, CLIENT, SERVER, 12, NO_INODE)],
    );
    c.update(&mut s1);
    assert_eq!(churn(&c, &s1), (1, 1));
    assert_eq!(c.gone()[0].local, CLIENT.parse().unwrap());
    assert_eq!(c.seen(0).unwrap().since, at(1000), "its age starts again");
    assert!(!c.seen(0).unwrap().at_start);
    // The same cookie again: nothing happened.
    let mut s2 = snap(
        2000,
        vec![],
        vec![sock(TcpState::Established, CLIENT, SERVER, 12, NO_INODE)],
    );
    c.update(&mut s2);
    assert_eq!(churn(&c, &s2), (0, 0));
    assert_eq!(c.seen(0).unwrap().since, at(1000));
}

#[test]
fn without_cookies_the_4_tuple_is_the_identity() {
    let mut c = Connections::new();
    let mut s0 = snap(
        0,
        vec![],
        vec![sock(TcpState::Established, CLIENT, SERVER, 0, NO_INODE)],
    );
    c.update(&mut s0);
    assert_eq!(
        c.seen(0).unwrap(),
        Seen {
            since: at(0),
            at_start: true
        }
    );
    let mut s1 = snap(
        1000,
        vec![],
        vec![
            sock(TcpState::TimeWait, CLIENT, SERVER, 0, NO_INODE),
            sock(TcpState::Established, CLIENT, "127.0.0.1:8081", 0, NO_INODE),
        ],
    );
    c.update(&mut s1);
    assert_eq!(
        c.seen(0).unwrap().since,
        at(0),
        "same 4-tuple: same connection"
    );
    assert!(c.events(0).closed && !c.events(0).new);
    assert!(c.events(1).new);
    assert_eq!(churn(&c, &s1), (1, 1));
}

#[test]
fn time_wait_keeps_the_cookie_and_its_owner_exactly() {
    let mut c = Connections::new();
    // A server on :8080 (process "server") accepted a connection that a worker holds;
    // the worker exits after the close. A listener guess would say "server".
    let mut s0 = snap(
        0,
        vec![process(10, "server"), process(20, "worker")],
        vec![
            sock(
                TcpState::Listen,
                "0.0.0.0:8080",
                "0.0.0.0:0",
                1,
                Owners::Known(0),
            ),
            sock(TcpState::Established, SERVER, CLIENT, 7, Owners::Known(1)),
        ],
    );
    c.update(&mut s0);
    let mut s1 = snap(
        1000,
        vec![process(10, "server")],
        vec![
            sock(
                TcpState::Listen,
                "0.0.0.0:8080",
                "0.0.0.0:0",
                1,
                Owners::Known(0),
            ),
            sock(TcpState::TimeWait, SERVER, CLIENT, 7, NO_INODE),
            // Never seen held: the listener's owner, a guess.
            sock(TcpState::TimeWait, SERVER, "127.0.0.1:40001", 8, NO_INODE),
            // A SYN_RECV request socket: the listener's owner.
            sock(TcpState::SynRecv, SERVER, "127.0.0.1:40002", 9, NO_INODE),
            // No listener, never seen: stays unknown.
            sock(TcpState::TimeWait, "127.0.0.1:9999", CLIENT, 10, NO_INODE),
        ],
    );
    c.update(&mut s1);
    assert_eq!(owner_names(&s1, 1), ["worker"], "exited, re-added once");
    assert_eq!(owner_names(&s1, 2), ["server"]);
    assert_eq!(owner_names(&s1, 3), ["server"]);
    assert_eq!(s1.sockets[4].owners, NO_INODE);
    assert_eq!((s1.coverage.inferred, s1.coverage.no_inode), (3, 1));
    assert_eq!(s1.processes.len(), 2);
    assert_eq!(
        c.seen(1).unwrap().since,
        at(0),
        "TIME_WAIT keeps the connection's age"
    );
    assert!(c.events(1).closed);
    // The two new TIME_WAITs opened and closed between the samples; the request socket is
    // no connection yet.
    assert_eq!(churn(&c, &s1), (2, 3));
    // Once the TIME_WAIT is gone, the worker's set is freed.
    let mut s2 = snap(
        2000,
        vec![process(10, "server")],
        vec![sock(
            TcpState::Listen,
            "0.0.0.0:8080",
            "0.0.0.0:0",
            1,
            Owners::Known(0),
        )],
    );
    c.update(&mut s2);
    assert_eq!(c.remembered_owner_sets(), 0);
    assert_eq!(
        churn(&c, &s2),
        (0, 0),
        "an expired TIME_WAIT closes nothing"
    );
}

#[test]
fn a_reused_pid_is_another_process() {
    let mut c = Connections::new();
    let mut s0 = snap(
        0,
        vec![process(50, "old")],
        vec![sock(
            TcpState::Established,
            CLIENT,
            SERVER,
            3,
            Owners::Known(0),
        )],
    );
    c.update(&mut s0);
    let mut reborn = (*process(50, "new")).clone();
    reborn.start_time += 1;
    let mut s1 = snap(
        1000,
        vec![Arc::new(reborn)],
        vec![sock(TcpState::TimeWait, CLIENT, SERVER, 3, NO_INODE)],
    );
    c.update(&mut s1);
    assert_eq!(owner_names(&s1, 0), ["old"]);
    assert_eq!(s1.processes.len(), 2);
}

#[test]
fn handshake_then_established_counts_one_new_connection() {
    let mut c = Connections::new();
    let mut s0 = snap(0, vec![], vec![]);
    c.update(&mut s0);
    let mut s1 = snap(
        1000,
        vec![],
        vec![sock(TcpState::SynRecv, SERVER, CLIENT, 20, NO_INODE)],
    );
    c.update(&mut s1);
    assert_eq!(churn(&c, &s1), (0, 0));
    // The kernel gives the established child socket a cookie of its own.
    let mut s2 = snap(
        2000,
        vec![],
        vec![sock(TcpState::Established, SERVER, CLIENT, 21, NO_INODE)],
    );
    c.update(&mut s2);
    assert_eq!(churn(&c, &s2), (1, 0));
}

#[test]
fn duplicates_count_once_and_clock_steps_back_count_nothing() {
    let mut c = Connections::new();
    let est = sock(TcpState::Established, CLIENT, SERVER, 5, NO_INODE);
    let mut s0 = snap(5000, vec![], vec![]);
    c.update(&mut s0);
    let mut s1 = snap(6000, vec![], vec![est, est]);
    c.update(&mut s1);
    assert_eq!(churn(&c, &s1), (1, 0));
    assert_eq!(c.seen(1), c.seen(0));
    assert_eq!(c.len(), 1);
    let mut back = snap(4000, vec![], vec![]);
    c.update(&mut back);
    assert_eq!(c.elapsed(), None);
    assert_eq!(churn(&c, &back), (0, 0));
    assert!(c.is_empty());
}

#[test]
fn a_warm_tick_keeps_its_buffers() {
    let mut c = Connections::new();
    let build = |t: u64| {
        let sockets = (0..1000u64)
            .map(|i| {
                let cookie = t * 100 + i + 1;
                let local = format!("127.0.0.1:{}", 20000 + cookie % 30000);
                sock(TcpState::Established, &local, SERVER, cookie, NO_INODE)
            })
            .collect();
        snap(t * 1000, vec![], sockets)
    };
    for t in 0..3 {
        c.update(&mut build(t));
    }
    let bytes = c.heap_bytes();
    for t in 3..10 {
        let mut s = build(t);
        c.update(&mut s);
        assert_eq!(churn(&c, &s), (100, 100));
    }
    assert_eq!(c.heap_bytes(), bytes, "no buffer grew");
}

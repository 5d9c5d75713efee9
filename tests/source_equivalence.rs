//! Both socket sources against real loopback sockets: `sock_diag` reports the test's sockets
//! with the right state, ports and queues (as `ss` does), and `sock_diag` and `/proc/net` report
//! the same socket set for the whole machine.
#![cfg(target_os = "linux")]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use portside::model::Proto::{Tcp, Udp};
use portside::model::TcpState::{Close, CloseWait, Established, FinWait2, Listen, TimeWait};
use portside::model::{Family, Proto, Socket, TcpState};
use portside::source::procnet;
use portside::source::sockdiag::{self, SockDiag};

type Key = (Proto, SocketAddr, SocketAddr, TcpState);

/// Sockets held open for the test, and the `sock_diag` facts expected of each.
#[derive(Default)]
struct Loopback {
    listeners: Vec<TcpListener>,
    streams: Vec<TcpStream>,
    udp: Vec<UdpSocket>,
    /// (key, fd inode or 0, expected Recv-Q if exact, expected Send-Q if exact)
    expected: Vec<(Key, u64, Option<u32>, Option<u32>)>,
}

impl Loopback {
    fn expect(&mut self, key: Key, inode: u64, recv_q: Option<u32>, send_q: Option<u32>) {
        self.expected.push((key, inode, recv_q, send_q));
    }

    /// An established pair's end, expected with its own addresses.
    fn expect_stream(&mut self, s: &TcpStream, recv_q: Option<u32>, send_q: Option<u32>) {
        let key = (
            Tcp,
            s.local_addr().unwrap(),
            s.peer_addr().unwrap(),
            Established,
        );
        self.expect(key, inode_of(s), recv_q, send_q);
    }
}

fn inode_of(fd: &impl AsRawFd) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .unwrap()
        .ino()
}

fn unspecified(v6: bool) -> SocketAddr {
    if v6 { "[::]:0" } else { "0.0.0.0:0" }.parse().unwrap()
}

/// A listener with the given backlog (`listen()` again on a listener only changes its backlog).
fn listener(bind: &str, backlog: i32) -> TcpListener {
    let l = TcpListener::bind(bind).unwrap();
    // SAFETY: a valid listening socket fd.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), backlog) }, 0);
    l
}

fn open_loopback() -> Loopback {
    let mut lb = Loopback::default();
    open_v4_listener(&mut lb);
    open_v6_pairs(&mut lb);
    open_closing(&mut lb);
    open_udp(&mut lb);
    lb
}

/// LISTEN with backlog 7: one accepted connection with 100 unread bytes, one left pending.
fn open_v4_listener(lb: &mut Loopback) {
    let l4 = listener("127.0.0.1:0", 7);
    let l4_addr = l4.local_addr().unwrap();
    let mut c1 = TcpStream::connect(l4_addr).unwrap();
    let (s1, _) = l4.accept().unwrap();
    c1.write_all(&[7; 100]).unwrap();
    let pending = TcpStream::connect(l4_addr).unwrap();
    let key = (Tcp, l4_addr, unspecified(false), Listen);
    lb.expect(key, inode_of(&l4), Some(1), Some(7));
    lb.expect_stream(&s1, Some(100), Some(0));
    lb.expect_stream(&c1, Some(0), None);
    lb.expect_stream(&pending, None, None);
    lb.listeners.push(l4);
    lb.streams.extend([c1, s1, pending]);
}

/// An IPv6 pair on `::1`, and IPv4-mapped: a v6 listener on `::ffff:127.0.0.1`, a v4 client.
fn open_v6_pairs(lb: &mut Loopback) {
    for (bind, connect_v4) in [("[::1]:0", false), ("[::ffff:127.0.0.1]:0", true)] {
        let l = listener(bind, 9);
        let local = l.local_addr().unwrap();
        let target = if connect_v4 {
            ([127, 0, 0, 1], local.port()).into()
        } else {
            local
        };
        let c = TcpStream::connect(target).unwrap();
        let (s, _) = l.accept().unwrap();
        assert!(
            s.local_addr().unwrap().is_ipv6(),
            "accepted on a v6 listener"
        );
        lb.expect(
            (Tcp, local, unspecified(true), Listen),
            inode_of(&l),
            Some(0),
            Some(9),
        );
        lb.expect_stream(&s, Some(0), None);
        lb.listeners.push(l);
        lb.streams.extend([c, s]);
    }
}

/// `TIME_WAIT` by active close (client first, server after EOF); `CLOSE_WAIT` where the
/// server keeps its end, which leaves the client's orphan in `FIN_WAIT2`.
fn open_closing(lb: &mut Loopback) {
    let lt = listener("127.0.0.1:0", 16);
    let c5 = TcpStream::connect(lt.local_addr().unwrap()).unwrap();
    let (mut s5, _) = lt.accept().unwrap();
    let (local, peer) = (c5.local_addr().unwrap(), c5.peer_addr().unwrap());
    drop(c5);
    assert_eq!(s5.read(&mut [0; 8]).unwrap(), 0);
    drop(s5);
    lb.expect((Tcp, local, peer, TimeWait), 0, Some(0), Some(0));
    let c6 = TcpStream::connect(lt.local_addr().unwrap()).unwrap();
    let (s6, _) = lt.accept().unwrap();
    let (local, peer) = (c6.local_addr().unwrap(), c6.peer_addr().unwrap());
    drop(c6);
    lb.expect((Tcp, peer, local, CloseWait), inode_of(&s6), Some(1), None);
    lb.expect((Tcp, local, peer, FinWait2), 0, None, None);
    lb.listeners.push(lt);
    lb.streams.push(s6);
}

/// UDP: unconnected v4 with one unread datagram, connected v4, unconnected v6.
fn open_udp(lb: &mut Loopback) {
    let u1 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let u2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a1, a2) = (u1.local_addr().unwrap(), u2.local_addr().unwrap());
    u2.connect(a1).unwrap();
    u2.send(&[1; 10]).unwrap();
    let u6 = UdpSocket::bind("[::1]:0").unwrap();
    let a6 = u6.local_addr().unwrap();
    lb.expect(
        (Udp, a1, unspecified(false), Close),
        inode_of(&u1),
        None,
        Some(0),
    );
    lb.expect((Udp, a2, a1, Established), inode_of(&u2), Some(0), None);
    lb.expect(
        (Udp, a6, unspecified(true), Close),
        inode_of(&u6),
        Some(0),
        Some(0),
    );
    lb.udp.extend([u1, u2, u6]);
}

fn diag_all(diag: &mut SockDiag) -> Vec<Socket> {
    let mut out = Vec::new();
    for proto in Proto::ALL {
        for family in Family::ALL {
            diag.dump(proto, family, sockdiag::TABLE_STATES, &mut out)
                .unwrap();
        }
    }
    out
}

fn proc_all() -> Vec<Socket> {
    let mut out = Vec::new();
    for proto in Proto::ALL {
        for family in Family::ALL {
            procnet::read_table(Path::new("/proc"), proto, family, &mut out).unwrap();
        }
    }
    out
}

fn keys(sockets: &[Socket]) -> HashSet<Key> {
    sockets.iter().map(Socket::key).collect()
}

/// Checks every expected fact against one dump; the first mismatch, if any.
fn mismatch(lb: &Loopback, dump: &[Socket]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    for (key, inode, recv_q, send_q) in &lb.expected {
        let Some(s) = dump.iter().find(|s| s.key() == *key) else {
            return Some(format!("missing {key:?}"));
        };
        let family = if key.1.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let uid_ok = *inode == 0 || s.uid == uid;
        if s.inode != *inode
            || s.family != family
            || !uid_ok
            || recv_q.is_some_and(|q| q != s.recv_q)
            || send_q.is_some_and(|q| q != s.send_q)
        {
            return Some(format!(
                "{s:?}: want inode {inode}, recv_q {recv_q:?}, send_q {send_q:?}"
            ));
        }
    }
    None
}

#[test]
fn sock_diag_reports_test_sockets_and_matches_proc_net() {
    let lb = open_loopback();
    let mut diag = SockDiag::open().unwrap();

    // Loopback handshakes and FINs settle asynchronously: look again for up to ~2 s.
    let mut last = None;
    for _ in 0..100 {
        last = mismatch(&lb, &diag_all(&mut diag));
        if last.is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(last, None, "sock_diag");

    // The set from /proc/net equals the set from `sock_diag`. Other processes open and close
    // sockets meanwhile: sockets seen in two dumps around the proc read must be in it, and
    // it may hold nothing that neither dump saw. Retried, since /proc is read in chunks.
    let test_keys: HashSet<Key> = lb.expected.iter().map(|e| e.0).collect();
    let mut report = String::new();
    for _ in 0..10 {
        let before = keys(&diag_all(&mut diag));
        let proc = keys(&proc_all());
        let after = keys(&diag_all(&mut diag));
        let stable: HashSet<Key> = before.intersection(&after).copied().collect();
        let seen: HashSet<Key> = before.union(&after).copied().collect();
        let missing: Vec<_> = stable.difference(&proc).collect();
        let extra: Vec<_> = proc.difference(&seen).collect();
        assert!(
            test_keys.is_subset(&stable),
            "test sockets missing from sock_diag"
        );
        assert!(
            test_keys.is_subset(&proc),
            "test sockets missing from /proc/net: {:?}",
            test_keys.difference(&proc).collect::<Vec<_>>()
        );
        if missing.is_empty() && extra.is_empty() {
            return;
        }
        report = format!("in sock_diag only: {missing:?}\nin /proc/net only: {extra:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("sources differ in every attempt; last:\n{report}");
}

#[test]
fn proc_net_reports_listener_accept_queue_without_backlog() {
    let lb = open_loopback();
    let listener = lb.expected[0].0;
    let mut found = None;
    for _ in 0..100 {
        found = proc_all().into_iter().find(|s| s.key() == listener);
        if found.is_some_and(|s| s.recv_q == 1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = found.expect("listener in /proc/net/tcp");
    // /proc has the accept queue but not the configured backlog (`sock_diag` says 7).
    assert_eq!((s.recv_q, s.send_q), (1, 0));
}

/// `ADDR:PORT` as `ss` prints it (`[::1]:80`, `0.0.0.0:*`, `*:*`); `*` host takes `family_of`'s family.
fn parse_ss_addr(s: &str, family_of: SocketAddr) -> Option<SocketAddr> {
    let (host, port) = s.rsplit_once(':')?;
    let port = if port == "*" { 0 } else { port.parse().ok()? };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host == "*" {
        unspecified(family_of.is_ipv6()).ip()
    } else {
        host.parse().ok()?
    };
    Some(SocketAddr::new(ip, port))
}

#[test]
fn sock_diag_matches_ss_for_test_sockets() {
    let lb = open_loopback();
    let mut diag = SockDiag::open().unwrap();
    let mut last = String::new();
    for _ in 0..50 {
        let ours = diag_all(&mut diag);
        let out = std::process::Command::new("ss")
            .args(["-tanuH"])
            .output()
            .expect("run ss");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        // (netid, state, local, peer, recv-q, send-q) as ss prints them.
        let ss: HashSet<(String, String, SocketAddr, SocketAddr, u32, u32)> = text
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let local = parse_ss_addr(f.get(4)?, "0.0.0.0:0".parse().ok()?)?;
                let peer = parse_ss_addr(f.get(5)?, local)?;
                Some((
                    f[0].to_string(),
                    f[1].to_string(),
                    local,
                    peer,
                    f[2].parse().ok()?,
                    f[3].parse().ok()?,
                ))
            })
            .collect();
        let missing: Vec<_> = lb
            .expected
            .iter()
            .filter_map(|(key, ..)| ours.iter().find(|s| s.key() == *key))
            .map(|s| {
                (
                    s.proto.name().to_string(),
                    s.state.ss_name().to_string(),
                    s.local,
                    s.remote,
                    s.recv_q,
                    s.send_q,
                )
            })
            .filter(|row| !ss.contains(row))
            .collect();
        if missing.is_empty() && mismatch(&lb, &ours).is_none() {
            return;
        }
        last = format!("{missing:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("rows of sock_diag that ss does not print: {last}");
}

/// The one-walk TCP dump (`TCPDIAG_GETSOCK`, both families) returns exactly the sockets of
/// the two per-family dumps, test sockets of both families included.
#[test]
fn one_walk_tcp_dump_equals_per_family_dumps() {
    let lb = open_loopback();
    let mut diag = SockDiag::open().unwrap();
    let mut disagreement = String::new();
    for _ in 0..5 {
        let mut per_family = Vec::new();
        for family in Family::ALL {
            diag.dump(Tcp, family, sockdiag::TABLE_STATES, &mut per_family)
                .unwrap();
        }
        let mut both = Vec::new();
        diag.dump_tcp_both_families(sockdiag::TABLE_STATES, &mut both)
            .unwrap();
        let mut again = Vec::new();
        for family in Family::ALL {
            diag.dump(Tcp, family, sockdiag::TABLE_STATES, &mut again)
                .unwrap();
        }
        assert!(both.iter().any(|s| s.family == Family::V4));
        assert!(both.iter().any(|s| s.family == Family::V6));
        // Tolerate sockets other processes open or close between the dumps.
        let (stable, any) = {
            let (a, b) = (keys(&per_family), keys(&again));
            (
                a.intersection(&b).copied().collect::<HashSet<_>>(),
                a.union(&b).copied().collect::<HashSet<_>>(),
            )
        };
        let got = keys(&both);
        let lost: Vec<_> = stable.difference(&got).collect();
        let extra: Vec<_> = got.difference(&any).collect();
        if lost.is_empty() && extra.is_empty() {
            // The test's FIN_WAIT2 and TIME_WAIT sockets may move on between dumps; its
            // listeners and connections may not.
            let stable_state = |k: &Key| matches!(k.3, Listen | Established | CloseWait);
            for (key, ..) in lb
                .expected
                .iter()
                .filter(|e| e.0.0 == Tcp && stable_state(&e.0))
            {
                assert!(got.contains(key), "test socket {key:?} missing");
            }
            return;
        }
        disagreement = format!("missing {lost:?}, extra {extra:?}");
    }
    panic!("one-walk dump differs: {disagreement}");
}

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;
use crate::model::{Family, Socket, TcpState};
use crate::source::sockdiag::SockDiag;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/destroyed")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decode recorded notifications (`record.py`: `127.0.0.1:7201` and `[::1]:7202` listeners,
/// one connection each, then the listeners closed; a connected UDP socket closed).
fn decode(names: &[&str], proto: Proto) -> Vec<Socket> {
    let mut out = Vec::new();
    for name in names {
        let done = decode_messages(&fixture(name), proto, &mut out).unwrap();
        assert!(!done, "a notification is no dump: no NLMSG_DONE");
    }
    out
}

fn local_remote(s: &Socket) -> (SocketAddr, SocketAddr) {
    (s.local, s.remote)
}

#[test]
fn recorded_notifications_decode_with_the_dump_decoder() {
    let tcp = decode(
        &[
            "tcp-0.bin",
            "tcp-1.bin",
            "tcp-2.bin",
            "tcp-3.bin",
            "tcp-4.bin",
            "tcp-5.bin",
        ],
        Proto::Tcp,
    );
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(
        tcp.iter().map(local_remote).collect::<Vec<_>>(),
        vec![
            (addr("127.0.0.1:7201"), addr("127.0.0.1:60448")),
            (addr("127.0.0.1:60448"), addr("127.0.0.1:7201")),
            (addr("[::1]:52060"), addr("[::1]:7202")),
            (addr("[::1]:7202"), addr("[::1]:52060")),
            (addr("127.0.0.1:7201"), addr("0.0.0.0:0")),
            (addr("[::1]:7202"), addr("[::]:0")),
        ]
    );
    // Destroyed sockets are reported in state CLOSE, detached from their inode, each with
    // its own cookie.
    assert!(
        tcp.iter()
            .all(|s| s.state == TcpState::Close && s.inode == 0)
    );
    let mut cookies: Vec<u64> = tcp.iter().map(|s| s.cookie).collect();
    cookies.sort_unstable();
    cookies.dedup();
    assert_eq!(cookies.len(), 6);
    assert!(cookies[0] != 0);
    assert_eq!(
        tcp.iter().map(|s| s.family).collect::<Vec<_>>(),
        [
            Family::V4,
            Family::V4,
            Family::V6,
            Family::V6,
            Family::V4,
            Family::V6
        ]
    );
    let udp = decode(&["udp-0.bin"], Proto::Udp);
    assert_eq!(
        udp.iter().map(local_remote).collect::<Vec<_>>(),
        vec![(addr("127.0.0.1:7203"), addr("127.0.0.1:7204"))]
    );
    assert_eq!(udp[0].state, TcpState::Established, "connected UDP");
}

/// The cookies of our sockets on `port`, from a sock_diag dump.
fn cookies_on(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    SockDiag::open()
        .unwrap()
        .dump(
            Proto::Tcp,
            Family::V4,
            crate::source::sockdiag::ALL_STATES,
            &mut out,
        )
        .unwrap();
    let mut cookies: Vec<u64> = out
        .iter()
        .filter(|s| s.remote.port() != 0 && (s.local.port() == port || s.remote.port() == port))
        .map(|s| s.cookie)
        .collect();
    cookies.sort_unstable();
    cookies
}

/// Drain until `want` of our cookies arrived (the kernel sends from a work queue) or 5 s.
fn drain_until(feed: &mut DestroyFeed, want: &[u64]) -> Destroyed {
    let mut all = Destroyed::default();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let d = feed.drain();
        all.sockets.extend(d.sockets);
        all.overflows += d.overflows;
        let seen = want
            .iter()
            .filter(|c| all.sockets.iter().any(|s| s.cookie == **c))
            .count();
        if seen == want.len() || Instant::now() > deadline {
            return all;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Make `n` loopback connections to a fresh listener, exchange a byte, note both ends'
/// cookies, and close them (the server first). Returns the cookies.
fn churn_connections(n: usize) -> Vec<u64> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut pairs = Vec::new();
    for _ in 0..n {
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"x").unwrap();
        let mut byte = [0];
        server.read_exact(&mut byte).unwrap();
        pairs.push((client, server));
    }
    let cookies = cookies_on(port);
    assert_eq!(cookies.len(), 2 * n, "both ends of each connection");
    for (client, server) in pairs {
        drop(server);
        drop(client);
    }
    cookies
}

#[test]
fn every_closed_connection_is_reported_once_with_its_cookie() {
    let mut feed = DestroyFeed::open(&Query::default()).unwrap();
    let _ = feed.drain();
    let cookies = churn_connections(20);
    let got = drain_until(&mut feed, &cookies);
    assert_eq!(got.overflows, 0);
    for c in &cookies {
        let n = got.sockets.iter().filter(|s| s.cookie == *c).count();
        assert_eq!(n, 1, "cookie {c} reported {n} times");
    }
    // Nothing more is queued, and draining an empty queue does not block.
    let started = Instant::now();
    let rest = feed.drain();
    assert!(rest.sockets.iter().all(|s| !cookies.contains(&s.cookie)));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_udp_only_query_hears_no_tcp() {
    let query = Query {
        tcp: false,
        ..Query::default()
    };
    let mut feed = DestroyFeed::open(&query).unwrap();
    let cookies = churn_connections(3);
    std::thread::sleep(Duration::from_millis(200));
    let got = feed.drain();
    assert!(got.sockets.iter().all(|s| s.proto == Proto::Udp));
    assert!(got.sockets.iter().all(|s| !cookies.contains(&s.cookie)));
}

#[test]
fn overflow_is_counted_not_an_error() {
    // A queue far too small for the burst: the kernel drops notifications and says so.
    let mut feed = DestroyFeed::open(&Query::default()).unwrap();
    for (_, socket) in &feed.feeds {
        // SO_RCVBUF's floor is ~2 KiB (doubled): a handful of notifications.
        set_int(socket, libc::SO_RCVBUF, 1).unwrap();
    }
    let _ = churn_connections(100);
    std::thread::sleep(Duration::from_millis(300));
    let got = feed.drain();
    assert!(
        got.overflows >= 1,
        "{} sockets, no overflow",
        got.sockets.len()
    );
    assert!(got.sockets.len() < 200);
    let again = feed.drain();
    assert_eq!(again.overflows, 0, "an overflow is reported once");
}

/// Run as `nobody` by `unprivileged_user_hears_notifications`.
#[test]
#[ignore = "run as nobody by unprivileged_user_hears_notifications"]
fn child_subscribes_as_nobody() {
    // SAFETY: getuid has no preconditions.
    assert_ne!(unsafe { libc::getuid() }, 0, "the child runs unprivileged");
    let mut feed = DestroyFeed::open(&Query::default()).unwrap();
    let cookies = churn_connections(5);
    let got = drain_until(&mut feed, &cookies);
    let heard = cookies
        .iter()
        .filter(|c| got.sockets.iter().any(|s| s.cookie == **c))
        .count();
    assert_eq!(heard, cookies.len());
}

#[test]
fn unprivileged_user_hears_notifications() {
    use std::os::unix::process::CommandExt;
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs the tests as root"
        );
        eprintln!("skipped: needs root to switch to nobody (already unprivileged here)");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "source::destroyed::tests::child_subscribes_as_nobody",
        ])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

//! Helpers shared by integration tests: run portside and `ss`, parse both into one
//! comparable shape, and open a known set of loopback sockets.

#![allow(dead_code, reason = "each test binary uses a subset")]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::Duration;

/// A socket as both tools can describe it: (proto, local ip, local port, remote ip,
/// remote port, ss state name). Unspecified addresses are normalized to `*` (ss prints
/// `*` for a dual-stack `[::]` socket and `[::]` for a v6-only one; sock_diag does not say
/// which without an extension).
pub type Key = (String, String, u16, String, u16, String);

#[derive(Debug, Clone)]
pub struct Row {
    pub key: Key,
    pub recv_q: u64,
    pub send_q: u64,
    /// Owners known from a file descriptor (what `ss -p` shows).
    pub pids: Vec<u32>,
    /// Owners portside inferred (TIME_WAIT, SYN_RECV, unaccepted connections); `ss` has none.
    pub inferred: Vec<u32>,
}

fn norm_ip(ip: &str) -> String {
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    match ip {
        "*" | "0.0.0.0" | "::" => "*".to_string(),
        other => other.to_string(),
    }
}

/// Split `ss`'s `addr%iface:port` / `[v6]:port` / `*:*`.
fn split_endpoint(s: &str) -> (String, u16) {
    let (host, port) = s.rsplit_once(':').expect("endpoint has a port");
    let host = host.split('%').next().unwrap_or(host);
    let port = if port == "*" {
        0
    } else {
        port.parse().expect("port")
    };
    (norm_ip(host), port)
}

fn ss_state(netid: &str, state: &str) -> String {
    // ss prints connected UDP as ESTAB and unconnected as UNCONN, like our ss_name().
    let _ = netid;
    state.to_string()
}

/// Parse `ss -tanuH` or `ss -tanupH` output.
pub fn parse_ss(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (lip, lport) = split_endpoint(f[4]);
            let (rip, rport) = split_endpoint(f[5]);
            let rest = f[6..].join(" ");
            let pids = rest
                .split("pid=")
                .skip(1)
                .filter_map(|p| p.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
                .collect::<Vec<u32>>();
            let mut pids = pids;
            pids.sort_unstable();
            pids.dedup();
            Row {
                key: (
                    f[0].to_string(),
                    lip,
                    lport,
                    rip,
                    rport,
                    ss_state(f[0], f[1]),
                ),
                recv_q: f[2].parse().expect("recv-q"),
                send_q: f[3].parse().expect("send-q"),
                pids,
                inferred: Vec::new(),
            }
        })
        .collect()
}

pub fn ss(args: &str) -> Vec<Row> {
    let out = Command::new("ss").arg(args).output().expect("run ss");
    assert!(out.status.success(), "ss {args} failed");
    parse_ss(&String::from_utf8_lossy(&out.stdout))
}

const JSON_TO_SS: &[(&str, &str)] = &[
    ("ESTABLISHED", "ESTAB"),
    ("SYN_SENT", "SYN-SENT"),
    ("SYN_RECV", "SYN-RECV"),
    ("FIN_WAIT1", "FIN-WAIT-1"),
    ("FIN_WAIT2", "FIN-WAIT-2"),
    ("TIME_WAIT", "TIME-WAIT"),
    ("CLOSE", "UNCONN"),
    ("UNCONN", "UNCONN"),
    ("CLOSE_WAIT", "CLOSE-WAIT"),
    ("LAST_ACK", "LAST-ACK"),
    ("LISTEN", "LISTEN"),
    ("CLOSING", "CLOSING"),
];

/// Run `portside --once --format json` with extra args and parse the sockets.
pub fn portside(extra: &[&str]) -> (serde_json::Value, Vec<Row>) {
    let out = Command::new(env!("CARGO_BIN_EXE_portside"))
        .args(["--once", "--format", "json"])
        .args(extra)
        .output()
        .expect("run portside");
    assert!(
        out.status.success(),
        "portside failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("portside JSON");
    let rows = v["sockets"]
        .as_array()
        .expect("sockets array")
        .iter()
        .map(|s| {
            let state = s["state"].as_str().unwrap();
            let ss_state = JSON_TO_SS
                .iter()
                .find(|(j, _)| *j == state)
                .map_or(state, |(_, s)| s);
            let mut pids: Vec<u32> = s["processes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["pid"].as_u64().unwrap() as u32)
                .collect();
            pids.sort_unstable();
            pids.dedup();
            let (pids, inferred) = match s["attribution"].as_str().unwrap() {
                "known" => (pids, Vec::new()),
                "inferred" => (Vec::new(), pids),
                _ => {
                    assert!(pids.is_empty(), "unattributed socket with owners: {s}");
                    (Vec::new(), Vec::new())
                }
            };
            Row {
                key: (
                    s["proto"].as_str().unwrap().to_string(),
                    norm_ip(s["local_addr"].as_str().unwrap()),
                    s["local_port"].as_u64().unwrap() as u16,
                    norm_ip(s["remote_addr"].as_str().unwrap()),
                    s["remote_port"].as_u64().unwrap() as u16,
                    ss_state.to_string(),
                ),
                recv_q: s["recv_q"].as_u64().unwrap(),
                send_q: s["send_q"].as_u64().unwrap(),
                pids,
                inferred,
            }
        })
        .collect();
    (v, rows)
}

/// Whether `pids` is this process, plus possibly children of it caught between fork and
/// exec (another test thread spawning `ss` or portside): they hold a copy of every fd
/// until they exec, so `ss -p` and portside both see them for an instant.
pub fn owned_by_me(pids: &[u32]) -> bool {
    let me = std::process::id();
    pids.contains(&me)
        && pids.iter().all(|&p| {
            p == me
                || std::fs::read_to_string(format!("/proc/{p}/stat")).map_or(true, |stat| {
                    // ppid is the second field after the parenthesised name.
                    stat.rsplit(')')
                        .next()
                        .and_then(|rest| rest.split_whitespace().nth(1))
                        .and_then(|ppid| ppid.parse::<u32>().ok())
                        == Some(me)
                })
        })
}

/// Multiset of keys.
pub fn counts(rows: &[Row]) -> HashMap<Key, usize> {
    let mut m = HashMap::new();
    for r in rows {
        *m.entry(r.key.clone()).or_insert(0) += 1;
    }
    m
}

/// Sockets (with multiplicity) in `a` but not in `b`.
pub fn missing(a: &HashMap<Key, usize>, b: &HashMap<Key, usize>) -> Vec<(Key, usize)> {
    let mut v: Vec<_> = a
        .iter()
        .filter_map(|(k, &n)| {
            let m = b.get(k).copied().unwrap_or(0);
            (n > m).then(|| (k.clone(), n - m))
        })
        .collect();
    v.sort();
    v
}

/// A known set of loopback sockets held by this process.
pub struct TestSockets {
    pub listener4: socket2::Socket,
    pub listener4_addr: SocketAddr,
    pub listener6: TcpListener,
    pub est4: (TcpStream, TcpStream),
    pub est6: (TcpStream, TcpStream),
    /// Local address of the client socket left in TIME_WAIT.
    pub time_wait_client: SocketAddr,
    pub time_wait_server: SocketAddr,
    /// Server side left in CLOSE_WAIT (its peer closed first).
    pub close_wait: TcpStream,
    pub udp4: UdpSocket,
    pub udp6: UdpSocket,
    pub udp_connected: UdpSocket,
    /// Connections queued on `listener4`, never accepted.
    pub queued: Vec<TcpStream>,
}

pub const BACKLOG: i32 = 7;

impl TestSockets {
    pub fn open() -> TestSockets {
        use socket2::{Domain, Socket, Type};
        let listener4 = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener4
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        listener4.listen(BACKLOG).unwrap();
        let listener4_addr = listener4.local_addr().unwrap().as_socket().unwrap();
        // Two connections wait in the accept queue, never accepted.
        let queued = vec![
            TcpStream::connect(listener4_addr).unwrap(),
            TcpStream::connect(listener4_addr).unwrap(),
        ];

        let listener6 = TcpListener::bind("[::1]:0").unwrap();
        let est6_client = TcpStream::connect(listener6.local_addr().unwrap()).unwrap();
        let (est6_server, _) = listener6.accept().unwrap();

        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let est4_client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (est4_server, _) = server.accept().unwrap();

        // TIME_WAIT: the client closes first, then the server: the client ends in TIME_WAIT.
        let tw_client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (mut tw_server, _) = server.accept().unwrap();
        let time_wait_client = tw_client.local_addr().unwrap();
        let time_wait_server = tw_server.local_addr().unwrap();
        drop(tw_client);
        let mut buf = [0u8; 1];
        assert_eq!(tw_server.read(&mut buf).unwrap(), 0, "EOF from the client");
        drop(tw_server);

        // CLOSE_WAIT: the client closes, the server keeps its end open.
        let cw_client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (mut close_wait, _) = server.accept().unwrap();
        drop(cw_client);
        assert_eq!(close_wait.read(&mut buf).unwrap(), 0, "EOF from the client");
        close_wait.flush().unwrap();

        let udp4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp6 = UdpSocket::bind("[::1]:0").unwrap();
        let udp_connected = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp_connected.connect(udp4.local_addr().unwrap()).unwrap();
        // Let the FIN/ACK exchanges settle.
        thread::sleep(Duration::from_millis(50));
        drop(server);
        TestSockets {
            listener4,
            listener4_addr,
            listener6,
            est4: (est4_client, est4_server),
            est6: (est6_client, est6_server),
            time_wait_client,
            time_wait_server,
            close_wait,
            udp4,
            udp6,
            udp_connected,
            queued,
        }
    }
}

/// The key of a socket sampled in-process, normalized as `ss` rows are.
pub fn key_of(s: &portside::model::Socket) -> Key {
    (
        s.proto.name().to_string(),
        norm_ip(&s.local.ip().to_string()),
        s.local.port(),
        norm_ip(&s.remote.ip().to_string()),
        s.remote.port(),
        s.state.ss_name().to_string(),
    )
}

//! `ss -tanpH` output and portside's JSON read into one comparable shape: a table from
//! (state as `ss` prints it, local, peer) to the sorted pids that own the socket.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub type Key = (String, SocketAddr, SocketAddr);
pub type Table = BTreeMap<Key, Vec<u32>>;

/// Parse `ss -tanpH`: state, queues, local, peer, then `users:(("name",pid=N,fd=M),...)`.
pub fn parse_ss(text: &str) -> Table {
    let mut table = Table::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert!(cols.len() >= 5, "short ss line: {line:?}");
        let mut pids: Vec<u32> = line
            .split("pid=")
            .skip(1)
            .filter_map(|s| s.split([',', ')']).next()?.parse().ok())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        let key = (cols[0].to_owned(), ss_addr(cols[3]), ss_addr(cols[4]));
        table.insert(key, pids);
    }
    table
}

/// `127.0.0.1:443`, `[::1]:443`, `0.0.0.0:*`, `[::]:*`, `*:*` as `ss -n` prints them.
pub fn ss_addr(s: &str) -> SocketAddr {
    let (host, port) = s
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("bad ss address {s:?}"));
    let port = if port == "*" {
        0
    } else {
        port.parse().expect("ss port")
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next().unwrap_or(host);
    let ip = if host == "*" {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        host.parse().unwrap_or_else(|_| panic!("bad ss host {s:?}"))
    };
    SocketAddr::new(ip, port)
}

/// portside's `--once --format json` output as a table keyed like `ss`'s. Owners of
/// sockets no file holds (inode 0: TIME_WAIT) are left out: ss shows none, and portside
/// may infer them.
pub fn parse_portside(json: &str) -> Table {
    let v: serde_json::Value = serde_json::from_str(json).expect("portside prints one JSON object");
    let sockets = v["sockets"].as_array().expect("a \"sockets\" array");
    let mut table = Table::new();
    for s in sockets {
        let addr = |a: &str, p: &str| {
            let ip: IpAddr = s[a]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("bad {a} in {s}"));
            let port = s[p]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_else(|| panic!("bad {p} in {s}"));
            SocketAddr::new(ip, port)
        };
        let state = ss_state(s["state"].as_str().expect("a state"));
        let mut pids: Vec<u32> = s["processes"]
            .as_array()
            .expect("a processes array")
            .iter()
            .filter_map(|p| p["pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
            .collect();
        if s["inode"].as_u64() == Some(0) {
            pids.clear();
        }
        pids.sort_unstable();
        pids.dedup();
        let key = (
            state.to_owned(),
            addr("local_addr", "local_port"),
            addr("remote_addr", "remote_port"),
        );
        table.insert(key, pids);
    }
    table
}

/// The JSON contract's kernel state name as `ss` prints it.
fn ss_state(kernel: &str) -> &str {
    match kernel {
        "ESTABLISHED" => "ESTAB",
        "TIME_WAIT" => "TIME-WAIT",
        "CLOSE_WAIT" => "CLOSE-WAIT",
        "SYN_SENT" => "SYN-SENT",
        "SYN_RECV" => "SYN-RECV",
        "FIN_WAIT1" => "FIN-WAIT-1",
        "FIN_WAIT2" => "FIN-WAIT-2",
        "LAST_ACK" => "LAST-ACK",
        "CLOSE" => "UNCONN",
        other => other,
    }
}

/// Sockets per state.
pub fn state_counts(table: &Table) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for (state, _, _) in table.keys() {
        *counts.entry(state.clone()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn ss_lines_parse_into_keys_and_owners() {
    let t = parse_ss(
        "LISTEN 0 4096 0.0.0.0:443 0.0.0.0:* users:((\"a\",pid=7,fd=3),(\"b\",pid=5,fd=3))\n\
         TIME-WAIT 0 0 127.2.1.1:40000 127.0.0.1:443\n\
         ESTAB 0 0 [::1]:20009 [::1]:41000 users:((\"a\",pid=7,fd=9))\n",
    );
    let listen = (
        "LISTEN".to_owned(),
        ss_addr("0.0.0.0:443"),
        ss_addr("0.0.0.0:0"),
    );
    assert_eq!(t[&listen], vec![5, 7]);
    let tw = (
        "TIME-WAIT".to_owned(),
        ss_addr("127.2.1.1:40000"),
        ss_addr("127.0.0.1:443"),
    );
    assert_eq!(t[&tw], Vec::<u32>::new());
    assert_eq!(
        ss_addr("[::1]:20009").ip(),
        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
    );
    assert_eq!(ss_addr("*:*"), ss_addr("0.0.0.0:0"));
    assert_eq!(state_counts(&t)["ESTAB"], 1);
}

#[test]
fn portside_json_parses_like_ss() {
    let json = r#"{"time": 1, "duration_ms": 2, "sockets": [
        {"proto": "tcp", "family": "ipv4", "state": "LISTEN", "local_addr": "0.0.0.0",
         "local_port": 443, "remote_addr": "0.0.0.0", "remote_port": 0, "inode": 9,
         "processes": [{"pid": 7}, {"pid": 5}]},
        {"proto": "tcp", "family": "ipv4", "state": "TIME_WAIT", "local_addr": "127.2.1.1",
         "local_port": 40000, "remote_addr": "127.0.0.1", "remote_port": 443, "inode": 0,
         "processes": [{"pid": 7}]}]}"#;
    let ss = parse_ss(
        "LISTEN 0 4096 0.0.0.0:443 0.0.0.0:* users:((\"a\",pid=7,fd=3),(\"b\",pid=5,fd=3))\n\
         TIME-WAIT 0 0 127.2.1.1:40000 127.0.0.1:443\n",
    );
    assert_eq!(parse_portside(json), ss);
}

//! Busy-server insight on real loopback sockets: a TIME_WAIT storm, a full accept queue,
//! connection rates in streamed output. Checked against `ss` where it can see the same.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

fn portside(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_portside"))
        .arg("--no-config")
        .args(args)
        .output()
        .expect("run portside");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn ss_count(filter: &str) -> usize {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ss -tanH {filter}"))
        .output()
        .expect("run ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// Open and close `n` connections to `listener`, the client closing first: each leaves
/// one TIME_WAIT socket on the client's ephemeral port, toward the listener.
fn time_wait_storm(listener: &TcpListener, n: usize) {
    let addr = listener.local_addr().unwrap();
    let mut buf = [0u8; 1];
    for _ in 0..n {
        let client = TcpStream::connect(addr).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        drop(client);
        // Wait for the client's FIN before closing, so the client side ends in TIME_WAIT.
        assert_eq!(server.read(&mut buf).unwrap(), 0);
    }
}

#[test]
fn time_wait_storm_is_reported_under_its_port_and_destination() {
    const N: usize = 2000;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    time_wait_storm(&listener, N);
    eprintln!("{N} TIME_WAIT sockets made in {:?}", started.elapsed());

    let ss_tw = ss_count(&format!("state time-wait dst 127.0.0.1:{port}"));
    assert_eq!(ss_tw, N, "ss sees the storm");
    let v = &portside(&[
        "--once",
        "--group",
        "--format",
        "json",
        &format!("port:{port}"),
    ])[0];
    let tw = &v["time_wait"];
    assert_eq!(tw["total"], N, "{tw}");
    assert_eq!(tw["client_side"], N, "the client closed first: {tw}");
    assert_eq!(tw["server_side"], 0);
    let by_remote = tw["by_remote"].as_array().unwrap();
    assert_eq!(by_remote[0]["addr"], "127.0.0.1");
    assert_eq!(by_remote[0]["port"], port);
    assert_eq!(by_remote[0]["count"], N);
    assert_eq!(tw["by_remote_addr"][0]["count"], N);
    let eph = tw["ephemeral"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["remote_port"] == port)
        .expect("ephemeral use toward the listener");
    assert_eq!(eph["used"], N, "{eph}");
    let range = v["ephemeral_range"].as_array().unwrap();
    let size = range[1].as_u64().unwrap() - range[0].as_u64().unwrap() + 1;
    assert_eq!(eph["range_size"], size);

    // The text form carries the same numbers.
    let out = Command::new(env!("CARGO_BIN_EXE_portside"))
        .arg("--no-config")
        .args(["--once", "--group", &format!("port:{port}")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("TIME_WAIT: {N} (server side 0, client side {N})")),
        "{text}"
    );
    assert!(
        text.contains(&format!("-> 127.0.0.1:{port} uses {N} of {size}")),
        "{text}"
    );
}

#[test]
fn full_accept_queue_shows_queue_at_backlog_and_alerts() {
    use socket2::{Domain, Socket, Type};
    const BACKLOG: i32 = 4;
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(BACKLOG).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    // Never accepted: the queue fills; later SYNs are dropped and stay in SYN_SENT.
    let clients: Vec<Socket> = (0..10)
        .map(|_| {
            let c = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            c.set_nonblocking(true).unwrap();
            let _ = c.connect(&addr.into());
            c
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let out = Command::new("ss")
        .args(["-tlnH", &format!("sport = :{}", addr.port())])
        .output()
        .unwrap();
    let ss_line = String::from_utf8_lossy(&out.stdout);
    let ss_recv_q: u64 = ss_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    // Linux holds backlog + 1 connections (sk_acceptq_is_full is `>`).
    assert!(ss_recv_q >= BACKLOG as u64, "{ss_line}");

    let v = &portside(&[
        "--once",
        "--group",
        "--format",
        "json",
        &format!("port:{}", addr.port()),
    ])[0];
    let l = v["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["local_port"] == addr.port())
        .expect("the listener");
    assert_eq!(l["backlog"], BACKLOG);
    assert_eq!(l["accept_queue"], ss_recv_q, "same queue as ss: {l}");
    let alerts = v["alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["alert"] == "accept_queue>=90%"
            && a["message"].as_str().unwrap().contains(&addr.to_string())),
        "{alerts:?}"
    );
    drop(clients);
}

#[test]
fn streamed_groups_carry_connection_rates() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_portside"))
        .arg("--no-config")
        .args([
            "--group",
            "--format",
            "json",
            "--count",
            "2",
            "--interval",
            "700ms",
            &format!("port:{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Between the two samples: 50 connections opened and kept, 30 opened and closed.
    thread::sleep(Duration::from_millis(200));
    let mut kept = Vec::new();
    for i in 0..80 {
        let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().unwrap();
        if i < 50 {
            kept.push((c, s));
        }
    }
    let out = child.wait_with_output().unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let listener_of = |v: &Value| {
        v["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["local_port"] == port)
            .cloned()
            .unwrap()
    };
    assert!(
        listener_of(&lines[0])["new_per_sec"].is_null(),
        "no rate on the first sample"
    );
    let second = listener_of(&lines[1]);
    let new = second["new_per_sec"].as_f64().unwrap();
    assert!(new > 0.0, "new connections seen: {second}");
    assert_eq!(second["established"], 50, "the kept connections: {second}");
}

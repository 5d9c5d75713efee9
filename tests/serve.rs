//! `portside serve` as a client sees it: errors, the exposition (`promtool check metrics`),
//! the shipped rules and dashboard, and robustness against bad clients.

#[path = "support/exporter.rs"]
mod exporter;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use exporter::{Exporter, get, need, sample};

fn portside(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portside"))
        .args(args)
        .output()
        .expect("run portside")
}

#[test]
fn bad_input_and_a_busy_port_are_one_line_with_exit_2() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["serve", "--listen", &busy], busy.as_str()),
        (
            vec!["serve", "--listen", "not-an-address"],
            "'not-an-address'",
        ),
        (vec!["serve", "--listen", ":9632"], "':9632'"),
        (
            vec!["serve", "--listen", "192.0.2.1:9632"],
            "192.0.2.1:9632",
        ),
        (vec!["serve", "--max-ports", "0"], "'0'"),
        (vec!["serve", "--max-ports", "lots"], "'lots'"),
        (vec!["serve", "--interval", "1ms"], "'1ms'"),
        (
            vec!["--count", "2", "--format", "prometheus"],
            "--format prometheus",
        ),
    ];
    for (args, bad) in &cases {
        let out = portside(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
        assert!(err.contains(bad), "{args:?}: names {bad}: {err}");
    }
}

/// `promtool check metrics` (Prometheus's own linter) on what `/metrics` serves and on
/// `--once --format prometheus`.
#[test]
fn promtool_accepts_the_exposition() {
    if !need("promtool", "prometheus") {
        return;
    }
    let exporter = Exporter::start(&["--interval", "1s"]);
    // The second tick has connection counters.
    thread::sleep(Duration::from_millis(1500));
    let served = exporter.metrics();
    let once = portside(&["--once", "--format", "prometheus"]);
    assert!(once.status.success());
    let once = String::from_utf8(once.stdout).unwrap();
    for (what, text) in [("serve", &served), ("--once", &once)] {
        assert!(
            text.contains("portside_build_info{version=\""),
            "{what}: {text}"
        );
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{what}: promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The exporter's own listener is an inbound port with a listener.
    let port = exporter.addr.port();
    assert_eq!(
        sample(
            &served,
            &format!("portside_inbound_sockets{{proto=\"tcp\",port=\"{port}\",state=\"LISTEN\"}}")
        ),
        Some(1.0),
        "{served}"
    );
    assert!(served.contains("portside_inbound_connections_opened_total{"));
    assert!(
        !once.contains("portside_inbound_connections_opened_total"),
        "no counters in a one-shot run"
    );
}

fn asset(path: &str) -> String {
    std::fs::read_to_string(format!("{}/assets/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Metric names a text uses (`portside_...` identifiers).
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("portside_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The rules pass `promtool check rules` and their unit tests, and the rules and the
/// dashboard use only names the exporter serves.
#[test]
fn shipped_rules_and_dashboard_use_exported_names() {
    let exporter = Exporter::start(&["--interval", "1s"]);
    thread::sleep(Duration::from_millis(1500));
    let served = exporter.metrics();
    let served_names: BTreeSet<String> = served
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    let rules = asset("prometheus/portside-rules.yml");
    let dashboard = asset("grafana/portside-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let exprs: Vec<&str> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 10);
    for expr in &exprs {
        assert!(
            !names_in(expr).is_empty(),
            "a panel without portside metrics: {expr}"
        );
    }
    for (what, text) in [("rules", rules.as_str()), ("dashboard", dashboard.as_str())] {
        let names = names_in(text);
        assert!(names.len() >= 5, "{what}: {names:?}");
        let unknown: Vec<&String> = names
            .iter()
            .filter(|n| !served_names.contains(*n))
            .collect();
        assert!(
            unknown.is_empty(),
            "{what} uses names the exporter does not serve: {unknown:?}"
        );
    }
    if !need("promtool", "prometheus") {
        return;
    }
    let dir = format!("{}/assets/prometheus", env!("CARGO_MANIFEST_DIR"));
    for args in [
        &["check", "rules", "portside-rules.yml"][..],
        &["test", "rules", "portside-rules.test.yml"][..],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Silent and trickling clients, clients that vanish mid-response, and 100 parallel
/// scrapes: every scrape is answered in full, the process keeps serving, bad clients are
/// cut at the deadlines, and memory stays flat over 1,000 scrapes.
#[test]
fn keeps_serving_bad_clients_and_parallel_scrapes() {
    let mut exporter = Exporter::start(&["--interval", "200ms"]);
    let addr = exporter.addr;
    // 40 clients that connect and send nothing, 10 that send half a request line.
    let silent: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut trickling: Vec<TcpStream> =
        (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for t in &mut trickling {
        t.write_all(b"GET /metr").unwrap();
    }
    // 100 parallel scrapes while they hang on.
    let scrapes: Vec<_> = (0..100)
        .map(|_| thread::spawn(move || get(addr, "/metrics")))
        .collect();
    for s in scrapes {
        let (status, body) = s.join().unwrap();
        assert_eq!(status, 200);
        assert!(
            body.contains("portside_tick_errors_total 0"),
            "a whole exposition"
        );
    }
    // Clients that take part of the response and reset the connection.
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut some = [0u8; 16];
        s.read_exact(&mut some).unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
    }
    assert!(exporter.alive());
    // The silent clients are cut at the request deadline (5 s): the read sees the close.
    for mut s in silent.into_iter().chain(trickling) {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 64];
        let n = s
            .read(&mut buf)
            .expect("closed by the server, not timed out");
        assert_eq!(n, 0, "closed without a response");
    }
    // Memory: warm up, then 1,000 more scrapes.
    for _ in 0..100 {
        assert_eq!(get(addr, "/metrics").0, 200);
    }
    let before = exporter.rss_kib();
    for _ in 0..1000 {
        assert_eq!(get(addr, "/metrics").0, 200);
    }
    let after = exporter.rss_kib();
    eprintln!("exporter RSS over 1,000 scrapes: {before} KiB -> {after} KiB");
    assert!(
        after <= before + 2048,
        "RSS grew from {before} KiB to {after} KiB over 1,000 scrapes"
    );
    assert_eq!(get(addr, "/nope").0, 404);
    assert!(exporter.alive());
}

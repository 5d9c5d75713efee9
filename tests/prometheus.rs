//! A real Prometheus (Debian's `prometheus`) scraping `portside serve` every second on
//! loopback; and the series bound with 10,000 listening ports in a test namespace.

#[path = "support/exporter.rs"]
mod exporter;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use exporter::{Exporter, Prometheus, is_root, need, sample, series_count, sum};
use portside::exporter::{Limits, series_bound};

/// Server-side TIME_WAIT sockets on `sport` as `ss` counts them now.
fn ss_time_wait(sport: u16) -> usize {
    let out = Command::new("ss")
        .args([
            "-tanH",
            "state",
            "time-wait",
            "sport",
            "=",
            &format!(":{sport}"),
        ])
        .output()
        .expect("run ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// `n` connections to `listener` that the server closes first: each leaves a TIME_WAIT
/// socket on the listener's port for 60 s.
fn server_side_time_wait(listener: &TcpListener, n: usize) {
    let addr = listener.local_addr().unwrap();
    for _ in 0..n {
        let mut client = TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        drop(server);
        let mut buf = [0u8; 8];
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(client.read(&mut buf).unwrap(), 0, "server closed first");
        drop(client);
    }
}

#[test]
fn prometheus_scrapes_serve_and_sees_what_ss_sees() {
    if !need("prometheus", "prometheus") || !need("ss", "iproute2") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    server_side_time_wait(&listener, 25);
    let exporter = Exporter::start(&["--interval", "1s"]);
    let prometheus = Prometheus::start(exporter.addr);

    let series =
        format!("portside_inbound_sockets{{job=\"portside\",port=\"{port}\",state=\"TIME_WAIT\"}}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let (before, value, after) = loop {
        assert!(Instant::now() < deadline, "Prometheus never had {series}");
        thread::sleep(Duration::from_millis(500));
        let up = prometheus.query("up{job=\"portside\"}");
        if up.first().map(|(_, v)| *v) != Some(1.0) {
            continue;
        }
        let before = ss_time_wait(port);
        let got = prometheus.query(&series);
        let after = ss_time_wait(port);
        if let Some((labels, v)) = got.first() {
            assert_eq!(labels["proto"], "tcp");
            break (before, *v as usize, after);
        }
    };
    // TIME_WAIT sockets live 60 s: the value scraped up to ~2 s ago is what ss counts
    // now, within what changed between the two ss runs.
    assert!(
        before >= 25,
        "ss sees the test's TIME_WAIT sockets: {before}"
    );
    assert!(
        (before.min(after)..=before.max(after)).contains(&value),
        "Prometheus has {value} TIME_WAIT on port {port}, ss counted {before} then {after}"
    );
    let up = prometheus.query("up{job=\"portside\"}");
    assert!((up[0].1 - 1.0).abs() < f64::EPSILON, "{up:?}");
    let server_tw = prometheus.query("portside_time_wait_sockets{side=\"server\"}");
    assert!(server_tw[0].1 >= 25.0, "{server_tw:?}");
    let names = prometheus.query("count by (__name__) ({__name__=~\"portside_.+\"})");
    assert!(names.len() >= 15, "{names:?}");
    drop(listener);
}

/// A network namespace removed on drop.
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("portside-exporter-{}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        let ns = Netns(name);
        run(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child process killed on drop.
struct Held(Child);

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET http://addr/path` from inside the namespace (its loopback is its own).
fn get_in(ns: &Netns, addr: SocketAddr, path: &str) -> String {
    let out = ns
        .command("python3")
        .args([
            "-c",
            "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode())",
            &format!("http://{addr}{path}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const LISTENERS: usize = 10_000;

#[test]
fn ten_thousand_listening_ports_stay_within_the_series_bound() {
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root: this test must run there"
        );
        eprintln!("SKIP: network namespaces need root");
        return;
    }
    if !need("python3", "python3") {
        return;
    }
    let ns = Netns::create();
    // 10,000 listeners on 127.0.0.1:20000-29999, below the ephemeral range.
    let script = format!(
        "import resource, socket, sys\n\
         resource.setrlimit(resource.RLIMIT_NOFILE, ({LISTENERS} + 100, {LISTENERS} + 100))\n\
         socks = []\n\
         for port in range(20000, 20000 + {LISTENERS}):\n    \
             s = socket.socket()\n    \
             s.bind(('127.0.0.1', port))\n    \
             s.listen(8)\n    \
             socks.append(s)\n\
         print('ready', flush=True)\n\
         sys.stdin.read()\n"
    );
    let mut child = ns
        .command("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _listeners = Held(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let cmd = ns.command(env!("CARGO_BIN_EXE_portside"));
    let exporter = Exporter::start_with(cmd, &["--interval", "1s"]);
    let text = get_in(&ns, exporter.addr, "/metrics");

    let limits = Limits::default();
    let bound = series_bound(limits);
    let series = series_count(&text);
    eprintln!("{LISTENERS} listening ports: {series} series (bound {bound})");
    assert!(series <= bound, "{series} series, bound {bound}");
    // Inbound: the test's listeners and the exporter's own.
    let ports = LISTENERS + 1;
    assert_eq!(
        sample(&text, "portside_folded_ports{direction=\"inbound\"}"),
        Some((ports - limits.max_ports) as f64),
        "folded gauge"
    );
    assert_eq!(
        sum(&text, "portside_inbound_sockets", &["state=\"LISTEN\""]) as usize,
        ports,
        "the sum over port counts every listener"
    );
    assert_eq!(
        sample(
            &text,
            "portside_inbound_sockets{proto=\"tcp\",port=\"other\",state=\"LISTEN\"}"
        ),
        Some((ports - limits.max_ports) as f64)
    );
    let own_ports = text
        .lines()
        .filter(|l| l.starts_with("portside_inbound_sockets{") && l.contains("state=\"LISTEN\""))
        .count();
    assert_eq!(
        own_ports,
        limits.max_ports + 1,
        "max-ports series and one other"
    );
    assert_eq!(
        sample(&text, "portside_folded_listeners"),
        Some((ports - limits.max_ports) as f64)
    );
}

//! Connection churn and per-listener figures on real loopback sockets, against the test's
//! own count of the connections it made and against `ss`.
//!
//! portside runs as a child streaming `--group --format json` once a second while the
//! test's client makes connections; the listener rows' rates, times the real time between
//! samples, add up to what portside counted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use socket2::{Domain, Socket, Type};

/// portside streaming `--group --format json` for `samples` samples, 1 s apart.
struct Stream {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Stream {
    fn start(filter: &str, samples: u32) -> Stream {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portside"))
            .args(["--group", "--format", "json", "--interval", "1s"])
            .args(["--count", &samples.to_string(), filter])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run portside");
        let lines = BufReader::new(child.stdout.take().unwrap());
        Stream { child, lines }
    }

    fn next(&mut self) -> Value {
        let mut line = String::new();
        let n = self.lines.read_line(&mut line).expect("read portside");
        assert!(n > 0, "portside ended early");
        serde_json::from_str(&line).expect("JSON line")
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn time_of(v: &Value) -> SystemTime {
    humantime::parse_rfc3339(v["time"].as_str().unwrap()).unwrap()
}

fn listener_row<'a>(v: &'a Value, addr: &str, port: u16) -> &'a Value {
    v["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["local_addr"] == addr && l["local_port"] == port)
        .unwrap_or_else(|| panic!("no listener {addr}:{port} in {}", v["listeners"]))
}

/// New and closed connections through a listener between two samples (rate x interval).
fn counted(prev: &Value, cur: &Value, addr: &str, port: u16) -> (f64, f64, String) {
    let secs = time_of(cur)
        .duration_since(time_of(prev))
        .unwrap()
        .as_secs_f64();
    let row = listener_row(cur, addr, port);
    let rate = |k: &str| row[k].as_f64().unwrap_or_else(|| panic!("{k}: {row}"));
    let how = row["rates"].as_str().unwrap_or("none").to_string();
    (
        rate("new_per_sec") * secs,
        rate("closed_per_sec") * secs,
        how,
    )
}

/// An accept loop that reads one byte and closes first; ends when `stop` is set.
fn serve(listener: TcpListener, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let mut byte = [0u8; 1];
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let _ = s.read(&mut byte);
                    drop(s);
                }
                Err(_) => thread::sleep(Duration::from_micros(200)),
            }
        }
    })
}

/// One request: connect (from `from` when given, with `SO_REUSEADDR`), send a byte, wait for
/// the server's close, close.
fn request(to: SocketAddr, from: Option<SocketAddr>) -> bool {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    if let Some(from) = from {
        s.set_reuse_address(true).unwrap();
        if s.bind(&from.into()).is_err() {
            return false;
        }
    }
    if s.connect(&to.into()).is_err() {
        return false;
    }
    let mut s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut byte = [0u8; 1];
    s.write_all(b"x").is_ok() && matches!(s.read(&mut byte), Ok(0))
}

/// Make connections to `to` at `rate` per second for `secs` on `threads` threads; the
/// number that completed.
fn load(to: SocketAddr, rate: u32, secs: u64, threads: u32, fixed_ports: &[u16]) -> u64 {
    let per_thread = f64::from(rate) / f64::from(threads);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let ports: Vec<u16> = fixed_ports
                .iter()
                .skip(t as usize)
                .step_by(threads as usize)
                .copied()
                .collect();
            thread::spawn(move || {
                let started = Instant::now();
                let mut done = 0u64;
                let mut i = 0usize;
                while started.elapsed() < Duration::from_secs(secs) {
                    let due = started + Duration::from_secs_f64(i as f64 / per_thread);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                    let from = (!ports.is_empty())
                        .then(|| SocketAddr::from((Ipv4Addr::LOCALHOST, ports[i % ports.len()])));
                    done += u64::from(request(to, from));
                    i += 1;
                }
                done
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

/// Count with portside while `run` makes connections to `port`; returns (made, new,
/// closed) with new and closed summed over the samples, and how they were counted.
fn measure(port: u16, run: impl FnOnce() -> u64) -> (u64, f64, f64, Vec<String>) {
    let mut stream = Stream::start(&format!("lport:{port}"), 7);
    let mut prev = stream.next();
    let made = run();
    // Let the last closes arrive, then read the remaining samples.
    let (mut new, mut closed, mut how) = (0.0, 0.0, Vec::new());
    for _ in 0..6 {
        let cur = stream.next();
        let (n, c, h) = counted(&prev, &cur, "127.0.0.1", port);
        new += n;
        closed += c;
        how.push(h);
        prev = cur;
    }
    (made, new, closed, how)
}

fn assert_within_10_percent(what: &str, got: f64, want: u64) {
    let want = want as f64;
    assert!(
        (got - want).abs() <= want * 0.1,
        "{what}: portside counted {got:.0}, the client made {want}"
    );
}

/// Free ports for fixed client ports: bound once to learn them, then released.
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

#[test]
fn reused_4_tuples_are_counted_as_new_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let to = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = serve(listener, Arc::clone(&stop));
    let ports = free_ports(50);
    // 300/s from 50 fixed client ports, the server closing first: each 4-tuple is reused
    // out of the server's TIME_WAIT six times a second.
    let (made, new, closed, how) = measure(to.port(), || load(to, 300, 3, 1, &ports));
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    eprintln!(
        "fixed ports: made {made} ({:.0}/s), portside new {new:.0} closed {closed:.0} ({how:?})",
        made as f64 / 3.0
    );
    assert!(made > 600, "the client made only {made} connections");
    assert!(how.iter().all(|h| h == "exact"), "{how:?}");
    assert_within_10_percent("new", new, made);
    assert_within_10_percent("closed", closed, made);
}

#[test]
fn ephemeral_churn_is_counted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let to = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = serve(listener, Arc::clone(&stop));
    // Asked for 2,000/s; on a shared machine the client makes what it can, and portside
    // is checked against what it made.
    let (made, new, closed, how) = measure(to.port(), || load(to, 2000, 3, 2, &[]));
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    eprintln!(
        "ephemeral: made {made} ({:.0}/s of 2000/s asked), portside new {new:.0} closed {closed:.0} ({how:?})",
        made as f64 / 3.0
    );
    assert!(made > 600, "the client made only {made} connections");
    assert!(how.iter().all(|h| h == "exact"), "{how:?}");
    assert_within_10_percent("new", new, made);
    assert_within_10_percent("closed", closed, made);
}

/// `ss -tanH state established` on `local` (address and port): its line count.
fn ss_established(local: &str) -> usize {
    let out = Command::new("ss")
        .args(["-tanH", "state", "established", "src", local])
        .output()
        .expect("run ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// A port free on both `127.0.0.1` and `::1`, with a listener on each.
fn dual_listeners() -> (TcpListener, TcpListener, u16) {
    for _ in 0..50 {
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        if let Ok(v6) = TcpListener::bind(("::1", port)) {
            return (v4, v6, port);
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

#[test]
fn each_listener_reports_only_its_own_connections() {
    // nginx-like: the same port on 127.0.0.1 and [::1], loaded over IPv4 only.
    let (v4, v6, port) = dual_listeners();
    let held: Vec<(TcpStream, TcpStream)> = (0..40)
        .map(|_| {
            let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            (c, v4.accept().unwrap().0)
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let server = serve(v4, Arc::clone(&stop));
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = Stream::start(&format!("lport:{port}"), 3);
    let first = stream.next();
    let made = load(to, 100, 1, 1, &[]);
    let second = stream.next();
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();

    let ss_v4 = ss_established(&format!("127.0.0.1:{port}"));
    let ss_v6 = ss_established(&format!("[::1]:{port}"));
    assert_eq!(ss_v4, held.len());
    assert_eq!(ss_v6, 0);
    let row4 = listener_row(&second, "127.0.0.1", port);
    let row6 = listener_row(&second, "::1", port);
    assert_eq!(row4["established"], ss_v4, "{row4}");
    assert_eq!(row6["established"], ss_v6, "{row6}");
    assert_eq!(row6["new_per_sec"], 0.0, "{row6}");
    assert_eq!(row6["closed_per_sec"], 0.0, "{row6}");
    assert!(row6["top_peers"].as_array().unwrap().is_empty(), "{row6}");
    let (new, _, how) = counted(&first, &second, "127.0.0.1", port);
    assert_eq!(how, "exact");
    assert!(new > 0.0 && made > 0, "new {new}, made {made}");
    // The grouped port row names one backlog, not the sum of both listeners'.
    let group = second["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["port"] == port && g["proto"] == "tcp")
        .unwrap();
    assert_eq!(group["backlog"], row4["backlog"], "{group}");
    drop(held);
    drop(v6);
}

//! Test helpers for `portside serve`: start it on an ephemeral loopback port, fetch over
//! plain HTTP, read the exposition; start a real Prometheus scraping it.

#![allow(dead_code, reason = "each test file uses a part")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `portside serve`, killed on drop.
pub struct Exporter {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Exporter {
    /// `portside serve --listen 127.0.0.1:0` plus `extra`, once it announced its address.
    pub fn start(extra: &[&str]) -> Exporter {
        Exporter::start_with(Command::new(env!("CARGO_BIN_EXE_portside")), extra)
    }

    /// Run `cmd` (the portside binary, possibly wrapped, e.g. by `ip netns exec`) as the
    /// exporter.
    pub fn start_with(mut cmd: Command, extra: &[&str]) -> Exporter {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portside serve");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let status = child.wait();
                panic!("portside serve ended before serving: {status:?}");
            };
            if let Some(rest) = line.strip_prefix("portside: serving http://") {
                let addr = rest.split('/').next().unwrap();
                break addr.parse().unwrap();
            }
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Exporter { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn metrics(&self) -> String {
        let (status, body) = get(self.addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Resident memory of the exporter now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.1 with `Connection: close`: (status, body).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
    {
        assert_eq!(len.parse::<usize>().unwrap(), body.len(), "whole body");
    }
    (status, body.to_string())
}

/// The value of the sample `name{labels}` (labels as printed, in order), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.parse().unwrap())
    })
}

/// Sample lines (series) of an exposition.
pub fn series_count(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

/// Sum of the samples of `name` whose label text contains every one of `having`.
pub fn sum(text: &str, name: &str, having: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| having.iter().all(|h| l.contains(h)))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

/// Whether a tool the test needs is installed; when it is not, CI fails (it must install
/// it in .ci/run) and a developer's run says why it skips.
pub fn need(tool: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is missing: .ci/run must install the Debian package {package}"
        );
        eprintln!("SKIP: {tool} not installed (apt-get install {package})");
    }
    found
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A free loopback port (bound and released; a race with other tests is possible but the
/// caller fails loudly if it loses).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Prometheus server with its own config and data dir, on loopback, killed and
/// removed on drop.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrape `target` every second.
    pub fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix(&format!("portside-exporter-prom-{}-", std::process::id()))
            .tempdir()
            .unwrap();
        let config: PathBuf = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: portside\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start prometheus");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    let mut err = String::new();
                    child
                        .stderr
                        .take()
                        .unwrap()
                        .read_to_string(&mut err)
                        .unwrap();
                    last_err = err;
                    break;
                }
                if TcpStream::connect(addr).is_ok() && get(addr, "/-/ready").0 == 200 {
                    let stderr = child.stderr.take().unwrap();
                    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
                    return Prometheus {
                        child,
                        addr,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("prometheus did not start: {last_err}");
    }

    /// An instant query through the HTTP API: (labels, value) of each result.
    pub fn query(&self, expr: &str) -> Vec<(serde_json::Value, f64)> {
        let (status, body) = get(self.addr, &format!("/api/v1/query?query={}", encode(expr)));
        assert_eq!(status, 200, "{expr}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{body}");
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap().parse().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

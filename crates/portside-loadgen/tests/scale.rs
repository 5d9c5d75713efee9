//! portside stays correct at scale: the load generator's 10k preset (listeners, established
//! pairs over five processes, TIME_WAIT, CLOSE_WAIT) in a network namespace of its own,
//! and portside's socket set and owners must equal `ss -tanpH`'s, and the live view's
//! header must show the same totals.
//!
//! Needs root (network namespaces). Without root it skips with a message, except under
//! `CI=true`, where it fails: CI must run it.
#![cfg(target_os = "linux")]

#[path = "scale/tables.rs"]
mod tables;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const LOADGEN: &str = env!("CARGO_BIN_EXE_portside-loadgen");
/// The `portside` binary of the same build, beside the load generator (`cargo test` at the
/// workspace root builds both).
static PORTSIDE_BIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let path = std::path::Path::new(LOADGEN).with_file_name("portside");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test` at the workspace root, which builds portside too",
        path.display()
    );
    path.to_string_lossy().into_owned()
});

use tables::{Table, parse_portside, parse_ss, state_counts};

#[test]
fn ten_thousand_sockets_match_ss_and_the_live_view() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tests/scale.rs needs root (network namespaces) and CI=true: CI must run it as root"
        );
        // Straight to stderr: the test harness hides `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "skipping tests/scale.rs: needs root to create a network namespace"
        );
        return;
    }
    let load = Load::start("10k");
    assert!(
        load.ready.contains("total=10"),
        "unexpected READY line: {}",
        load.ready
    );

    let (ss, ours) = stable_pair(&load.netns, || portside_table(&load.netns));
    assert!(
        ss.len() >= 9_900,
        "the 10k preset built only {} sockets",
        ss.len()
    );
    assert_same_sockets(&ss, &ours);
    let owned = ss.values().filter(|p| !p.is_empty()).count();
    assert!(owned >= 7_000, "ss saw only {owned} owned sockets");

    check_live_view(&load.netns);
}

/// The live view (real binary, in tmux, inside the namespace) shows the same totals per
/// state as `ss`, and the socket total.
fn check_live_view(netns: &str) {
    let tmux = Tmux::start(netns, &format!("{} --interval 1s", *PORTSIDE_BIN));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(500));
        last = tmux.screen();
        let Some(shown) = header_totals(&last) else {
            continue;
        };
        // Without -p: only states are needed, and the owner walk is the slow part.
        let census = state_counts(&parse_ss(&run_in(netns, &["ss", "-tanH"])));
        let total: u32 = census.values().sum();
        let wanted: Vec<(String, String)> = census
            .iter()
            .map(|(state, n)| (header_name(state).to_owned(), compact(*n)))
            .collect();
        if wanted.iter().all(|(s, n)| shown.get(s) == Some(n))
            && last.contains(&format!("{} sockets", compact(total)))
        {
            return;
        }
    }
    panic!("the live view never showed the totals of `ss`; last screen:\n{last}");
}

/// The `STATE count` pairs of the header's state line.
fn header_totals(screen: &str) -> Option<BTreeMap<String, String>> {
    let line = screen
        .lines()
        .find(|l| l.contains("ESTAB ") && l.contains("LISTEN "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    Some(
        words
            .windows(2)
            .filter(|w| w[0].chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .map(|w| (w[0].to_owned(), w[1].to_owned()))
            .collect(),
    )
}

/// The header's name for a state `ss` prints (`TIME-WAIT` -> `TIME_WAIT`, `ESTAB`).
fn header_name(ss_state: &str) -> &str {
    match ss_state {
        "ESTAB" => "ESTAB",
        "TIME-WAIT" => "TIME_WAIT",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "SYN-RECV" => "SYN_RECV",
        "SYN-SENT" => "SYN_SENT",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "LAST-ACK" => "LAST_ACK",
        other => other,
    }
}

/// The live view's compact count: `999`, `9999`, `12.3k`, `123k`.
fn compact(n: u32) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=99_999 => format!("{}.{}k", n / 1000, n % 1000 / 100),
        _ => format!("{}k", n / 1000),
    }
}

/// `ss` before and after `take`, retried until the namespace held still in between (a
/// TIME_WAIT expiring or being topped up moves the set).
fn stable_pair(netns: &str, take: impl Fn() -> Table) -> (Table, Table) {
    for _ in 0..5 {
        let before = ss_table(netns);
        let ours = take();
        if ss_table(netns) == before {
            return (before, ours);
        }
    }
    panic!("the socket set never held still for one portside sample");
}

fn assert_same_sockets(ss: &Table, ours: &Table) {
    let only_ss: Vec<_> = ss
        .keys()
        .filter(|k| !ours.contains_key(*k))
        .take(10)
        .collect();
    let only_ours: Vec<_> = ours
        .keys()
        .filter(|k| !ss.contains_key(*k))
        .take(10)
        .collect();
    assert!(
        only_ss.is_empty() && only_ours.is_empty() && ss.len() == ours.len(),
        "socket sets differ: ss {} vs portside {}\nonly in ss: {only_ss:?}\nonly in portside: {only_ours:?}",
        ss.len(),
        ours.len()
    );
    let wrong: Vec<_> = ss
        .iter()
        .filter(|(k, pids)| !pids.is_empty() && ours.get(*k) != Some(*pids))
        .map(|(k, pids)| (k, pids, ours.get(k)))
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "owners differ (socket, ss, portside): {wrong:?}"
    );
}

/// Run `args` inside `netns`; its stdout, or a panic naming the command.
fn run_in(netns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", netns])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn ss_table(netns: &str) -> Table {
    parse_ss(&run_in(netns, &["ss", "-tanpH"]))
}

fn portside_table(netns: &str) -> Table {
    parse_portside(&run_in(
        netns,
        &[PORTSIDE_BIN.as_str(), "--once", "--format", "json", "-t"],
    ))
}

/// A running load generator; stopped (SIGTERM, namespace removed) when dropped.
struct Load {
    child: Child,
    netns: String,
    ready: String,
}

impl Load {
    fn start(preset: &str) -> Load {
        let mut child = Command::new(LOADGEN)
            .args(["--preset", preset, "--hold", "240s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start portside-loadgen");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("READY ") {
                    let _ = tx.send(line);
                }
            }
        });
        let ready = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("portside-loadgen never printed READY: {e}");
            }
        };
        let netns = ready
            .split_whitespace()
            .find_map(|w| w.strip_prefix("netns="))
            .expect("READY names the namespace")
            .to_owned();
        Load {
            child,
            netns,
            ready,
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: signalling our own, not yet reaped child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.child.wait();
    }
}

/// A private tmux server inside the namespace, running one command in a 200x50 pane.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(netns: &str, command: &str) -> Tmux {
        let socket = format!("portside-scale-{}", std::process::id());
        run_in(
            netns,
            &[
                "tmux",
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
                command,
            ],
        );
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn header_totals_read_the_state_line() {
    let screen = "portside │ host 6.18 │ 10.0k sockets, 7000 with a process\n\
                  LISTEN 100  SYN_RECV 0  ESTAB 6000  CLOSE_WAIT 900  TIME_WAIT 3000\n";
    let t = header_totals(screen).unwrap();
    assert_eq!(t["TIME_WAIT"], "3000");
    assert_eq!(t["ESTAB"], "6000");
    assert_eq!(compact(10_000), "10.0k");
    assert_eq!(compact(12_345), "12.3k");
    assert_eq!(header_name("TIME-WAIT"), "TIME_WAIT");
}

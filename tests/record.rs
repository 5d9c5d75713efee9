//! `portside record` and `portside replay` against real sockets on loopback: a recorded
//! scenario replays as `--once` printed it live at each moment; a recorder killed with
//! SIGKILL leaves a readable file; bad input exits 2 with one line.

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

fn portside(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portside"))
        .arg("--no-config")
        .args(args)
        .output()
        .expect("run portside")
}

fn record(file: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_portside"))
        .args(["--no-config", "record"])
        .arg(file)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the recorder")
}

/// A loopback port free now (the listener is bound later, at a known time).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The socket set of a `--format json` line: what each socket is and who owns it.
fn socket_set(json: &serde_json::Value) -> BTreeSet<String> {
    json["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .map(|s| {
            let pids: Vec<String> = s["processes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| format!("{}/{}", p["pid"], p["name"]))
                .collect();
            format!(
                "{} {} {}:{} {}:{} {} {:?}",
                s["proto"],
                s["state"],
                s["local_addr"],
                s["local_port"],
                s["remote_addr"],
                s["remote_port"],
                s["attribution"],
                pids
            )
        })
        .collect()
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn wait_until(start: Instant, at: Duration) {
    if let Some(rest) = at.checked_sub(start.elapsed()) {
        sleep(rest);
    }
}

#[test]
fn replay_at_reproduces_once_taken_live() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join(format!("scenario-{}.portside", std::process::id()));
    let port = free_port();
    let filter = format!("port:{port}");
    let start = Instant::now();
    let mut recorder = record(&file, &["--interval", "200ms", "--duration", "8s", &filter]);
    let mut live = Vec::new();
    let mut once = |label: &str| {
        let json = json_of(&portside(&["--once", "--format", "json", &filter]));
        live.push((label.to_string(), json));
    };

    wait_until(start, Duration::from_secs(1));
    once("before the listener");
    wait_until(start, Duration::from_secs(2));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    wait_until(start, Duration::from_secs(3));
    once("listener open");
    // TIME_WAIT burst on the server side: the server closes first, then the client.
    wait_until(start, Duration::from_secs(4));
    for _ in 0..20 {
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, _) = listener.accept().unwrap();
        drop(server);
        sleep(Duration::from_millis(5));
        drop(client);
    }
    wait_until(start, Duration::from_secs(5));
    once("listener and TIME_WAIT");
    wait_until(start, Duration::from_secs(6));
    drop(listener);
    wait_until(start, Duration::from_secs(7));
    once("TIME_WAIT alone");

    let status = recorder.wait().unwrap();
    assert!(status.success(), "recorder: {status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(recorder.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("recorded"), "{err}");

    let counts: Vec<usize> = live.iter().map(|(_, j)| socket_set(j).len()).collect();
    assert_eq!(counts[0], 0, "nothing on the port before the listener");
    assert_eq!(counts[1], 1, "the listener alone");
    assert!(counts[2] >= 21, "listener + 20 TIME_WAIT: {counts:?}");
    assert!(counts[3] >= 20, "20 TIME_WAIT: {counts:?}");
    for (label, json) in &live {
        let time = json["time"].as_str().unwrap();
        let file = file.to_str().unwrap();
        let replayed = json_of(&portside(&[
            "replay", file, "--at", time, "--once", "--format", "json", &filter,
        ]));
        assert_eq!(socket_set(&replayed), socket_set(json), "{label} at {time}");
        // The replayed moment is the recorder's tick at or before the live one.
        let t =
            |j: &serde_json::Value| humantime::parse_rfc3339(j["time"].as_str().unwrap()).unwrap();
        let lag = t(json).duration_since(t(&replayed)).expect("tick before");
        assert!(lag < Duration::from_millis(800), "{label}: {lag:?}");
    }
    // The other formats print the same moment too.
    let at = live[2].1["time"].as_str().unwrap();
    let file_s = file.to_str().unwrap();
    let table = portside(&["replay", file_s, "--at", at, "--once", &filter]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("LISTEN") && text.contains("TIME-WAIT"),
        "{text}"
    );
    let groups = portside(&[
        "replay", file_s, "--at", at, "--once", "--group", "--format", "csv", &filter,
    ]);
    assert!(groups.status.success());
    assert!(String::from_utf8_lossy(&groups.stdout).contains(&port.to_string()));
}

#[test]
fn sigkill_leaves_a_readable_recording() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join(format!("killed-{}.portside", std::process::id()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let filter = format!("port:{port}");
    let mut recorder = record(&file, &["--interval", "50ms", &filter]);
    sleep(Duration::from_millis(1500));
    // Mid-write: the recorder writes a tick every 50 ms.
    recorder.kill().unwrap();
    let status = recorder.wait().unwrap();
    assert!(!status.success());
    let file_s = file.to_str().unwrap();
    let replayed = json_of(&portside(&[
        "replay", file_s, "--at", "-0s", "--once", "--format", "json",
    ]));
    let set = socket_set(&replayed);
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set.iter().next().unwrap().contains("LISTEN"), "{set:?}");
    let db = rusqlite::Connection::open(&file).unwrap();
    let ticks: i64 = db
        .query_row("SELECT count(*) FROM ticks", [], |r| r.get(0))
        .unwrap();
    assert!(ticks >= 5, "only {ticks} ticks");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join(format!("bad-{}.portside", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_portside"))
        .args(["--no-config", "record"])
        .arg(&file)
        .args(["--interval", "100ms", "--duration", "1s", "port:1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = file.to_str().unwrap();
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "not a recording\n".repeat(500)).unwrap();
    let t = text.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["replay", f, "--at", "yesterday", "--once"],
            "'yesterday'",
        ),
        (vec!["replay", f, "--at", "25:00", "--once"], "'25:00'"),
        (
            vec!["replay", f, "--at", "-10h", "--once"],
            "before the recording starts",
        ),
        (
            vec!["replay", f, "--at", "2099-01-01T00:00:00Z", "--once"],
            "after the recording ends",
        ),
        (
            vec!["replay", t, "--at", "-0s", "--once"],
            "not a portside recording",
        ),
        (
            vec!["replay", "/nonexistent/x.portside", "--at", "-0s", "--once"],
            "no such file",
        ),
        (vec!["replay", f, "--at", "-0s"], "--once"),
        (vec!["record", f, "--max-size", "12X"], "'12X'"),
        (vec!["record", f, "--retention", "soon"], "'soon'"),
        (
            vec!["record", t, "--duration", "1s"],
            "not a portside recording",
        ),
    ];
    for (args, says) in cases {
        let out = portside(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "not a recording\n".repeat(500),
        "a foreign file is never written"
    );
}

//! End to end: the real binary in tmux, watching sockets this test opens on loopback.
//! Needs tmux; without it the test says why, and fails when CI=true.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;
const PROMPT: &str = "e2e$ ";

/// A tmux server on a private socket, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(shell_cmd: &str) -> Tmux {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let tmux = Tmux {
            socket: format!("portside-e2e-{}-{nanos}", std::process::id()),
        };
        let (w, h) = (WIDTH.to_string(), HEIGHT.to_string());
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            &w,
            "-y",
            &h,
            shell_cmd,
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Types text literally (no key-name lookup).
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "e2e", "-l", text]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "e2e"])
    }

    /// Polls the screen until `ok` holds; panics with the last screen after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The grouped view's header line and its rows (lines starting with `tcp`/`udp`).
fn table(screen: &str) -> (String, Vec<String>) {
    let lines: Vec<&str> = screen.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("PROTO") && l.contains("ESTAB"))
        .unwrap_or_else(|| panic!("no grouped header on screen:\n{screen}"));
    let rows = lines[header + 1..]
        .iter()
        .take_while(|l| l.starts_with("tcp") || l.starts_with("udp"))
        .map(ToString::to_string)
        .collect();
    (lines[header].to_string(), rows)
}

/// The right-aligned cell of `row` under the column `label` of `header`.
fn cell(header: &str, row: &str, label: &str) -> String {
    let end = header.find(label).expect("column on screen") + label.len();
    let upto: String = row.chars().take(end).collect();
    upto.split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string()
}

fn row_port(row: &str) -> Option<u16> {
    row.split_whitespace().nth(1)?.parse().ok()
}

/// Whether tmux can run; without it, says why, and fails under CI.
fn need_tmux() -> bool {
    if tmux_available() {
        return true;
    }
    let msg = "tmux is not installed: cannot run the end-to-end TUI test";
    eprintln!("{msg}");
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{msg} (CI=true)"
    );
    false
}

/// A shell with a known prompt and no user configuration.
fn shell() -> String {
    format!("env -i PATH=/usr/bin:/bin TERM=xterm-256color PS1='{PROMPT}' bash --norc --noprofile")
}

/// The pid of the pane shell's child (the running portside), from `/proc/*/stat`.
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let after_comm = &stat[stat.rfind(')')? + 1..];
            let parent_pid: u32 = after_comm.split_whitespace().nth(1)?.parse().ok()?;
            (parent_pid == parent).then_some(pid)
        })
}

#[test]
fn signals_restore_the_terminal() {
    if !need_tmux() {
        return;
    }
    let tmux = Tmux::start(&shell());
    tmux.wait_for("the shell", Duration::from_secs(10), |s| {
        s.contains(PROMPT.trim_end())
    });
    let pane = tmux.run(&["display-message", "-p", "-t", "e2e", "#{pane_pid}"]);
    let shell_pid: u32 = pane.trim().parse().unwrap();
    let bin = env!("CARGO_BIN_EXE_portside");
    for signal in ["TERM", "HUP"] {
        tmux.keys(&["clear", "Enter"]);
        tmux.type_text(&format!("{bin}; echo portside-exit=$?"));
        tmux.keys(&["Enter"]);
        tmux.wait_for("the UI", Duration::from_secs(20), |s| s.contains("PROTO"));
        let pid = child_of(shell_pid).expect("portside runs under the pane's shell");
        let killed = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let screen = tmux.wait_for(
            &format!("the shell after SIG{signal}"),
            Duration::from_secs(10),
            |s| s.contains("portside-exit=") && s.trim_end().ends_with(PROMPT.trim_end()),
        );
        assert!(
            !screen.contains("PROTO"),
            "SIG{signal} left the UI on screen:\n{screen}"
        );
        assert!(
            !screen.contains("portside-exit=0"),
            "SIG{signal} is not a clean exit:\n{screen}"
        );
        // The terminal is out of raw mode: a typed line echoes and runs.
        tmux.type_text("echo cooked-$((1+1))");
        tmux.keys(&["Enter"]);
        tmux.wait_for("the shell to echo", Duration::from_secs(10), |s| {
            s.contains("cooked-2")
        });
    }
}

#[test]
fn live_view_in_tmux() {
    if !need_tmux() {
        return;
    }
    // A listener with three established connections, and a second, idle listener.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let idle = TcpListener::bind("127.0.0.1:0").unwrap();
    let idle_port = idle.local_addr().unwrap().port();
    let clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let servers: Vec<TcpStream> = (0..3).map(|_| listener.accept().unwrap().0).collect();
    let client_ports: Vec<u16> = clients
        .iter()
        .map(|c| c.local_addr().unwrap().port())
        .collect();

    let tmux = Tmux::start(&shell());
    tmux.wait_for("the shell", Duration::from_secs(10), |s| {
        s.contains(PROMPT.trim_end())
    });
    let bin = env!("CARGO_BIN_EXE_portside");
    tmux.type_text(&format!("{bin}; echo portside-exit=$?"));
    tmux.keys(&["Enter"]);

    // The listener's row shows its three established connections.
    let needle = format!(" {port} ");
    let screen = tmux.wait_for("the listener's row", Duration::from_secs(20), |s| {
        s.lines()
            .any(|l| l.starts_with("tcp") && l.contains(&needle))
    });
    let (header, rows) = table(&screen);
    let row = rows
        .iter()
        .find(|r| row_port(r) == Some(port))
        .unwrap_or_else(|| panic!("no row for {port}:\n{screen}"));
    assert_eq!(cell(&header, row, "LISTEN"), "1", "{row}");
    assert_eq!(cell(&header, row, "ESTAB"), "3", "{row}");
    assert_eq!(cell(&header, row, "TOTAL"), "4", "{row}");
    assert!(
        rows.iter().any(|r| row_port(r) == Some(idle_port)),
        "idle listener missing:\n{screen}"
    );

    // A filter typed at the prompt leaves only the listener's row.
    tmux.keys(&["/"]);
    tmux.type_text(&format!("lport:{port}"));
    let screen = tmux.wait_for("the filtered view", Duration::from_secs(10), |s| {
        s.contains("1 port,") && s.contains(&format!("/lport:{port}"))
    });
    let (header, rows) = table(&screen);
    assert_eq!(rows.len(), 1, "{screen}");
    assert_eq!(row_port(&rows[0]), Some(port));
    assert_eq!(cell(&header, &rows[0], "ESTAB"), "3");
    for other in client_ports.iter().chain([&idle_port]) {
        assert!(
            !screen.contains(&format!(" {other} ")),
            "port {other} still shown:\n{screen}"
        );
    }
    tmux.keys(&["Enter"]);
    tmux.wait_for("the footer with the filter", Duration::from_secs(10), |s| {
        s.contains(&format!("filter: lport:{port}"))
    });

    // q quits at once, restores the screen, and the shell prompt is back.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for(
        "the shell prompt after quitting",
        Duration::from_secs(10),
        |s| s.contains("portside-exit=0") && s.trim_end().ends_with(PROMPT.trim_end()),
    );
    assert!(
        !screen.contains("PROTO"),
        "the alternate screen is gone:\n{screen}"
    );
    let command = tmux.run(&[
        "display-message",
        "-p",
        "-t",
        "e2e",
        "#{pane_current_command}",
    ]);
    assert_eq!(command.trim(), "bash");
    // Keep the sockets open until the end.
    for mut s in servers {
        let _ = s.write_all(b"bye");
    }
    drop(clients);
}

//! End to end: the real binary in tmux, watching sockets this test opens on loopback.
//! Needs tmux; without it the test says why, and fails when CI=true.

#[path = "support/tmux.rs"]
mod tmux;

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tmux::{PROMPT, Tmux, child_of, need_tmux, shell};

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

/// How many TIME_WAIT sockets `ss` sees toward 127.0.0.1:`port`.
fn ss_time_wait_to(port: u16) -> usize {
    let out = Command::new("ss")
        .args([
            "-tanH",
            "state",
            "time-wait",
            "dst",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .expect("run ss");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// The number right after `addr` on screen, where the TIME_WAIT panel lists it by remote
/// address:port (the gauge line has `from` there instead).
fn count_after(screen: &str, addr: &str) -> Option<u32> {
    screen.lines().find_map(|line| {
        line.match_indices(addr).find_map(|(i, _)| {
            let rest = &line[i + addr.len()..];
            rest.starts_with(' ')
                .then(|| rest.split_whitespace().next()?.parse().ok())
                .flatten()
        })
    })
}

/// `n` client-side TIME_WAIT sockets toward `listener`: the client closes first, the
/// server reads the end of the stream and closes too. Bounded: `n` connections.
fn make_time_wait(listener: &TcpListener, n: usize) {
    use std::io::Read as _;
    let addr = listener.local_addr().unwrap();
    for _ in 0..n {
        let client = TcpStream::connect(addr).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        drop(client);
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).unwrap(), 0, "the client's FIN");
        drop(server);
    }
}

#[test]
fn timewait_panel_counts_the_sockets_we_made() {
    const MADE: usize = 200;
    if !need_tmux() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    make_time_wait(&listener, MADE);
    // The last FIN/ACK exchange is asynchronous: wait (bounded) until ss sees them all.
    let start = Instant::now();
    while ss_time_wait_to(port) < MADE && start.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ss_time_wait_to(port), MADE, "ss sees the TIME_WAIT we made");

    // Tall, so the breakdown has ~40 rows: earlier runs (TIME_WAIT lasts 60 s) leave other
    // 200-socket destinations that may rank before ours.
    let tmux = Tmux::start_sized(&shell(), 120, 100);
    tmux.wait_for("the shell", Duration::from_secs(10), |s| {
        s.contains(PROMPT.trim_end())
    });
    let pane = tmux.run(&["display-message", "-p", "-t", "e2e", "#{pane_pid}"]);
    let shell_pid: u32 = pane.trim().parse().unwrap();
    let bin = env!("CARGO_BIN_EXE_portside");
    tmux.type_text(&format!("{bin}; echo portside-exit=$?"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the UI", Duration::from_secs(20), |s| s.contains("PROTO"));

    // w: the panel lists 127.0.0.1:PORT with exactly the sockets we made, as ss counts them.
    tmux.keys(&["w"]);
    let needle = format!("127.0.0.1:{port}");
    let screen = tmux.wait_for("the TIME_WAIT panel", Duration::from_secs(20), |s| {
        s.contains("BY REMOTE ADDRESS:PORT") && count_after(s, &needle).is_some()
    });
    let shown = count_after(&screen, &needle).unwrap();
    assert_eq!(shown as usize, MADE, "{screen}");
    assert_eq!(ss_time_wait_to(port), MADE, "still there (they last 60 s)");
    // (Its gauge of ephemeral ports is checked in the render tests: gauges get fewer rows,
    // and earlier runs' destinations may take them.)
    assert!(screen.contains("client side"), "{screen}");

    // L: our listener's row; esc goes back to the ports view.
    tmux.keys(&["L"]);
    tmux.wait_for("the listener panel", Duration::from_secs(10), |s| {
        s.contains("ACCEPT QUEUE") && s.contains(&needle)
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the ports view", Duration::from_secs(10), |s| {
        s.contains("PROTO") && !s.contains("ACCEPT QUEUE")
    });

    // A signal with a panel open still restores the terminal.
    tmux.keys(&["w"]);
    tmux.wait_for("the TIME_WAIT panel again", Duration::from_secs(10), |s| {
        s.contains("BY REMOTE ADDRESS:PORT")
    });
    let pid = child_of(shell_pid).expect("portside runs under the pane's shell");
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let screen = tmux.wait_for("the shell after SIGTERM", Duration::from_secs(10), |s| {
        s.contains("portside-exit=") && s.trim_end().ends_with(PROMPT.trim_end())
    });
    assert!(
        !screen.contains("BY REMOTE"),
        "the panel is gone:\n{screen}"
    );
    tmux.type_text("echo cooked-$((2+2))");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the shell to echo", Duration::from_secs(10), |s| {
        s.contains("cooked-4")
    });
}

/// `portside --once --group --format json ARGS`: (TIME_WAIT total, alert messages).
fn printed_scope(args: &[&str]) -> (u64, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_portside"))
        .args(["--once", "--group", "--format", "json"])
        .args(args)
        .output()
        .expect("run portside");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let total = json["time_wait"]["total"]
        .as_u64()
        .expect("time_wait.total");
    let alerts = json["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["message"].as_str().expect("message").to_string())
        .collect();
    (total, alerts)
}

/// The TIME_WAIT panel's title line (`TIME_WAIT   150 sockets, ...   filter: ...`).
fn panel_title(screen: &str) -> Option<&str> {
    screen
        .lines()
        .find(|l| l.trim_start().starts_with("TIME_WAIT "))
}

/// The count on the TIME_WAIT panel's title line.
fn panel_total(screen: &str) -> Option<u64> {
    let rest = panel_title(screen)?
        .trim_start()
        .strip_prefix("TIME_WAIT")?;
    rest.split_whitespace()
        .next()?
        .replace(',', "")
        .parse()
        .ok()
}

#[test]
fn one_filter_scope_in_printed_output_and_the_live_view() {
    const MADE: usize = 150;
    if !need_tmux() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    make_time_wait(&listener, MADE);
    let start = Instant::now();
    while ss_time_wait_to(port) < MADE && start.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ss_time_wait_to(port), MADE, "ss sees the TIME_WAIT we made");
    // An established pair elsewhere: `established>0` fires host-wide, never in the scope.
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(other.local_addr().unwrap()).unwrap();
    let _server = other.accept().unwrap();

    let filter = format!("rport:{port}");
    let alerts = ["--alert", "time_wait>100", "--alert", "established>0"];
    let mut args: Vec<&str> = alerts.to_vec();
    args.push(&filter);
    let (total, fired) = printed_scope(&args);
    assert_eq!(total as usize, MADE, "printed: the filter's TIME_WAIT only");
    assert_eq!(fired.len(), 1, "printed alerts: {fired:?}");
    assert!(
        fired[0].starts_with(&format!("{MADE} sockets in TIME_WAIT")),
        "{fired:?}"
    );
    let (_, unscoped) = printed_scope(&alerts);
    assert!(
        unscoped.iter().any(|m| m.contains("ESTABLISHED")),
        "host-wide the ESTABLISHED alert fires: {unscoped:?}"
    );

    // The live view, started without a filter and an hour between samples: the panel can
    // only follow the filter typed below if the engine re-derives the last sample at once.
    let tmux = Tmux::start_sized(&shell(), 160, 50);
    tmux.wait_for("the shell", Duration::from_secs(10), |s| {
        s.contains(PROMPT.trim_end())
    });
    let bin = env!("CARGO_BIN_EXE_portside");
    tmux.type_text(&format!(
        "{bin} --interval 1h --alert 'time_wait>100' --alert 'established>0'; echo portside-exit=$?"
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the UI", Duration::from_secs(20), |s| s.contains("PROTO"));
    tmux.keys(&["/"]);
    tmux.type_text(&filter);
    tmux.keys(&["Enter"]);
    tmux.keys(&["w"]);
    // The panel says which filter it describes (the footer shows the typed one at once).
    let needle = format!("filter: {filter}");
    let screen = tmux.wait_for("the scoped TIME_WAIT panel", Duration::from_secs(20), |s| {
        panel_title(s).is_some_and(|t| t.contains(&needle)) && panel_total(s) == Some(total)
    });
    // The header's alert line: the one alert of the scope, as printed (cut to the width).
    let alert_line = screen
        .lines()
        .find(|l| l.starts_with("WARNING") || l.starts_with("CRITICAL"))
        .unwrap_or_else(|| panic!("no alert line:\n{screen}"));
    let head: String = fired[0].chars().take(40).collect();
    assert!(
        alert_line.contains(&head),
        "{alert_line}\n{fired:?}\n{screen}"
    );
    assert!(
        !alert_line.contains("more)"),
        "only one alert in scope: {alert_line}"
    );
    assert!(!screen.contains("ESTABLISHED (alert"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for("the shell", Duration::from_secs(10), |s| {
        s.contains("portside-exit=0")
    });
}

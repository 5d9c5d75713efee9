//! Every signal whose default action ends a process leaves the terminal as the shell
//! expects it (issue 16, defects 2 and 6): cooked mode, the normal screen, no mouse
//! reporting, no bracketed paste; exit status 128 + the signal. And a terminal that goes
//! away (its tmux server killed) ends the live view with 129, never a panic (101).

#[path = "support/tmux.rs"]
mod tmux;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tmux::{PROMPT, Tmux, child_of, need_tmux, shell};

/// tmux's view of the pane's terminal modes: alternate screen, any mouse mode
/// (`#{alternate_on} #{mouse_any_flag}`; this tmux has no format for bracketed paste).
fn modes(tmux: &Tmux) -> String {
    tmux.run(&[
        "display-message",
        "-p",
        "-t",
        "e2e",
        "#{alternate_on} #{mouse_any_flag}",
    ])
    .trim()
    .to_string()
}

#[test]
fn every_fatal_signal_restores_the_terminal() {
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
    let rtmin = libc::SIGRTMIN();
    let signals: Vec<(String, i32)> = [
        ("USR1", libc::SIGUSR1),
        ("USR2", libc::SIGUSR2),
        ("ALRM", libc::SIGALRM),
        ("VTALRM", libc::SIGVTALRM),
        ("PROF", libc::SIGPROF),
        ("XCPU", libc::SIGXCPU),
        ("XFSZ", libc::SIGXFSZ),
        ("IO", libc::SIGIO),
        ("PWR", libc::SIGPWR),
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("TERM", libc::SIGTERM),
        ("SEGV", libc::SIGSEGV),
        ("ABRT", libc::SIGABRT),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .chain([(format!("{rtmin}"), rtmin)])
    .collect();
    for (name, number) in signals {
        tmux.keys(&["clear", "Enter"]);
        tmux.type_text(&format!("ulimit -c 0; {bin}; echo portside-exit=$?"));
        tmux.keys(&["Enter"]);
        tmux.wait_for("the UI", Duration::from_secs(20), |s| s.contains("PROTO"));
        assert_eq!(modes(&tmux), "1 1", "the live view's modes");
        let pid = child_of(shell_pid).expect("portside runs under the pane's shell");
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let want = format!("portside-exit={}", 128 + number);
        let screen = tmux.wait_for(
            &format!("the shell after SIG{name}"),
            Duration::from_secs(10),
            |s| s.contains("portside-exit=") && s.trim_end().ends_with(PROMPT.trim_end()),
        );
        assert!(screen.contains(&want), "SIG{name}: want {want}:\n{screen}");
        assert!(
            !screen.contains("PROTO"),
            "SIG{name} left the UI:\n{screen}"
        );
        assert_eq!(modes(&tmux), "0 0", "SIG{name} left a mode on");
        // Out of raw mode: a typed line echoes and runs.
        tmux.type_text("echo cooked-$((1+1))");
        tmux.keys(&["Enter"]);
        tmux.wait_for(
            &format!("echo after SIG{name}"),
            Duration::from_secs(10),
            |s| s.contains("cooked-2"),
        );
    }
}

#[test]
fn a_terminal_that_goes_away_ends_with_129_not_a_panic() {
    if !need_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status");
    let bin = env!("CARGO_BIN_EXE_portside");
    // The wrapper ignores SIGHUP itself so it outlives the pane and records the status;
    // portside installs its own handlers. stderr stays on the dying terminal.
    let cmd = format!(
        "sh -c 'trap \"\" HUP; {bin}; echo $? > {}'",
        status.display()
    );
    for run in 0..3 {
        let tmux = Tmux::start_sized(&cmd, 100, 30);
        tmux.wait_for("the UI", Duration::from_secs(20), |s| s.contains("PROTO"));
        tmux.run(&["kill-server"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !status.exists() || std::fs::read_to_string(&status).unwrap().is_empty() {
            assert!(
                Instant::now() < deadline,
                "run {run}: portside did not exit"
            );
            thread::sleep(Duration::from_millis(50));
        }
        thread::sleep(Duration::from_millis(50));
        let code = std::fs::read_to_string(&status).unwrap();
        assert_eq!(code.trim(), "129", "run {run}: exit status");
        std::fs::remove_file(&status).unwrap();
    }
}

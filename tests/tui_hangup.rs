//! The live view must end when its terminal goes away. Regression: a killed tmux session
//! left portside spinning on a hung-up pty (crossterm's poll loops on `read() == 0`) with
//! its main thread blocked on the input thread, swallowing even SIGTERM.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

fn tmux(socket: &str, args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .args(["-L", socket, "-f", "/dev/null"])
        .args(args)
        .output()
        .expect("run tmux")
}

fn alive(pid: u32) -> bool {
    // A zombie has no threads left to spin; count it as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn live_view_exits_when_its_terminal_is_killed() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tmux is missing (CI must install it)"
        );
        eprintln!("SKIPPED: tmux is not installed");
        return;
    }
    let socket = format!("portside-hangup-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_portside");
    let out = tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            "-P",
            "-F",
            "#{pane_pid}",
            bin,
            "--no-config",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    // Wait until the live view has drawn its first screen.
    let started = Instant::now();
    loop {
        let screen =
            String::from_utf8_lossy(&tmux(&socket, &["capture-pane", "-p"]).stdout).into_owned();
        if screen.contains("LISTEN") || screen.contains("Proto") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no screen: {screen}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert!(alive(pid));
    tmux(&socket, &["kill-server"]);
    let killed = Instant::now();
    while alive(pid) && killed.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(50));
    }
    let gone = !alive(pid);
    if !gone {
        // Do not leave a spinning process behind.
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(
        gone,
        "portside ({pid}) still runs 5 s after its terminal was killed"
    );
}

//! The tmux harness of the end-to-end TUI tests: a private tmux server running a clean
//! shell, keys in, screen text out, and the pid of what runs in the pane.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const WIDTH: u16 = 120;
pub const HEIGHT: u16 = 40;
pub const PROMPT: &str = "e2e$ ";

/// A tmux server on a private socket, killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A `WIDTH` x `HEIGHT` pane running `shell_cmd`.
    pub fn start(shell_cmd: &str) -> Tmux {
        Tmux::start_sized(shell_cmd, WIDTH, HEIGHT)
    }

    /// A `width` x `height` pane running `shell_cmd`.
    pub fn start_sized(shell_cmd: &str, width: u16, height: u16) -> Tmux {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let tmux = Tmux {
            socket: format!("portside-e2e-{}-{nanos}", std::process::id()),
        };
        let (w, h) = (width.to_string(), height.to_string());
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

    pub fn run(&self, args: &[&str]) -> String {
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

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Types text literally (no key-name lookup).
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "e2e", "-l", text]);
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "e2e"])
    }

    /// Polls the screen until `ok` holds; panics with the last screen after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
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

pub fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether tmux can run; without it, says why, and fails under CI.
pub fn need_tmux() -> bool {
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
pub fn shell() -> String {
    format!("env -i PATH=/usr/bin:/bin TERM=xterm-256color PS1='{PROMPT}' bash --norc --noprofile")
}

/// The pid of the pane shell's child (the running portside), from `/proc/*/stat`.
pub fn child_of(parent: u32) -> Option<u32> {
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

//! A network namespace a test creates and removes, and processes it runs inside it. Root
//! only: `need_root` says why a test skips, and fails instead under `CI=true`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether we are root; otherwise prints why the test skips (and fails when `CI=true`).
pub fn need_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: CI runs as root; this test must run there"
    );
    eprintln!("{test}: skipped: needs root to create a network namespace");
    false
}

/// A named network namespace with `lo` up; deleted (with what runs in it) when dropped.
pub struct Netns {
    pub name: String,
    children: Vec<Child>,
}

impl Netns {
    /// `portside-<tag>-<pid>-<n>`: unique per test process and call.
    pub fn new(tag: &str) -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "portside-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Netns {
            name,
            children: Vec::new(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Output of a command run inside the namespace, which must succeed.
    pub fn output(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().expect("run");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Lines `ss -tanH ARGS` prints inside the namespace.
    pub fn ss_count(&self, args: &str) -> usize {
        let mut all = vec!["-tanH"];
        all.extend(args.split_whitespace());
        self.output("ss", &all).lines().count()
    }

    /// Starts a Python script in the namespace with piped stdin/stdout; it is killed
    /// when the namespace is dropped. `ip netns exec` execs it: its pid is the child's.
    pub fn spawn_python(&mut self, script: &str, args: &[&str]) -> Helper {
        let mut child = self
            .command("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let helper = Helper {
            pid: child.id(),
            stdin: child.stdin.take().expect("stdin"),
            stdout: BufReader::new(child.stdout.take().expect("stdout")),
        };
        self.children.push(child);
        helper
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A helper process: its pid, and lines in and out.
pub struct Helper {
    pub pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Helper {
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("helper output");
        assert!(!line.is_empty(), "helper exited");
        line.trim_end().to_string()
    }

    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("helper input");
        self.stdin.flush().expect("helper input");
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

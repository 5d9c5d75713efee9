//! Child processes of the test binary that hold sockets, for the live tests and the benchmark.
//!
//! A child is this test binary run again with one `#[ignore]`d test selected and an environment
//! marker; it reports its socket inodes on stdout, opens one more on "open", and exits when
//! its stdin closes.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

const HOLD_ENV: &str = "PORTSIDE_TEST_HOLD_SOCKETS";

/// The uid of the holders' sockets: the children run as this process's effective uid.
pub fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The inode of an open fd (for a socket: the number `sock_diag` and `socket:[N]` show).
pub fn inode_of(fd: impl AsFd) -> u64 {
    rustix::fs::fstat(fd).expect("fstat").st_ino
}

/// The rest of the first line of `out` that starts with `prefix` (libtest prints its own lines).
fn read_until_prefix(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read holder");
        assert!(n > 0, "holder exited before printing {prefix}");
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
}

/// Child processes of this test binary, each holding `per_child` TCP sockets.
pub struct Holders {
    children: Vec<(Child, ChildStdin, BufReader<ChildStdout>)>,
    pub inodes: Vec<Vec<u64>>,
}

impl Holders {
    pub fn spawn(count: usize, per_child: usize) -> Holders {
        let exe = std::env::current_exe().expect("current_exe");
        let mut children = Vec::new();
        let mut inodes = Vec::new();
        for _ in 0..count {
            let mut child = Command::new(&exe)
                .args([
                    "--exact",
                    "source::owners::holders::hold_sockets_child",
                    "--ignored",
                    "--nocapture",
                ])
                .env(HOLD_ENV, per_child.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn holder");
            let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
            let line = read_until_prefix(&mut stdout, "inodes:");
            let held: Vec<u64> = line
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            assert_eq!(held.len(), per_child);
            let stdin = child.stdin.take().expect("stdin");
            children.push((child, stdin, stdout));
            inodes.push(held);
        }
        Holders { children, inodes }
    }

    pub fn pid(&self, i: usize) -> u32 {
        self.children[i].0.id()
    }

    /// Make holder `i` open one more socket; returns its inode.
    pub fn open_one(&mut self, i: usize) -> u64 {
        let (_, stdin, stdout) = &mut self.children[i];
        stdin.write_all(b"open\n").expect("poke holder");
        read_until_prefix(stdout, "opened:")
            .trim()
            .parse()
            .expect("inode")
    }

    pub fn stop(&mut self, i: usize) {
        let (child, _, _) = &mut self.children[i];
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Holders {
    fn drop(&mut self) {
        for (child, stdin, _) in &mut self.children {
            let _ = stdin.write_all(b"");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An unbound TCP socket: it has an inode and an fd, and uses no port.
fn tcp_socket() -> std::os::fd::OwnedFd {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

#[test]
#[ignore = "child process of Holders::spawn"]
fn hold_sockets_child() {
    let Some(n) = std::env::var(HOLD_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    )
    .expect("raise fd limit");
    let mut held = Vec::with_capacity(n);
    let mut line = String::from("inodes:");
    for _ in 0..n {
        let fd = tcp_socket();
        line.push(' ');
        line.push_str(&inode_of(&fd).to_string());
        held.push(fd);
    }
    println!("{line}");
    // Hold until the parent closes stdin (or dies); "open" asks for one more socket.
    let mut command = String::new();
    while std::io::stdin()
        .read_line(&mut command)
        .is_ok_and(|n| n > 0)
    {
        if command.trim() == "open" {
            let fd = tcp_socket();
            println!("opened: {}", inode_of(&fd));
            held.push(fd);
        }
        command.clear();
    }
    drop(held);
}

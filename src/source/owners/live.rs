//! Owner-join tests on the real `/proc`: this process's listener, child processes holding
//! sockets, a child without privilege, and the scale benchmark.
//!
//! Children are this test binary run again with one `#[ignore]`d test selected and an
//! environment marker; they report their socket inodes on stdout and exit when stdin closes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::fixture::socket;
use super::{Attribution, OwnerJoin};
use crate::model::{Owners, Socket, Unattributed};

const HOLD_ENV: &str = "PORTSIDE_TEST_HOLD_SOCKETS";
const DENIED_ENV: &str = "PORTSIDE_TEST_DENIED_INODE";
const NOBODY: u32 = 65534;

fn inode_of(fd: impl AsFd) -> u64 {
    rustix::fs::fstat(fd).expect("fstat").st_ino
}

fn owner_pids(attr: &Attribution, s: &Socket) -> Vec<u32> {
    match s.owners {
        Owners::Known(n) => attr.owner_sets[n as usize]
            .iter()
            .map(|&i| attr.processes[i as usize].pid)
            .collect(),
        _ => Vec::new(),
    }
}

fn own_comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .expect("comm")
        .trim_end()
        .to_owned()
}

#[test]
fn own_listener_is_attributed_to_this_process() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let uid = rustix::process::geteuid().as_raw();
    let mut sockets = vec![socket(inode_of(&listener), 1, uid)];
    let mut join = OwnerJoin::new(PathBuf::from("/proc"));
    let attr = join.attribute(&mut sockets);
    assert_eq!(owner_pids(&attr, &sockets[0]), [std::process::id()]);
    let me = &attr.processes[0];
    assert_eq!(me.name, own_comm());
    assert_eq!(me.uid, rustix::process::getuid().as_raw());
    assert!(join.last_stats().full_walk);

    // A second tick re-reads at most the processes that changed meanwhile, not all of them.
    let attr = join.attribute(&mut sockets);
    assert_eq!(owner_pids(&attr, &sockets[0]), [std::process::id()]);
    let stats = join.last_stats();
    assert!(!stats.full_walk);
    assert!(stats.pids_scanned < stats.pids, "{stats:?}");
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
struct Holders {
    children: Vec<(Child, ChildStdin, BufReader<ChildStdout>)>,
    inodes: Vec<Vec<u64>>,
}

impl Holders {
    fn spawn(count: usize, per_child: usize) -> Holders {
        let exe = std::env::current_exe().expect("current_exe");
        let mut children = Vec::new();
        let mut inodes = Vec::new();
        for _ in 0..count {
            let mut child = Command::new(&exe)
                .args([
                    "--exact",
                    "source::owners::live::hold_sockets_child",
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

    fn pid(&self, i: usize) -> u32 {
        self.children[i].0.id()
    }

    /// Make holder `i` open one more socket; returns its inode.
    fn open_one(&mut self, i: usize) -> u64 {
        let (_, stdin, stdout) = &mut self.children[i];
        stdin.write_all(b"open\n").expect("poke holder");
        read_until_prefix(stdout, "opened:")
            .trim()
            .parse()
            .expect("inode")
    }

    fn stop(&mut self, i: usize) {
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

#[test]
fn child_holders_are_found_and_dropped_when_they_exit() {
    // 1500 sockets each: big enough to be read as probe ranges plus a tail listing.
    const PER: usize = 1500;
    let mut holders = Holders::spawn(2, PER);
    let mut sockets: Vec<Socket> = holders
        .inodes
        .iter()
        .flatten()
        .map(|&i| socket(i, 1, 0))
        .collect();
    let mut join = OwnerJoin::new(PathBuf::from("/proc"));
    let attr = join.attribute(&mut sockets);
    for (i, s) in sockets.iter().enumerate() {
        assert_eq!(owner_pids(&attr, s), [holders.pid(i / PER)], "socket {i}");
    }
    let name = &attr.processes[0].name;
    assert_eq!(name, &own_comm(), "children run this test binary");

    // A new connection in holder 1: found the same tick without listing its 1500 fds.
    let inode = holders.open_one(1);
    sockets.push(socket(inode, 1, 0));
    let attr = join.attribute(&mut sockets);
    assert_eq!(owner_pids(&attr, &sockets[2 * PER]), [holders.pid(1)]);
    let stats = join.last_stats();
    assert!(
        stats.fds_listed < PER,
        "holder 1 was listed in full: {stats:?}"
    );

    holders.stop(0);
    let attr = join.attribute(&mut sockets);
    for s in &sockets[..PER] {
        assert_eq!(s.owners, Owners::None(Unattributed::NotFound));
    }
    for s in &sockets[PER..] {
        assert_eq!(owner_pids(&attr, s), [holders.pid(1)]);
    }
}

/// Where `nobody` may execute this test binary: a hard link (or copy) in a fresh temp dir.
fn exe_for_nobody(dir: &Path) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let target = dir.join("portside-test");
    if std::fs::hard_link(&exe, &target).is_err() {
        std::fs::copy(&exe, &target).expect("copy test binary");
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).expect("chmod exe");
    target
}

#[test]
fn unprivileged_join_reports_permission_denied() {
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run this test as root"
        );
        eprintln!("skipped: needs root to start a child as uid {NOBODY}");
        return;
    }
    let root_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = exe_for_nobody(dir.path());
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "source::owners::live::unprivileged_child",
        "--ignored",
        "--nocapture",
    ])
    .env(DENIED_ENV, inode_of(&root_listener).to_string())
    .current_dir("/");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run child as nobody");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("unprivileged-child-ok"),
        "child did not run the checks:\n{text}"
    );
}

#[test]
#[ignore = "child process of unprivileged_join_reports_permission_denied"]
fn unprivileged_child() {
    let Some(root_inode) = std::env::var(DENIED_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    assert_eq!(rustix::process::geteuid().as_raw(), NOBODY);
    let mine = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut sockets = vec![
        socket(inode_of(&mine), 1, NOBODY),
        socket(root_inode, 2, 0),
        socket(0, 3, 0),
        // No process holds inode 1, and it is "ours": not found rather than denied.
        socket(1, 4, NOBODY),
    ];
    let mut join = OwnerJoin::new(PathBuf::from("/proc"));
    let attr = join.attribute(&mut sockets);
    assert_eq!(owner_pids(&attr, &sockets[0]), [std::process::id()]);
    assert_eq!(
        sockets[1].owners,
        Owners::None(Unattributed::PermissionDenied)
    );
    assert_eq!(sockets[2].owners, Owners::None(Unattributed::NoInode));
    assert_eq!(sockets[3].owners, Owners::None(Unattributed::NotFound));
    assert!(!attr.privileged);
    assert_eq!(attr.coverage.permission_denied, 1);
    println!("unprivileged-child-ok");
}

/// CPU time (user, system) this process has used so far, all threads.
fn cpu_time() -> (Duration, Duration) {
    // SAFETY: `getrusage` fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &raw mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// Wall and CPU time of `f`: on a shared machine wall time includes waiting for a core.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    user: Duration,
    sys: Duration,
}

impl std::fmt::Debug for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{:.1} ms (cpu: user {:.1} ms, sys {:.1} ms)",
            ms(self.wall),
            ms(self.user),
            ms(self.sys)
        )
    }
}

fn timed(f: impl FnOnce()) -> Timing {
    let (t, (u, s)) = (Instant::now(), cpu_time());
    f();
    let (u2, s2) = cpu_time();
    Timing {
        wall: t.elapsed(),
        user: u2.saturating_sub(u),
        sys: s2.saturating_sub(s),
    }
}

/// Best of `runs` timings of `f` (by wall time).
fn best_of(runs: usize, mut f: impl FnMut()) -> Timing {
    (0..runs)
        .map(|_| timed(&mut f))
        .min_by_key(|t| t.wall)
        .unwrap_or(Timing {
            wall: Duration::ZERO,
            user: Duration::ZERO,
            sys: Duration::ZERO,
        })
}

/// The scale benchmark: `PORTSIDE_BENCH_PROCS` (5) children x `PORTSIDE_BENCH_FDS` (14000)
/// sockets, plus 30k inode-0 sockets (`TIME_WAIT`) in the sample.
/// `cargo test --release --lib -- --ignored bench_walk --nocapture`
///
/// "cold" is the first join ever over freshly spawned holders (the kernel has no dentries for
/// their fds yet); "new join" is a fresh `OwnerJoin` over fds listed before (`portside --once`
/// on a host where something listed them already). Measured on the 2-core dev VM, Linux 6.18,
/// 70,000 socket fds in 5 processes, with other builds running (best of 3):
///
/// | walk                                        | time     |
/// |---------------------------------------------|----------|
/// | procfs crate `Process::fd()`, 1 thread      | 495 ms   |
/// | raw getdents + readlinkat, 1 thread         | 381 ms   |
/// | raw, probe ranges + tail, 1 thread          | 190 ms   |
/// | raw, probe ranges + tail, 2 threads         | see below|
/// | steady tick, nothing changed, 100k sockets  | 4.3 ms   |
#[test]
#[ignore = "benchmark: run explicitly with --release"]
fn bench_walk() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (procs, per) = (
        env("PORTSIDE_BENCH_PROCS", 5),
        env("PORTSIDE_BENCH_FDS", 14_000),
    );
    let root = PathBuf::from("/proc");
    let sample = |holders: &Holders| {
        let mut sockets: Vec<Socket> = holders
            .inodes
            .iter()
            .flatten()
            .map(|&i| socket(i, 1, 0))
            .collect();
        sockets.extend((0..30_000).map(|_| socket(0, 2, 0)));
        sockets
    };
    let join_once = |threads: usize, sockets: &mut Vec<Socket>| {
        let mut join = OwnerJoin::new(root.clone());
        join.set_max_threads(threads);
        let mut attr = None;
        let took = timed(|| attr = Some(join.attribute(sockets)));
        assert_eq!(attr.map(|a| a.coverage.attributed), Some(procs * per));
        took
    };
    let mut cold = Vec::new();
    for threads in [1, 2] {
        let holders = Holders::spawn(procs, per);
        cold.push((threads, join_once(threads, &mut sample(&holders))));
    }
    let holders = Holders::spawn(procs, per);
    let mut sockets = sample(&holders);
    let procfs_walk = best_of(3, || {
        let mut n = 0usize;
        for p in procfs::process::all_processes_with_root(&root)
            .expect("procfs")
            .flatten()
        {
            if let Ok(fds) = p.fd() {
                n += fds
                    .flatten()
                    .filter(|f| matches!(f.target, procfs::process::FDTarget::Socket(_)))
                    .count();
            }
        }
        assert!(n >= procs * per);
    });
    let new1 = best_of(3, || {
        join_once(1, &mut sockets);
    });
    let new2 = best_of(3, || {
        join_once(2, &mut sockets);
    });
    let mut join = OwnerJoin::new(root.clone());
    join.attribute(&mut sockets);
    let steady = best_of(10, || {
        join.attribute(&mut sockets);
    });
    let stats = join.last_stats();
    // A busy server: one holder's fd count changes every tick (one new connection).
    let mut holders = holders;
    let churn = (0..5)
        .map(|_| {
            let inode = holders.open_one(0);
            sockets.push(socket(inode, 1, 0));
            let took = timed(|| {
                join.attribute(&mut sockets);
            });
            assert!(matches!(
                sockets.last().map(|s| s.owners),
                Some(Owners::Known(_))
            ));
            took
        })
        .min_by_key(|t| t.wall);
    let churn_stats = join.last_stats();
    println!(
        "bench_walk: {} socket fds in {procs} processes, {} sockets in the sample\n  \
         cold (fds never listed): {cold:?}\n  procfs crate walk, 1 thread: {procfs_walk:?}\n  \
         new join, 1 thread: {new1:?}\n  new join, 2 threads: {new2:?}\n  \
         steady tick: {steady:?} ({stats:?})\n  tick with one holder changed: {churn:?} ({churn_stats:?})",
        procs * per,
        sockets.len(),
    );
}

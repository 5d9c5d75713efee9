//! Owner-join tests on the real `/proc`: this process's listener, child processes holding
//! sockets, and a child without privilege (this test binary run again as `nobody`).

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::fixture::socket;
use super::holders::{Holders, inode_of, my_uid};
use super::{Attribution, OwnerJoin};
use crate::model::{Owners, Socket, Unattributed};

const DENIED_ENV: &str = "PORTSIDE_TEST_DENIED_INODE";
const NOBODY: u32 = 65534;

pub(super) fn owner_pids(attr: &Attribution, s: &Socket) -> Vec<u32> {
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

#[test]
fn child_holders_are_found_and_dropped_when_they_exit() {
    // 1500 sockets each: big enough to be read as probe ranges plus a tail listing (fewer
    // only where the fd hard limit is lower).
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    let limit = hard.map_or(usize::MAX, |h| usize::try_from(h).unwrap_or(usize::MAX));
    let per = 1500.min(limit.saturating_sub(64));
    let mut holders = Holders::spawn(2, per);
    let mut sockets: Vec<Socket> = holders
        .inodes
        .iter()
        .flatten()
        .map(|&i| socket(i, 1, my_uid()))
        .collect();
    let mut join = OwnerJoin::new(PathBuf::from("/proc"));
    let attr = join.attribute(&mut sockets);
    for (i, s) in sockets.iter().enumerate() {
        assert_eq!(owner_pids(&attr, s), [holders.pid(i / per)], "socket {i}");
    }
    let name = &attr.processes[0].name;
    assert_eq!(name, &own_comm(), "children run this test binary");

    // A new connection in holder 1: found the same tick without listing its 1500 fds.
    let inode = holders.open_one(1);
    sockets.push(socket(inode, 1, my_uid()));
    let attr = join.attribute(&mut sockets);
    assert_eq!(owner_pids(&attr, &sockets[2 * per]), [holders.pid(1)]);
    let stats = join.last_stats();
    assert!(
        stats.fds_listed < per,
        "holder 1 was listed in full: {stats:?}"
    );

    holders.stop(0);
    let attr = join.attribute(&mut sockets);
    for s in &sockets[..per] {
        assert_eq!(s.owners, Owners::None(Unattributed::NotFound));
    }
    for s in &sockets[per..] {
        assert_eq!(owner_pids(&attr, s), [holders.pid(1)]);
    }
}

#[test]
fn prefetch_on_another_thread_overlaps_the_dump() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let uid = rustix::process::geteuid().as_raw();
    let mut join = OwnerJoin::new(PathBuf::from("/proc"));
    let mut sockets = std::thread::scope(|s| {
        let walk = s.spawn(|| join.prefetch());
        // The sampler would dump the sockets here, meanwhile.
        let sockets = vec![socket(inode_of(&listener), 1, uid)];
        walk.join().expect("prefetch thread");
        sockets
    });
    let attr = join.attribute(&mut sockets);
    assert_eq!(owner_pids(&attr, &sockets[0]), [std::process::id()]);
    let stats = join.last_stats();
    assert!(
        stats.full_walk && stats.pids_scanned < stats.pids,
        "{stats:?}"
    );
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

//! Fake `/proc` trees in a tempdir for the owner-join tests: `<pid>/{stat,cmdline,status}` and
//! `<pid>/fd/<n>` symlinks to `socket:[N]` (dangling symlinks readlink fine).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::model::{Family, Owners, Proto, Socket, TcpState};
use crate::source::owners::Attribution;

/// A fake proc root that the test mutates between ticks.
pub struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    pub fn new() -> FakeProc {
        // tmpfs when there is one: creating hundreds of fake processes is then cheap.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        };
        FakeProc {
            dir: dir.expect("tempdir"),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn pid_dir(&self, pid: u32) -> PathBuf {
        self.dir.path().join(pid.to_string())
    }

    /// A process with `comm`, start time, real uid and argv; its fds are added separately.
    pub fn add_process(&self, pid: u32, comm: &str, start_time: u64, uid: u32, argv: &[&str]) {
        let dir = self.pid_dir(pid);
        fs::create_dir_all(dir.join("fd")).expect("mkdir");
        self.write_stat(pid, &stat_line(pid, comm, start_time));
        let mut cmdline = argv.join("\0");
        cmdline.push('\0');
        fs::write(dir.join("cmdline"), cmdline).expect("cmdline");
        let status = format!(
            "Name:\t{comm}\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
        );
        fs::write(dir.join("status"), status).expect("status");
    }

    pub fn write_stat(&self, pid: u32, contents: &str) {
        fs::write(self.pid_dir(pid).join("stat"), contents).expect("stat");
    }

    /// Point fd `fd` of `pid` at `target` (`"socket:[N]"`, `"/dev/null"`, ...).
    pub fn add_fd(&self, pid: u32, fd: u32, target: &str) {
        symlink(target, self.pid_dir(pid).join("fd").join(fd.to_string())).expect("symlink");
    }

    pub fn add_socket(&self, pid: u32, fd: u32, inode: u64) {
        self.add_fd(pid, fd, &format!("socket:[{inode}]"));
    }

    pub fn remove_fd(&self, pid: u32, fd: u32) {
        fs::remove_file(self.pid_dir(pid).join("fd").join(fd.to_string())).expect("rm fd");
    }

    pub fn remove_process(&self, pid: u32) {
        fs::remove_dir_all(self.pid_dir(pid)).expect("rm pid");
    }

    /// Re-point fd `fd` and put back the fd dir's mtime: on a fake tree this is what a close +
    /// open with an equal fd count looks like on procfs (no signature change).
    pub fn swap_fd_unnoticed(&self, pid: u32, fd: u32, target: &str) {
        let fd_dir = self.pid_dir(pid).join("fd");
        let mtime = mtime(&fd_dir);
        self.remove_fd(pid, fd);
        self.add_fd(pid, fd, target);
        set_mtime(&fd_dir, mtime);
    }
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime")
}

fn set_mtime(path: &Path, t: SystemTime) {
    fs::File::open(path)
        .and_then(|f| f.set_modified(t))
        .expect("set mtime");
}

/// A `/proc/<pid>/stat` line with every field up to 52; start time is field 22.
pub fn stat_line(pid: u32, comm: &str, start_time: u64) -> String {
    format!(
        "{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 1 1 0 0 20 0 1 0 {start_time} 1000000 100 \
         18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    )
}

/// A TCP socket on 127.0.0.1:`port` with the given inode and uid, owners unset.
pub fn socket(inode: u64, port: u16, uid: u32) -> Socket {
    let state = if inode == 0 {
        TcpState::TimeWait
    } else {
        TcpState::Established
    };
    Socket {
        proto: Proto::Tcp,
        family: Family::V4,
        state,
        local: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        remote: SocketAddr::from((Ipv4Addr::LOCALHOST, 40000)),
        recv_q: 0,
        send_q: 0,
        uid,
        inode,
        cookie: inode,
        owners: Owners::None(crate::model::Unattributed::NotFound),
    }
}

/// The (pid, name) owners of `s` in `attr`, sorted by pid.
pub fn owners(attr: &Attribution, s: &Socket) -> Vec<(u32, String)> {
    let Owners::Known(n) = s.owners else {
        return Vec::new();
    };
    let mut v: Vec<_> = attr.owner_sets[n as usize]
        .iter()
        .map(|&i| {
            let p = &attr.processes[i as usize];
            (p.pid, p.name.clone())
        })
        .collect();
    v.sort();
    v
}

pub fn pids(attr: &Attribution, s: &Socket) -> Vec<u32> {
    owners(attr, s).into_iter().map(|(p, _)| p).collect()
}

/// nginx-like: a master and three workers share listener 5000; each worker has a connection.
pub fn prefork() -> FakeProc {
    let fake = FakeProc::new();
    fake.add_process(
        100,
        "nginx",
        1000,
        0,
        &["nginx: master process", "/usr/sbin/nginx"],
    );
    fake.add_fd(100, 0, "/dev/null");
    fake.add_socket(100, 6, 5000);
    for (i, pid) in [101u32, 102, 103].into_iter().enumerate() {
        fake.add_process(
            pid,
            "nginx",
            1001 + i as u64,
            33,
            &["nginx: worker process"],
        );
        fake.add_fd(pid, 0, "/dev/null");
        fake.add_fd(pid, 1, "pipe:[77]");
        fake.add_socket(pid, 6, 5000);
        fake.add_socket(pid, 7, 5101 + i as u64);
    }
    fake.add_process(300, "bash", 900, 1000, &["-bash"]);
    fake.add_fd(300, 0, "/dev/pts/0");
    fake
}

pub fn prefork_sockets() -> Vec<Socket> {
    vec![
        socket(5000, 80, 0),
        socket(5101, 80, 33),
        socket(5102, 80, 33),
        socket(5103, 80, 33),
        socket(0, 80, 0),
        socket(9999, 5432, 1000),
    ]
}

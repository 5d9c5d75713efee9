//! Fake `/proc` trees in a tempdir for the owner-join tests: `<pid>/{stat,cmdline,status}` and
//! `<pid>/fd/<n>` symlinks to `socket:[N]` (dangling symlinks readlink fine).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::model::{Family, Owners, Proto, Socket, TcpState};

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
        owners: Owners::None(crate::model::Unattributed::NotFound),
    }
}

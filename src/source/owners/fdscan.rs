//! Reading `/proc/<pid>/fd`: the per-fd cost of the owner join, done with raw `getdents64` and
//! `readlinkat` on reused buffers.
//!
//! Why not `procfs::process::Process::fd()`: per fd it does `openat(O_PATH)` + `readlinkat` +
//! `fstatat` + `close` and allocates a `PathBuf`, a `Vec` and a `String`; here one fd costs one
//! `readlinkat` into a stack buffer and no allocation. Measured by `owners::live::bench_walk`
//! (printed by `cargo test --release -- --ignored bench_walk --nocapture`); the figures are in
//! the comment on `live::bench_walk`.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, RawDir};
use rustix::io::Errno;

use crate::model::Process;
use crate::source::owners::batch::{Job, Part};
use crate::source::process::{self, DetailError, ProcessCache};

/// `getdents64` buffer: ~2,700 fd entries per call.
const DIR_BUF: usize = 64 * 1024;

/// An open `/proc` (or a fake tree in tests).
#[derive(Debug)]
pub struct ProcRoot {
    fd: OwnedFd,
    /// Real procfs: the size of `/proc/<pid>/fd` is its number of fds (Linux >= 6.2).
    /// On a fake tree it is a byte count, only good for change detection.
    pub exact_counts: bool,
}

/// What `fstat` says about `/proc/<pid>/fd`. Any change means the fd table may have changed.
///
/// On procfs `size` is the fd count and `ino` is new for every process incarnation (a reused
/// pid gets a fresh proc inode), so a reused pid always looks changed. On a plain directory
/// (fake trees) `mtime` changes when an entry is added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FdDirSig {
    pub ino: u64,
    pub size: i64,
    pub mtime: (i64, i64),
    /// Owner of the fd dir: the process's effective uid (root for non-dumpable processes).
    pub uid: u32,
}

impl FdDirSig {
    fn of(st: &rustix::fs::Stat) -> FdDirSig {
        FdDirSig {
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec.cast_signed()),
            uid: st.st_uid,
        }
    }

    /// Expected work to scan this dir, in fds (a flat guess where sizes are not counts).
    pub fn cost(&self, exact_counts: bool) -> usize {
        if exact_counts {
            usize::try_from(self.size).unwrap_or(0).max(1)
        } else {
            16
        }
    }
}

/// What reading one fd table cost: links read and directory entries listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    pub links: usize,
    pub listed: usize,
}

impl std::ops::AddAssign for Work {
    fn add_assign(&mut self, other: Work) {
        self.links += other.links;
        self.listed += other.listed;
    }
}

/// One open fd; `inode` is the socket inode, 0 when the fd is not a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FdEntry {
    pub fd: u32,
    pub inode: u64,
}

/// A process's details, already cached or just read (the caller caches those).
#[derive(Debug)]
pub enum Details {
    Cached(std::sync::Arc<Process>),
    Fresh(Process),
}

/// The result of reading one process's fd table.
#[derive(Debug)]
pub enum ScanOutcome {
    Scanned {
        sig: FdDirSig,
        /// Every open fd, sorted by number.
        fds: Vec<FdEntry>,
        /// Start time and details; read only when the process holds a socket. `None` when it
        /// holds none, or when its `stat` is malformed (then it is skipped, never mislabeled).
        owner: Option<(u64, Details)>,
        work: Work,
    },
    /// `fd` exists but may not be read (another user's process, not root).
    Denied(FdDirSig),
    /// The process exited before or while it was read.
    Gone,
}

/// A relative path of numbers and literals (`<pid>`, `<pid>/fd`, `<pid>/fd/<n>`) built as a
/// C string on the stack: no allocation per process or fd.
struct NumPath {
    buf: [u8; 40],
    len: usize,
}

impl NumPath {
    fn new() -> NumPath {
        NumPath {
            buf: [0; 40],
            len: 0,
        }
    }

    fn num(self, n: u32) -> NumPath {
        let mut digits = [0u8; 10];
        let mut n = n;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.lit(&digits[i..])
    }

    fn lit(mut self, s: &[u8]) -> NumPath {
        // At most 10 + 4 + 10 bytes are ever pushed, well inside the 39 usable.
        let end = (self.len + s.len()).min(self.buf.len() - 1);
        self.buf[self.len..end].copy_from_slice(&s[..end - self.len]);
        self.len = end;
        self
    }

    fn as_c_str(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

/// A decimal fd or pid name (`"123"`); `None` for `.`, `..`, `self` and anything else.
pub fn parse_number(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    name.iter().try_fold(0u32, |n, &d| {
        n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// The inode of a `socket:[N]` link target; `None` for anything else.
pub fn parse_socket_link(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn is_denied(e: Errno) -> bool {
    e == Errno::ACCESS || e == Errno::PERM
}

impl ProcRoot {
    pub fn open(path: &Path) -> io::Result<ProcRoot> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let exact_counts =
            rustix::fs::fstatfs(&fd).is_ok_and(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC);
        Ok(ProcRoot { fd, exact_counts })
    }

    /// Every numeric entry of the root, in directory order.
    pub fn list_pids(&self, buf: &mut [MaybeUninit<u8>], out: &mut Vec<u32>) -> io::Result<()> {
        out.clear();
        rustix::fs::seek(&self.fd, rustix::fs::SeekFrom::Start(0))?;
        let mut dir = RawDir::new(self.fd.as_fd(), buf);
        while let Some(entry) = dir.next() {
            if let Some(pid) = parse_number(entry?.file_name().to_bytes()) {
                out.push(pid);
            }
        }
        Ok(())
    }

    /// `fstatat("<pid>/fd")`: allowed even where the dir itself may not be read.
    pub fn fd_dir_sig(&self, pid: u32) -> Result<FdDirSig, Errno> {
        let path = NumPath::new().num(pid).lit(b"/fd");
        let st = rustix::fs::statat(&self.fd, path.as_c_str(), AtFlags::empty())?;
        Ok(FdDirSig::of(&st))
    }

    /// Open `/proc/<pid>` as a path-only fd: everything read through it belongs to this one
    /// process, even if the pid is reused meanwhile.
    fn pin(&self, pid: u32) -> Result<OwnedFd, Errno> {
        rustix::fs::openat(
            &self.fd,
            NumPath::new().num(pid).as_c_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    /// Read one fd link of `pid` (for verifying a mapping): `Ok(None)` when the fd is closed.
    pub fn read_fd(&self, pid: u32, fd: u32) -> Result<Option<u64>, Errno> {
        let path = NumPath::new().num(pid).lit(b"/fd/").num(fd);
        let mut link = [0u8; 64];
        match rustix::fs::readlinkat_raw(&self.fd, path.as_c_str(), &mut link[..]) {
            Ok(len) => Ok(Some(parse_socket_link(&link[..len]).unwrap_or(0))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `readlinkat` each fd number under `fd_dir`; push the open ones.
fn probe(
    fd_dir: &OwnedFd,
    numbers: impl Iterator<Item = u32>,
    fds: &mut Vec<FdEntry>,
    work: &mut Work,
) {
    for fd in numbers {
        let mut link = [0u8; 64];
        work.links += 1;
        if let Ok(len) =
            rustix::fs::readlinkat_raw(fd_dir, NumPath::new().num(fd).as_c_str(), &mut link[..])
        {
            fds.push(FdEntry {
                fd,
                inode: parse_socket_link(&link[..len]).unwrap_or(0),
            });
        }
    }
}

/// Per-thread buffers for scanning; reused across processes and ticks.
pub struct Scanner {
    dir_buf: Vec<MaybeUninit<u8>>,
    text_buf: Vec<u8>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            dir_buf: vec![MaybeUninit::uninit(); DIR_BUF],
            text_buf: Vec::with_capacity(4096),
        }
    }
}

impl Scanner {
    /// Read the part of the fd table of `job.pid` that the job names, re-reading every link
    /// not in `job.trusted`.
    pub fn scan(&mut self, root: &ProcRoot, job: &Job, cache: &ProcessCache) -> ScanOutcome {
        let Ok(pid_dir) = root.pin(job.pid) else {
            return ScanOutcome::Gone;
        };
        let fd_dir = match rustix::fs::openat(
            &pid_dir,
            c"fd",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) if is_denied(e) => {
                return root
                    .fd_dir_sig(job.pid)
                    .map_or(ScanOutcome::Gone, ScanOutcome::Denied);
            }
            Err(_) => return ScanOutcome::Gone,
        };
        // The signature is taken before reading, so a change during the read shows next tick.
        let Ok(st) = rustix::fs::fstat(&fd_dir) else {
            return ScanOutcome::Gone;
        };
        let sig = FdDirSig::of(&st);
        let mut fds = Vec::with_capacity(job.trusted.len() + 8);
        let mut work = Work::default();
        match job.part {
            Part::Probe(lo, hi) => {
                // Dense fd numbers: one readlinkat per number, no listing (~25% less per fd).
                probe(&fd_dir, lo..hi, &mut fds, &mut work);
            }
            Part::Delta(from) => {
                fds.extend_from_slice(&job.trusted);
                probe(&fd_dir, job.probe.iter().copied(), &mut fds, &mut work);
                let _ = rustix::fs::seek(&fd_dir, rustix::fs::SeekFrom::Start(u64::from(from) + 2));
                if self.list(&fd_dir, from, &[], &mut fds, &mut work).is_err() {
                    return ScanOutcome::Gone;
                }
                fds.sort_unstable();
                fds.dedup_by_key(|e| e.fd);
            }
            Part::Whole | Part::Tail(_) => {
                let from = match job.part {
                    // procfs lists fd n at directory offset n + 2 (after `.` and `..`).
                    Part::Tail(from) => {
                        let _ = rustix::fs::seek(
                            &fd_dir,
                            rustix::fs::SeekFrom::Start(u64::from(from) + 2),
                        );
                        from
                    }
                    _ => 0,
                };
                if self
                    .list(&fd_dir, from, &job.trusted, &mut fds, &mut work)
                    .is_err()
                {
                    return ScanOutcome::Gone;
                }
            }
        }
        let identify = match job.part {
            Part::Whole | Part::Delta(_) => fds.iter().any(|e| e.inode != 0),
            Part::Probe(..) => false,
            Part::Tail(_) => true,
        };
        let owner = if identify {
            match self.identify(pid_dir.as_fd(), job.pid, sig.uid, cache) {
                Ok(owner) => Some(owner),
                Err(DetailError::Gone) => return ScanOutcome::Gone,
                Err(DetailError::Denied | DetailError::Malformed) => None,
            }
        } else {
            None
        };
        ScanOutcome::Scanned {
            sig,
            fds,
            owner,
            work,
        }
    }

    /// List `fd_dir` from its current offset; push fds >= `from`, reading links not trusted.
    fn list(
        &mut self,
        fd_dir: &OwnedFd,
        from: u32,
        trusted: &[FdEntry],
        fds: &mut Vec<FdEntry>,
        work: &mut Work,
    ) -> Result<(), Errno> {
        let mut sorted = true;
        let mut dir = RawDir::new(fd_dir.as_fd(), &mut self.dir_buf);
        while let Some(entry) = dir.next() {
            let entry = entry?;
            work.listed += 1;
            let Some(fd) = parse_number(entry.file_name().to_bytes()).filter(|&fd| fd >= from)
            else {
                continue;
            };
            let inode = if let Ok(i) = trusted.binary_search_by_key(&fd, |e| e.fd) {
                trusted[i].inode
            } else {
                work.links += 1;
                let mut link = [0u8; 64];
                match rustix::fs::readlinkat_raw(fd_dir, entry.file_name(), &mut link[..]) {
                    Ok(len) => parse_socket_link(&link[..len]).unwrap_or(0),
                    // Closed since the listing, or the process is exiting: not an fd now.
                    Err(_) => continue,
                }
            };
            sorted &= fds.last().is_none_or(|l: &FdEntry| l.fd < fd);
            fds.push(FdEntry { fd, inode });
        }
        if !sorted {
            fds.sort_unstable();
        }
        Ok(())
    }

    /// Start time and details of the pinned process; details come from the cache when the
    /// (pid, start time) pair is known.
    fn identify(
        &mut self,
        pid_dir: BorrowedFd<'_>,
        pid: u32,
        fallback_uid: u32,
        cache: &ProcessCache,
    ) -> Result<(u64, Details), DetailError> {
        let (start_time, name) = process::read_stat(pid_dir, &mut self.text_buf)?;
        // Same pid and start time, but a new `comm` means an exec or a rename: read again.
        if let Some(p) = cache.get(pid, start_time).filter(|p| p.name == name) {
            return Ok((start_time, Details::Cached(std::sync::Arc::clone(p))));
        }
        let p = process::read_details(
            pid_dir,
            pid,
            start_time,
            name,
            fallback_uid,
            &mut self.text_buf,
        )?;
        Ok((start_time, Details::Fresh(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(
            parse_socket_link(b"socket:[18446744073709551615]"),
            Some(u64::MAX)
        );
        for bad in [
            &b"socket:[]"[..],
            b"socket:[12",
            b"socket:[1a]",
            b"pipe:[5]",
            b"/dev/null",
            b"socket:[99999999999999999999]",
        ] {
            assert_eq!(
                parse_socket_link(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b"4294967295"), Some(u32::MAX));
        for bad in [&b""[..], b".", b"..", b"self", b"4294967296", b"12a"] {
            assert_eq!(parse_number(bad), None);
        }
    }

    #[test]
    fn num_paths() {
        assert_eq!(NumPath::new().num(0).lit(b"/fd").as_c_str(), c"0/fd");
        assert_eq!(
            NumPath::new()
                .num(u32::MAX)
                .lit(b"/fd/")
                .num(u32::MAX)
                .as_c_str(),
            c"4294967295/fd/4294967295"
        );
        assert_eq!(NumPath::new().num(1234).as_c_str(), c"1234");
    }
}

//! Reading `/proc/<pid>/fd`: the per-fd cost of the owner join, done with raw `getdents64` and
//! `readlinkat` on reused buffers.
//!
//! Why not `procfs::process::Process::fd()`: per fd it does `openat(O_PATH)` + `readlinkat` +
//! `fstatat` + `close` and allocates a `PathBuf`, a `Vec` and a `String`; here one fd costs one
//! `readlinkat` into a stack buffer and no allocation. Measured by `owners::bench::bench_walk`
//! (printed by `cargo test --release -- --ignored bench_walk --nocapture`); the figures are in
//! the comment on `bench::bench_walk`.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, RawDir};
use rustix::io::Errno;

use crate::model::Process;
use crate::source::owners::plan::{Job, Part};
use crate::source::owners::procroot::{
    FdDirSig, FdEntry, NumPath, ProcRoot, is_denied, parse_number, parse_socket_link,
};
use crate::source::process::{self, DetailError, Identity, ProcessCache};

/// `getdents64` buffer: ~2,700 fd entries per call.
const DIR_BUF: usize = 64 * 1024;

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
        owner: Option<(Identity, Details)>,
        work: Work,
    },
    /// `fd` exists but may not be read (another user's process, not root).
    Denied(FdDirSig),
    /// The process exited before or while it was read.
    Gone,
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
        // Who the process is before its fds are read. If it is someone else after (a forked
        // child that closed an inherited listener and renamed itself, an exec), the fds and
        // the name are of different moments: nothing is attributed to it from this read.
        let before = match job.part {
            Part::Probe(..) => None,
            _ => process::read_identity(pid_dir.as_fd(), &mut self.text_buf).ok(),
        };
        let sig = FdDirSig::of(&st);
        let mut fds = Vec::with_capacity(job.trusted.len() + 8);
        let mut work = Work::default();
        match job.part {
            Part::Probe(lo, hi) => {
                // Dense fd numbers: one readlinkat per number and no listing, ~20% less kernel
                // time than listing first (see `bench::bench_walk`).
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
                // Read again, in full, as a new process next tick.
                Ok((id, _)) if before.is_some_and(|b| b != id) => return ScanOutcome::Gone,
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
    ) -> Result<(Identity, Details), DetailError> {
        let (id, name) = process::read_stat(pid_dir, &mut self.text_buf)?;
        // Same pid and start time, but an exec or a rename since: read again.
        if let Some(p) = cache.get_same(pid, id).filter(|p| p.name == name) {
            return Ok((id, Details::Cached(std::sync::Arc::clone(p))));
        }
        let start_time = id.start_time;
        let p = process::read_details(
            pid_dir,
            pid,
            start_time,
            name,
            fallback_uid,
            &mut self.text_buf,
        )?;
        Ok((id, Details::Fresh(p)))
    }
}

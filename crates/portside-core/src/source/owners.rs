//! The owner join: socket inode -> every process that holds it, kept across samples and
//! re-read incrementally.
//!
//! `sock_diag` gives each socket's inode but no pid; the only map from inode to pid is the
//! `socket:[N]` link of every fd under `/proc/<pid>/fd`. Reading all of them costs a few µs per
//! fd, every fd of every process, so a tick reads only what may have changed:
//!
//! 1. List `/proc` and `fstat` each `/proc/<pid>/fd` (allowed without privilege). Its
//!    signature (inode, size = fd count on Linux >= 6.2, mtime, owner) is compared with the
//!    last tick: new pids are read in full, changed ones re-read new fd numbers and sockets
//!    that left the sample, vanished ones are forgotten. A reused pid has a new proc inode,
//!    so it always reads as changed and is re-identified by (pid, start time).
//! 2. An fd count can stay equal across a close + open. A socket whose inode is still unknown
//!    one tick after it appeared is searched in the processes of its uid (re-reading their
//!    non-socket fds too), then, if still unknown, by a full walk, at most once per
//!    [`OwnerJoin::set_min_full_walk_interval`] (and never more often than 20x its own
//!    cost). An inode a full walk could not find waits until some process changes.
//! 3. A socket shared by several processes (pre-forked workers) survives one of them
//!    closing it, so each shared mapping is re-checked with one `readlinkat` per tick; a
//!    stale one is dropped and that process re-read.
//!
//! A changed procfs table is read as a delta: the fds whose socket left the sample, the free
//! numbers below the highest fd (where the kernel puts new fds) and a listing past it, so a
//! busy server whose fd count moves every tick costs a few syscalls, not a listing. Large
//! batches (the first tick, a full walk) probe fd numbers in ranges spread over threads, and
//! [`OwnerJoin::prefetch`] lets the first walk run while the caller dumps the sockets.

mod batch;
#[cfg(test)]
mod bench;
mod fdscan;
#[cfg(test)]
mod fixture;
#[cfg(test)]
mod holders;
mod identity;
mod index;
#[cfg(test)]
mod live;
mod plan;
mod procroot;
pub use procroot::parse_socket_link;
mod resolve;
mod search;
#[cfg(test)]
mod tests;

use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{Coverage, Process, Socket};
use crate::source::owners::fdscan::{ScanOutcome, Scanner};
use crate::source::owners::index::{IntMap, OwnerIndex};
use crate::source::owners::plan::{Depth, Job};
use crate::source::owners::procroot::{FdEntry, ProcRoot};
use crate::source::owners::resolve::Resolver;
use crate::source::process::ProcessCache;

/// The processes that own this sample's sockets, and how far the join got.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    /// Every process owning >= 1 socket of this sample.
    pub processes: Vec<Arc<Process>>,
    /// Interned sets of indexes into `processes` (sockets with the same owners share one).
    pub owner_sets: Vec<Box<[u32]>>,
    pub coverage: Coverage,
    /// Could read every process's fd dir.
    pub privileged: bool,
}

/// What the last [`OwnerJoin::attribute`] call did, for benchmarks and the UI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinStats {
    /// Processes listed under `/proc`.
    pub pids: usize,
    /// fd dirs opened and listed.
    pub pids_scanned: usize,
    /// fd links read (`readlinkat`), shared-mapping checks included.
    pub fds_read: usize,
    /// fd dir entries listed (`getdents64`).
    pub fds_listed: usize,
    /// Shared mappings re-checked, and how many of them were stale.
    pub verified: usize,
    pub stale: usize,
    /// Unknown inodes searched for among the processes of their uid.
    pub searched: usize,
    /// Every readable process was read in full (the first call, or a rate-limited walk).
    pub full_walk: bool,
    /// Most threads one batch used.
    pub threads: usize,
    pub elapsed: Duration,
}

/// Where an inode that no process is known to hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// First unknown at this tick; searched if still there next tick (most new sockets that
    /// vanish this fast were short-lived and closed).
    Seen(u64),
    /// The processes of its uid were searched; waiting for a full walk.
    Searched,
    /// A full walk did not find it (kernel socket, in flight, another pid namespace).
    Walked,
}

/// Long-lived inode -> processes join; keep one per sampler.
pub struct OwnerJoin {
    proc_root: PathBuf,
    root: Option<ProcRoot>,
    index: OwnerIndex,
    cache: ProcessCache,
    scanner: Scanner,
    resolver: Resolver,
    dir_buf: Vec<MaybeUninit<u8>>,
    pid_list: Vec<u32>,
    tick: u64,
    unresolved: IntMap<u64, Unresolved>,
    last_full_walk: Option<(Instant, Duration)>,
    min_full_walk_interval: Duration,
    max_threads: usize,
    verify_cursor: usize,
    euid: u32,
    stats: JoinStats,
    /// The tick of a `prefetch` that read every process in full, until `attribute` uses it.
    prefetched: Option<u64>,
    probe_ranges: bool,
}

impl OwnerJoin {
    pub fn new(proc_root: PathBuf) -> OwnerJoin {
        OwnerJoin {
            proc_root,
            root: None,
            index: OwnerIndex::default(),
            cache: ProcessCache::new(),
            scanner: Scanner::default(),
            resolver: Resolver::default(),
            dir_buf: vec![MaybeUninit::uninit(); 32 * 1024],
            pid_list: Vec::new(),
            tick: 0,
            unresolved: IntMap::default(),
            last_full_walk: None,
            min_full_walk_interval: Duration::from_secs(10),
            max_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            verify_cursor: 0,
            euid: rustix::process::geteuid().as_raw(),
            stats: JoinStats::default(),
            prefetched: None,
            probe_ranges: true,
        }
    }

    /// Least time between two full walks triggered by unknown inodes (default 10 s; a walk is
    /// also never more often than 20x its own cost). Zero removes the limit.
    pub fn set_min_full_walk_interval(&mut self, interval: Duration) {
        self.min_full_walk_interval = interval;
    }

    /// Most threads a large batch may use (default: available cores, at most 4).
    pub fn set_max_threads(&mut self, threads: usize) {
        self.max_threads = threads.max(1);
    }

    /// Read big procfs fd tables by `readlinkat` of each fd number in ranges (default) rather
    /// than by listing them first; the switch is for benchmarks.
    pub fn set_probe_ranges(&mut self, on: bool) {
        self.probe_ranges = on;
    }

    /// Statistics of the last call (pids scanned, fds read, full walk or not).
    pub fn last_stats(&self) -> JoinStats {
        self.stats
    }

    /// Set `socket.owners` for every socket (Known(set) / None(reason)) and return the processes.
    pub fn attribute(&mut self, sockets: &mut [Socket]) -> Attribution {
        let started = Instant::now();
        self.tick += 1;
        self.stats = JoinStats::default();
        if self.root.is_none() {
            self.root = ProcRoot::open(&self.proc_root).ok();
        }
        let Some(root) = self.root.take() else {
            // No /proc: every socket is still listed, none attributed.
            self.index = OwnerIndex::default();
            return self.resolver.resolve(
                &mut self.index,
                sockets,
                self.tick,
                false,
                self.euid,
                false,
            );
        };
        self.refresh(&root, sockets);
        self.follow_owners(&root);
        let prefetched = self.prefetched.take();
        let all_read = self.all_read(prefetched);
        if all_read {
            self.stats.full_walk = true;
            if prefetched.is_none() {
                self.last_full_walk = Some((started, started.elapsed()));
            }
        } else {
            self.verify_shared(&root);
            self.search(&root, started);
        }
        // With `hidepid`, other users' processes are not listed at all (pid 1 is missing for
        // non-root): as unprivileged as an unreadable fd dir.
        let hidden = root.exact_counts && self.euid != 0 && !self.pid_list.contains(&1);
        self.root = Some(root);
        let denied = hidden || self.index.denied() > 0;
        let attribution = self.resolver.resolve(
            &mut self.index,
            sockets,
            self.tick,
            denied,
            self.euid,
            !denied,
        );
        self.forget(all_read || self.stats.full_walk);
        self.stats.elapsed = started.elapsed();
        attribution
    }

    /// Read the fd tables of new and changed processes without a sample, so that a caller can
    /// overlap the first (cold) walk with its socket dump on another thread; the next
    /// [`OwnerJoin::attribute`] then reads only what changed in between. `last_stats` tells
    /// what this call read until the next `attribute`.
    pub fn prefetch(&mut self) {
        let started = Instant::now();
        self.tick += 1;
        self.stats = JoinStats::default();
        if self.root.is_none() {
            self.root = ProcRoot::open(&self.proc_root).ok();
        }
        let Some(root) = self.root.take() else { return };
        self.refresh(&root, &[]);
        self.root = Some(root);
        if self.all_read(None) {
            self.stats.full_walk = true;
            self.prefetched = Some(self.tick);
            self.last_full_walk = Some((started, started.elapsed()));
        }
        self.stats.elapsed = started.elapsed();
    }

    /// Whether every readable process was read in full this tick, or in full by the
    /// `prefetch` just before (and, if it changed since, read again this tick).
    fn all_read(&self, prefetched: Option<u64>) -> bool {
        let tick = self.tick;
        self.index.pids.values().all(|t| {
            t.denied
                || t.read == (tick, Depth::Full)
                || prefetched.is_some_and(|p| t.read == (p, Depth::Full) || t.read.0 == tick)
        })
    }

    /// List processes, forget the vanished, read the new in full and the changed in part.
    fn refresh(&mut self, root: &ProcRoot, sockets: &[Socket]) {
        let tick = self.tick;
        if root
            .list_pids(&mut self.dir_buf, &mut self.pid_list)
            .is_err()
        {
            self.pid_list.clear();
        }
        self.stats.pids = self.pid_list.len();
        let mut todo = Vec::new();
        for &pid in &self.pid_list {
            let Ok(sig) = root.fd_dir_sig(pid) else {
                continue;
            };
            match self.index.pids.get_mut(&pid) {
                Some(t) => {
                    t.seen = tick;
                    if t.sig != sig {
                        todo.push((pid, sig));
                    }
                }
                None => todo.push((pid, sig)),
            }
        }
        self.index.remove_unseen(tick);
        self.resolver.mark_sample(&mut self.index, sockets, tick);
        let jobs = todo
            .into_iter()
            .map(|(pid, sig)| match self.index.pids.get(&pid) {
                // Same proc inode: the same process, whose old table can be partly trusted.
                Some(t) if t.sig.ino == sig.ino => self.job(pid, Depth::Changed, root.exact_counts),
                // New, or a new proc inode (a reused pid): nothing of the old table holds.
                _ => Job::new(pid, Depth::Full, Vec::new(), sig.cost(root.exact_counts)),
            })
            .collect();
        self.run(root, jobs);
        self.resolver.prune_unknown(&self.index);
    }

    /// A job for a known process at `depth`: the fds it may trust are copied from its table.
    fn job(&self, pid: u32, depth: Depth, exact_counts: bool) -> Job {
        let tick = self.tick;
        let Some(t) = self.index.pids.get(&pid) else {
            return Job::new(pid, Depth::Full, Vec::new(), 64);
        };
        let seen = |inode: u64| self.index.inodes.get(&inode).map_or(0, |e| e.seen);
        let trusted = match depth {
            Depth::Full => Vec::new(),
            // Keep files, sockets in this sample, and sockets never sampled (unix, netlink).
            Depth::Changed => {
                let trust = |e: &FdEntry| {
                    let s = if e.inode == 0 { 0 } else { seen(e.inode) };
                    s == 0 || s == tick
                };
                return Job::changed(pid, &t.fds, trust, exact_counts, t.sig.cost(exact_counts));
            }
            Depth::Search => t
                .fds
                .iter()
                .filter(|e| e.inode != 0 && seen(e.inode) == tick)
                .copied()
                .collect(),
        };
        Job::new(pid, depth, trusted, t.sig.cost(exact_counts))
    }

    /// Scan a batch and fold the results into the index.
    fn run(&mut self, root: &ProcRoot, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let (results, threads) = batch::run(
            root,
            jobs,
            &self.cache,
            &mut self.scanner,
            batch::Options {
                max_threads: self.max_threads,
                probe_ranges: self.probe_ranges,
            },
        );
        self.stats.threads = self.stats.threads.max(threads);
        for (pid, depth, outcome) in results {
            match &outcome {
                ScanOutcome::Scanned { work, .. } => {
                    self.stats.pids_scanned += 1;
                    self.stats.fds_read += work.links;
                    self.stats.fds_listed += work.listed;
                }
                ScanOutcome::Denied(_) => self.stats.pids_scanned += 1,
                ScanOutcome::Gone => {}
            }
            if let Some(t) = self.index.pids.get(&pid) {
                // A process that vanished from the listing is not brought back by a late read.
                if t.seen != self.tick {
                    continue;
                }
            }
            self.index
                .apply(pid, outcome, depth, self.tick, &mut self.cache);
        }
    }

    /// Advance the unresolved-inode states and drop details of processes no longer tracked.
    fn forget(&mut self, walked: bool) {
        let tick = self.tick;
        let mut next = IntMap::default();
        for &(inode, _) in self.resolver.unknown() {
            let state = match self.unresolved.get(&inode) {
                _ if walked => Unresolved::Walked,
                Some(s) => *s,
                None => Unresolved::Seen(tick),
            };
            next.insert(inode, state);
        }
        self.unresolved = next;
        let pids = &self.index.pids;
        self.cache.retain(|pid, start| {
            pids.get(&pid)
                .and_then(|t| t.owner.as_ref())
                .is_some_and(|p| p.start_time == start)
        });
    }
}

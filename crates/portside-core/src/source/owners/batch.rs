//! A batch of fd-table reads: the parts spread over threads, then put back together per
//! process.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::source::owners::fdscan::{ScanOutcome, Scanner, Work};
use crate::source::owners::plan::{CHUNK, Depth, Job, Part, split};
use crate::source::owners::procroot::{FdDirSig, FdEntry, ProcRoot};
use crate::source::process::ProcessCache;

/// Above this many fds a batch is spread over threads (spawning one costs ~50 µs).
const PARALLEL_MIN_FDS: usize = 4096;

/// Put the parts of one process back together: any part gone or denied decides for all.
fn merge(parts: impl Iterator<Item = ScanOutcome>) -> ScanOutcome {
    let mut merged: Option<(FdDirSig, Vec<FdEntry>, Work)> = None;
    let mut identity = None;
    for part in parts {
        let ScanOutcome::Scanned {
            sig,
            fds,
            owner,
            work,
        } = part
        else {
            return part;
        };
        identity = identity.or(owner);
        match &mut merged {
            None => merged = Some((sig, fds, work)),
            Some((first, all, links)) => {
                if first.ino != sig.ino {
                    // A different proc inode: the pid was reused between two parts.
                    return ScanOutcome::Gone;
                }
                if *first != sig {
                    // The table changed during the read: make the next tick read it again.
                    first.size = -1;
                }
                all.extend(fds);
                *links += work;
            }
        }
    }
    let Some((sig, mut fds, work)) = merged else {
        return ScanOutcome::Gone;
    };
    fds.sort_unstable();
    fds.dedup_by_key(|e| e.fd);
    let owner = if fds.iter().any(|e| e.inode != 0) {
        identity
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

/// How a batch may be read.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub max_threads: usize,
    /// Cut big procfs tables into probed ranges (see `plan::split`).
    pub probe_ranges: bool,
}

/// Scan every job, on up to `max_threads` threads when the batch is large; one merged
/// outcome per process, in no fixed order. `scanner` serves the calling thread, so small
/// batches reuse its buffers. Returns the outcomes and the number of threads used.
pub fn run(
    root: &ProcRoot,
    jobs: Vec<Job>,
    cache: &ProcessCache,
    scanner: &mut Scanner,
    Options {
        max_threads,
        probe_ranges,
    }: Options,
) -> (Vec<(u32, Depth, ScanOutcome)>, usize) {
    let mut parts = Vec::with_capacity(jobs.len());
    for job in jobs {
        split(job, root.exact_counts && probe_ranges, &mut parts);
    }
    let total: usize = parts.iter().map(|j| j.cost).sum();
    let threads = if total >= PARALLEL_MIN_FDS {
        max_threads.min(parts.len()).max(1)
    } else {
        1
    };
    // Largest first, pulled from a shared counter: the big parts spread over the threads.
    // Equal parts alternate between processes: two threads reading one process's fd dir
    // contend on its dentry, two processes' dirs do not.
    let range_no = |j: &Job| match j.part {
        Part::Probe(lo, _) => lo / CHUNK as u32,
        _ => 0,
    };
    parts.sort_unstable_by_key(|j| (std::cmp::Reverse(j.cost), range_no(j), j.pid));
    let next = AtomicUsize::new(0);
    let work = |scanner: &mut Scanner| {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = parts.get(i) else { break out };
            out.push((i, scanner.scan(root, job, cache)));
        }
    };
    let mut results = if threads == 1 {
        work(scanner)
    } else {
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads)
                .map(|_| s.spawn(|| work(&mut Scanner::default())))
                .collect();
            let mut all = work(scanner);
            for h in helpers {
                // A panicking helper would be a bug here; its processes are then not updated.
                if let Ok(part) = h.join() {
                    all.extend(part);
                }
            }
            all
        })
    };
    // Group the parts of each process, in fd order (probe ranges ascend, the tail is last).
    let key = |i: usize| {
        let j = &parts[i];
        let order = match j.part {
            Part::Whole | Part::Delta(_) => 0,
            Part::Probe(lo, _) => lo,
            Part::Tail(_) => u32::MAX,
        };
        (j.pid, order)
    };
    results.sort_unstable_by_key(|&(i, _)| key(i));
    let mut merged = Vec::new();
    let mut iter = results.into_iter().peekable();
    while let Some((i, first)) = iter.next() {
        let (pid, depth) = (parts[i].pid, parts[i].depth);
        let mut group = vec![first];
        while let Some((_, next)) = iter.next_if(|(j, _)| parts[*j].pid == pid) {
            group.push(next);
        }
        let outcome = if group.len() == 1 {
            group.pop().unwrap_or(ScanOutcome::Gone)
        } else {
            merge(group.into_iter())
        };
        merged.push((pid, depth, outcome));
    }
    (merged, threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(fds: &[(u32, u64)], size: i64, owner: bool) -> ScanOutcome {
        ScanOutcome::Scanned {
            sig: FdDirSig {
                size,
                ..FdDirSig::default()
            },
            fds: fds
                .iter()
                .map(|&(fd, inode)| FdEntry { fd, inode })
                .collect(),
            owner: owner.then(|| {
                (
                    crate::source::process::Identity {
                        start_time: 7,
                        exec: 0,
                    },
                    crate::source::owners::fdscan::Details::Fresh(crate::model::Process {
                        pid: 1,
                        start_time: 7,
                        name: "x".into(),
                        cmdline: String::new(),
                        uid: 0,
                        user: String::new(),
                    }),
                )
            }),
            work: Work {
                links: fds.len(),
                listed: 0,
            },
        }
    }

    #[test]
    fn parts_merge_in_fd_order_with_the_tail_identity() {
        let parts = [
            scanned(&[(0, 0), (1, 50)], 5, false),
            scanned(&[(2, 51)], 5, false),
            scanned(&[(9, 0)], 5, true),
        ];
        let ScanOutcome::Scanned {
            sig,
            fds,
            owner,
            work,
        } = merge(parts.into_iter())
        else {
            panic!("not scanned")
        };
        assert_eq!(fds.iter().map(|e| e.fd).collect::<Vec<_>>(), [0, 1, 2, 9]);
        assert!(owner.is_some());
        assert_eq!((sig.size, work.links), (5, 4));
    }

    #[test]
    fn changed_during_read_or_gone_part() {
        let parts = [scanned(&[(0, 50)], 5, false), scanned(&[(1, 0)], 6, true)];
        let ScanOutcome::Scanned { sig, .. } = merge(parts.into_iter()) else {
            panic!("not scanned")
        };
        assert_eq!(
            sig.size, -1,
            "a table that changed mid-read is read again next tick"
        );
        let parts = [
            scanned(&[(0, 50)], 5, false),
            ScanOutcome::Gone,
            scanned(&[], 5, true),
        ];
        assert!(matches!(merge(parts.into_iter()), ScanOutcome::Gone));
        let mut reused = scanned(&[(1, 51)], 5, true);
        if let ScanOutcome::Scanned { sig, .. } = &mut reused {
            sig.ino = 99;
        }
        let parts = [scanned(&[(0, 50)], 5, false), reused];
        let merged = merge(parts.into_iter());
        assert!(
            matches!(merged, ScanOutcome::Gone),
            "parts of two incarnations"
        );
        let parts = [scanned(&[(0, 0)], 5, false), scanned(&[], 5, true)];
        let ScanOutcome::Scanned { owner, .. } = merge(parts.into_iter()) else {
            panic!("not scanned")
        };
        assert!(owner.is_none(), "no socket, no identity");
    }
}

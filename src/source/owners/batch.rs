//! A batch of fd-table reads: big tables cut into fd-number ranges, spread over threads, and
//! the parts put back together per process.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::source::owners::fdscan::{FdDirSig, FdEntry, ProcRoot, ScanOutcome, Scanner, Work};
use crate::source::process::ProcessCache;

/// How much of a process's fd table a scan re-reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Depth {
    /// New fd numbers and sockets that left the sample; other fds are trusted.
    Changed,
    /// Also every non-socket fd (a socket may have taken a file's fd number).
    Search,
    /// Every fd.
    Full,
}

/// Which fds of the table one job reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// List the dir and read every untrusted fd.
    Whole,
    /// `readlinkat` every fd number in `lo..hi` without listing (procfs full reads).
    Probe(u32, u32),
    /// List from fd `n` on (procfs seeks there); reads the process's identity.
    Tail(u32),
    /// Keep the trusted fds, `readlinkat` the job's `probe` numbers, list from fd `n` on.
    Delta(u32),
}

/// Work for one process: re-read every fd except the `trusted` ones (sorted by fd).
#[derive(Debug)]
pub struct Job {
    pub pid: u32,
    pub depth: Depth,
    pub trusted: Vec<FdEntry>,
    /// Expected fds to read (the fd count on procfs).
    pub cost: usize,
    pub part: Part,
    /// fd numbers a `Delta` read checks one by one.
    pub probe: Vec<u32>,
}

impl Job {
    pub fn new(pid: u32, depth: Depth, trusted: Vec<FdEntry>, cost: usize) -> Job {
        Job {
            pid,
            depth,
            trusted,
            cost,
            part: Part::Whole,
            probe: Vec::new(),
        }
    }

    /// A `Changed` read of `table` (sorted by fd) keeping the entries `trust` accepts.
    ///
    /// On procfs this reads only what can have changed, not the whole table: the untrusted
    /// fds, the free numbers below the highest known fd (the kernel gives a new fd the lowest
    /// free number), and a listing from past the highest. A busy server whose fd count moves
    /// every tick then costs a few syscalls instead of a listing of all its fds. A socket
    /// that took the number of a closed file is missed here and found by the search.
    pub fn changed(
        pid: u32,
        table: &[FdEntry],
        trust: impl Fn(&FdEntry) -> bool,
        exact_counts: bool,
        cost: usize,
    ) -> Job {
        let mut kept = Vec::with_capacity(table.len());
        let mut probe = Vec::new();
        for e in table {
            if trust(e) {
                kept.push(*e);
            } else {
                probe.push(e.fd);
            }
        }
        let end = table.last().map_or(0, |e| e.fd.saturating_add(1));
        let holes = (end as usize).saturating_sub(table.len());
        if !exact_counts || probe.len() + holes > DELTA_MAX_PROBES {
            return Job::new(pid, Depth::Changed, kept, cost);
        }
        let mut next = 0;
        for e in table {
            probe.extend(next..e.fd);
            next = e.fd.saturating_add(1);
        }
        probe.sort_unstable();
        let cost = probe.len() + 16;
        Job {
            pid,
            depth: Depth::Changed,
            trusted: kept,
            cost,
            part: Part::Delta(end),
            probe,
        }
    }
}

/// Most fd numbers a `Delta` read probes; past that the whole table is listed.
const DELTA_MAX_PROBES: usize = 512;

/// fd numbers per probe range when a big table is cut up.
const CHUNK: usize = 4096;
/// Full reads of at least this many fds probe instead of listing.
const PROBE_MIN: usize = 1024;
/// Above this many fds a batch is spread over threads (spawning one costs ~50 µs).
const PARALLEL_MIN_FDS: usize = 4096;

/// Cut a full read of a big procfs table into probe ranges over `0..count` plus a tail
/// listing from `count` (fds above the count exist only where lower numbers are free).
fn split(job: Job, exact_counts: bool, out: &mut Vec<Job>) {
    if !exact_counts || job.depth != Depth::Full || job.cost < PROBE_MIN {
        out.push(job);
        return;
    }
    let count = u32::try_from(job.cost).unwrap_or(u32::MAX);
    let mut lo = 0u32;
    while lo < count {
        let hi = lo.saturating_add(CHUNK as u32).min(count);
        out.push(Job {
            pid: job.pid,
            depth: job.depth,
            trusted: Vec::new(),
            cost: (hi - lo) as usize,
            part: Part::Probe(lo, hi),
            probe: Vec::new(),
        });
        lo = hi;
    }
    out.push(Job {
        cost: 16,
        part: Part::Tail(count),
        ..job
    });
}

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

/// Scan every job, on up to `max_threads` threads when the batch is large; one merged
/// outcome per process, in no fixed order. `scanner` serves the calling thread, so small
/// batches reuse its buffers. Returns the outcomes and the number of threads used.
pub fn run(
    root: &ProcRoot,
    jobs: Vec<Job>,
    cache: &ProcessCache,
    scanner: &mut Scanner,
    max_threads: usize,
) -> (Vec<(u32, Depth, ScanOutcome)>, usize) {
    let mut parts = Vec::with_capacity(jobs.len());
    for job in jobs {
        split(job, root.exact_counts, &mut parts);
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
                    7,
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
    fn changed_reads_plan_only_what_can_have_changed() {
        let table: Vec<FdEntry> = [(0, 0), (1, 0), (2, 0), (4, 500), (5, 501), (7, 0)]
            .into_iter()
            .map(|(fd, inode)| FdEntry { fd, inode })
            .collect();
        let job = Job::changed(1, &table, |e| e.inode != 501, true, 100);
        assert_eq!(job.part, Part::Delta(8));
        assert_eq!(
            job.probe,
            [3, 5, 6],
            "the untrusted fd and the free numbers"
        );
        let kept: Vec<u32> = job.trusted.iter().map(|e| e.fd).collect();
        assert_eq!(kept, [0, 1, 2, 4, 7]);

        let job = Job::changed(1, &table, |_| true, false, 100);
        assert_eq!(
            (job.part, job.probe.len(), job.cost),
            (Part::Whole, 0, 100),
            "not procfs"
        );
        let sparse = [
            FdEntry { fd: 0, inode: 0 },
            FdEntry {
                fd: 100_000,
                inode: 9,
            },
        ];
        let job = Job::changed(1, &sparse, |_| true, true, 2);
        assert_eq!(job.part, Part::Whole, "too many free numbers to probe");
    }

    #[test]
    fn big_full_reads_are_cut_into_ranges_and_a_tail() {
        let mut out = Vec::new();
        split(Job::new(9, Depth::Full, Vec::new(), 10_000), true, &mut out);
        let parts: Vec<_> = out.iter().map(|j| j.part).collect();
        assert_eq!(
            parts,
            [
                Part::Probe(0, 4096),
                Part::Probe(4096, 8192),
                Part::Probe(8192, 10_000),
                Part::Tail(10_000)
            ]
        );
        for (depth, exact, cost) in [
            (Depth::Changed, true, 10_000),
            (Depth::Full, false, 10_000),
            (Depth::Full, true, 100),
        ] {
            let mut out = Vec::new();
            split(Job::new(9, depth, Vec::new(), cost), exact, &mut out);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].part, Part::Whole);
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

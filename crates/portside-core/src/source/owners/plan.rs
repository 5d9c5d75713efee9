//! What to read of each fd table: how deep, which fd numbers, and how a big table is cut
//! into ranges that several threads can read at once.

use crate::source::owners::procroot::FdEntry;

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
    /// that took the number of a closed file (or unix socket) is missed here; it stays
    /// unknown and the search, which re-reads non-socket fds, finds it a tick later.
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
pub(super) const CHUNK: usize = 4096;
/// Full reads of at least this many fds probe instead of listing.
const PROBE_MIN: usize = 1024;
/// Cut a full read of a big procfs table into probe ranges over `0..count` plus a tail
/// listing from `count` (fds above the count exist only where lower numbers are free).
pub(super) fn split(job: Job, exact_counts: bool, out: &mut Vec<Job>) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! The slow paths of a tick, each bounded: re-checking shared mappings, searching for
//! unknown inodes among the processes of their uid, and the rate-limited full walk.

use std::time::Instant;

use crate::source::owners::plan::Depth;
use crate::source::owners::procroot::ProcRoot;
use crate::source::owners::{OwnerJoin, Unresolved};

/// fds (by fd count) whose processes may be re-read per tick while searching for unknown
/// inodes by uid.
const SEARCH_BUDGET_FDS: usize = 8 * 1024;
/// Shared mappings re-checked per tick (one `readlinkat` each), rotating when there are more.
const VERIFY_BUDGET: usize = 2048;
/// A full walk may cost at most 1/20 of the time between two of them.
const FULL_WALK_DUTY: u32 = 20;

impl OwnerJoin {
    /// Re-check shared mappings in this sample; drop the stale ones and re-read their process.
    pub(super) fn verify_shared(&mut self, root: &ProcRoot) {
        let tick = self.tick;
        let shared = self.resolver.shared();
        if shared.is_empty() {
            return;
        }
        let mut checks = Vec::new();
        for &inode in shared {
            let Some(entry) = self.index.inodes.get(&inode) else {
                continue;
            };
            for h in entry.holders.as_slice() {
                let fully_read = self
                    .index
                    .pids
                    .get(&h.pid)
                    .is_some_and(|t| t.read == (tick, Depth::Full));
                if !fully_read {
                    checks.push((inode, *h));
                }
            }
        }
        let start = self.verify_cursor % checks.len().max(1);
        let take = checks.len().min(VERIFY_BUDGET);
        self.verify_cursor = start + take;
        let mut rescan = Vec::new();
        for &(inode, h) in checks.iter().cycle().skip(start).take(take) {
            self.stats.verified += 1;
            self.stats.fds_read += 1;
            if root.read_fd(h.pid, h.fd) != Ok(Some(inode)) {
                self.stats.stale += 1;
                self.index.drop_holder(inode, h.pid);
                rescan.push(h.pid);
            }
        }
        rescan.sort_unstable();
        rescan.dedup();
        let jobs = rescan
            .into_iter()
            .map(|pid| self.job(pid, Depth::Search, root.exact_counts))
            .collect();
        self.run(root, jobs);
        self.resolver.prune_unknown(&self.index);
    }

    /// Find inodes still unknown: by uid one tick after they appear, then by a rate-limited walk.
    pub(super) fn search(&mut self, root: &ProcRoot, started: Instant) {
        let tick = self.tick;
        let mut fresh_uids = Vec::new();
        let mut want_walk = false;
        for &(inode, uid) in self.resolver.unknown() {
            match self.unresolved.get(&inode) {
                Some(Unresolved::Seen(t)) if *t < tick => {
                    self.stats.searched += 1;
                    if !fresh_uids.contains(&uid) {
                        fresh_uids.push(uid);
                    }
                }
                Some(Unresolved::Searched) => want_walk = true,
                _ => {}
            }
        }
        if !fresh_uids.is_empty() {
            let mut candidates: Vec<(u64, usize, u32)> = self
                .index
                .pids
                .iter()
                .filter(|(_, t)| {
                    // The fd dir's owner is the effective uid; an owner's real uid counts too.
                    let real = t.owner.as_ref().map(|p| p.uid);
                    !t.denied
                        && (fresh_uids.contains(&t.sig.uid)
                            || real.is_some_and(|u| fresh_uids.contains(&u)))
                })
                .filter(|(_, t)| !(t.read.0 == tick && t.read.1 >= Depth::Search))
                .map(|(&pid, t)| (t.read.0, t.sig.cost(root.exact_counts), pid))
                .collect();
            // Recently changed processes first (an accept() that kept the fd count), small first.
            candidates
                .sort_unstable_by_key(|&(read, cost, pid)| (std::cmp::Reverse(read), cost, pid));
            let mut budget = SEARCH_BUDGET_FDS;
            let mut jobs = Vec::new();
            for (_, cost, pid) in candidates {
                if !jobs.is_empty() && cost > budget {
                    break;
                }
                budget = budget.saturating_sub(cost);
                jobs.push(self.job(pid, Depth::Search, root.exact_counts));
            }
            self.run(root, jobs);
            self.resolver.prune_unknown(&self.index);
            for &(inode, _) in self.resolver.unknown() {
                if let Some(u) = self.unresolved.get_mut(&inode)
                    && matches!(*u, Unresolved::Seen(t) if t < tick)
                {
                    *u = Unresolved::Searched;
                    want_walk = true;
                }
            }
        }
        let min = self.min_full_walk_interval;
        let due = min.is_zero()
            || self
                .last_full_walk
                .is_none_or(|(at, cost)| at.elapsed() >= min.max(cost * FULL_WALK_DUTY));
        if want_walk && due {
            let walk_started = Instant::now();
            let jobs = self
                .index
                .pids
                .iter()
                .filter(|(_, t)| !t.denied && t.read != (tick, Depth::Full))
                .map(|(&pid, _)| pid)
                .collect::<Vec<_>>()
                .into_iter()
                .map(|pid| self.job(pid, Depth::Full, root.exact_counts))
                .collect();
            self.run(root, jobs);
            self.resolver.prune_unknown(&self.index);
            self.stats.full_walk = true;
            self.last_full_walk = Some((started, walk_started.elapsed()));
        }
    }
}

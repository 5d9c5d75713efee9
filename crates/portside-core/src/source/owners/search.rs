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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::model::{Owners, Unattributed};
    use crate::source::owners::OwnerJoin;
    use crate::source::owners::fixture::{pids, prefork, prefork_sockets, socket};

    #[test]
    fn socket_swapped_with_equal_fd_count_is_found_by_search() {
        let fake = prefork();
        let mut join = OwnerJoin::new(fake.root());
        join.set_min_full_walk_interval(Duration::from_secs(3600));
        join.attribute(&mut prefork_sockets());

        // Worker 101 closes connection 5101 and accepts 5401 on the same fd: no visible change.
        fake.swap_fd_unnoticed(101, 7, "socket:[5401]");
        let mut sockets = vec![socket(5000, 80, 0), socket(5401, 80, 33)];
        join.attribute(&mut sockets);
        assert_eq!(
            join.last_stats().pids_scanned,
            0,
            "the swap left no signature change"
        );
        assert_eq!(sockets[1].owners, Owners::None(Unattributed::NotFound));

        // Still unknown one tick later: the processes of uid 33 are searched.
        let attr = join.attribute(&mut sockets);
        assert_eq!(pids(&attr, &sockets[1]), [101]);
        let stats = join.last_stats();
        assert!(!stats.full_walk);
        assert_eq!(stats.searched, 1);
        assert_eq!(
            stats.pids_scanned, 3,
            "the three uid-33 workers, not the master or bash"
        );
    }

    #[test]
    fn swapped_socket_of_another_uid_is_found_by_the_rate_limited_walk() {
        let fake = prefork();
        let mut join = OwnerJoin::new(fake.root());
        join.set_min_full_walk_interval(Duration::ZERO);
        join.attribute(&mut prefork_sockets());

        // The socket's uid is one no process runs as (it was created before a privilege drop).
        fake.swap_fd_unnoticed(300, 0, "socket:[6000]");
        let mut sockets = vec![socket(6000, 9000, 4242)];
        join.attribute(&mut sockets);
        let attr = join.attribute(&mut sockets);
        assert_eq!(pids(&attr, &sockets[0]), [300]);
        assert!(join.last_stats().full_walk);
    }

    #[test]
    fn unknown_inode_costs_one_search_and_one_walk_then_nothing() {
        let fake = prefork();
        let mut join = OwnerJoin::new(fake.root());
        join.set_min_full_walk_interval(Duration::ZERO);
        let mut sockets = prefork_sockets();
        sockets.push(socket(8888, 2049, 0)); // a kernel socket: an inode no process holds
        join.attribute(&mut sockets); // the first tick is a full walk: both unknowns are final
        for _ in 0..3 {
            join.attribute(&mut sockets);
            let stats = join.last_stats();
            assert_eq!(
                (stats.pids_scanned, stats.searched, stats.full_walk),
                (0, 0, false)
            );
        }
        // A new one appears: seen, then searched by uid, then walked, then left alone.
        sockets.push(socket(8889, 2049, 0));
        join.attribute(&mut sockets);
        assert_eq!(join.last_stats().searched, 0);
        join.attribute(&mut sockets);
        let stats = join.last_stats();
        assert_eq!((stats.searched, stats.full_walk), (1, true));
        join.attribute(&mut sockets);
        let stats = join.last_stats();
        assert_eq!(
            (stats.pids_scanned, stats.searched, stats.full_walk),
            (0, 0, false)
        );
        assert_eq!(sockets[7].owners, Owners::None(Unattributed::NotFound));
    }

    #[test]
    fn full_walks_respect_the_minimum_interval() {
        let fake = prefork();
        let mut join = OwnerJoin::new(fake.root());
        join.set_min_full_walk_interval(Duration::from_secs(3600));
        let mut sockets = prefork_sockets();
        join.attribute(&mut sockets);
        sockets.push(socket(8889, 2049, 4242));
        for _ in 0..4 {
            join.attribute(&mut sockets);
            assert!(!join.last_stats().full_walk);
        }
    }

    #[test]
    fn stale_shared_mapping_is_dropped() {
        let fake = prefork();
        let mut join = OwnerJoin::new(fake.root());
        join.attribute(&mut prefork_sockets());

        // The master closes its copy of the listener and reuses the fd for a file: equal count.
        fake.swap_fd_unnoticed(100, 6, "/var/log/nginx/error.log");
        let mut sockets = prefork_sockets();
        let attr = join.attribute(&mut sockets);
        assert_eq!(pids(&attr, &sockets[0]), [101, 102, 103]);
        assert_eq!(join.last_stats().stale, 1);
        assert!(attr.processes.iter().all(|p| p.pid != 100));
        // And it stays dropped.
        let attr = join.attribute(&mut sockets);
        assert_eq!(pids(&attr, &sockets[0]), [101, 102, 103]);
        assert_eq!(join.last_stats().stale, 0);
    }
}

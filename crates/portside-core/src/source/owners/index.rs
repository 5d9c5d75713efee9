//! The state the owner join keeps across samples: each process's fd table as last read, and
//! socket inode -> the processes (and fds) that hold it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::model::Process;
use crate::source::owners::fdscan::{Details, ScanOutcome};
use crate::source::owners::plan::Depth;
use crate::source::owners::procroot::{FdDirSig, FdEntry};
use crate::source::process::{Identity, ProcessCache};

/// Multiplicative hash for inode and pid keys: they are kernel-chosen integers, not attacker
/// input, so the flooding resistance of the default `SipHash` buys nothing, while its cost is
/// paid twice per socket per tick (200k lookups at 100k sockets).
#[derive(Default, Clone, Copy)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing; the fold mixes the well-spread high bits into the low ones, which
        // pick hashbrown's bucket (the top 7 bits are its tag).
        let h = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A `HashMap` keyed by integers with [`IntHasher`].
pub type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// One fd of one process holding a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub fd: u32,
}

/// The holders of one inode: nearly always one, so that case does not allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holders {
    One(Holder),
    Many(Vec<Holder>),
}

impl Holders {
    pub fn as_slice(&self) -> &[Holder] {
        match self {
            Holders::One(h) => std::slice::from_ref(h),
            Holders::Many(v) => v,
        }
    }
}

/// An indexed socket inode.
#[derive(Debug)]
pub struct InodeEntry {
    pub holders: Holders,
    /// The last tick whose sample contained this inode.
    pub seen: u64,
}

/// What the join knows of one process.
#[derive(Debug)]
pub struct Tracked {
    pub sig: FdDirSig,
    /// The fd dir could not be read (EACCES/EPERM).
    pub denied: bool,
    /// Every fd at the last read, sorted by number (empty when denied).
    pub fds: Vec<FdEntry>,
    /// Set when the process holds a socket and was identified; its sockets are indexed.
    pub owner: Option<Arc<Process>>,
    /// The identity `owner` was read under; checked every tick (`owners/identity.rs`).
    pub identity: Identity,
    /// Last tick the process was listed under `/proc`.
    pub seen: u64,
    /// Last tick its fds were read, and how deeply.
    pub read: (u64, Depth),
}

/// Per-process fd tables and the inode index built from them.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    pub pids: HashMap<u32, Tracked>,
    pub inodes: IntMap<u64, InodeEntry>,
}

impl OwnerIndex {
    /// Index the sockets of `pid` (only when it was identified).
    fn register(&mut self, pid: u32) {
        let Some(t) = self.pids.get(&pid) else { return };
        if t.owner.is_none() {
            return;
        }
        for e in t.fds.iter().filter(|e| e.inode != 0) {
            let h = Holder { pid, fd: e.fd };
            self.inodes
                .entry(e.inode)
                .and_modify(|entry| match &mut entry.holders {
                    Holders::One(first) if first.pid != pid => {
                        entry.holders = Holders::Many(vec![*first, h]);
                    }
                    Holders::Many(v) if !v.iter().any(|x| x.pid == pid) => v.push(h),
                    // Already held through another fd of the same process.
                    _ => {}
                })
                .or_insert(InodeEntry {
                    holders: Holders::One(h),
                    seen: 0,
                });
        }
    }

    /// Remove `pid` from the holders of its sockets.
    fn unregister(&mut self, pid: u32) {
        let Some(t) = self.pids.get(&pid) else { return };
        for e in t.fds.iter().filter(|e| e.inode != 0) {
            remove_holder(&mut self.inodes, e.inode, pid);
        }
    }

    /// Drop one mapping found stale by verification, without re-reading the process.
    pub fn drop_holder(&mut self, inode: u64, pid: u32) {
        remove_holder(&mut self.inodes, inode, pid);
        if let Some(t) = self.pids.get_mut(&pid) {
            t.fds.retain(|e| e.inode != inode);
        }
    }

    /// Forget a process (exited, or listed no more).
    pub fn remove(&mut self, pid: u32) {
        self.unregister(pid);
        self.pids.remove(&pid);
    }

    /// Forget every process not listed in tick `tick`; returns how many went.
    pub fn remove_unseen(&mut self, tick: u64) -> usize {
        let gone: Vec<u32> = self
            .pids
            .iter()
            .filter(|(_, t)| t.seen != tick)
            .map(|(&p, _)| p)
            .collect();
        for &pid in &gone {
            self.remove(pid);
        }
        gone.len()
    }

    /// Record the result of scanning `pid` at `depth` in tick `tick`; new details are cached.
    pub fn apply(
        &mut self,
        pid: u32,
        outcome: ScanOutcome,
        depth: Depth,
        tick: u64,
        cache: &mut ProcessCache,
    ) {
        self.unregister(pid);
        let (sig, denied, fds, owner, identity) = match outcome {
            ScanOutcome::Gone => {
                self.pids.remove(&pid);
                return;
            }
            ScanOutcome::Denied(sig) => (sig, true, Vec::new(), None, Identity::default()),
            ScanOutcome::Scanned {
                sig, fds, owner, ..
            } => {
                let identity = owner.as_ref().map(|(id, _)| *id).unwrap_or_default();
                let owner = owner.map(|(id, details)| match details {
                    Details::Cached(p) => p,
                    Details::Fresh(p) => cache.insert_with(p, id.exec),
                });
                (sig, false, fds, owner, identity)
            }
        };
        self.pids.insert(
            pid,
            Tracked {
                sig,
                denied,
                fds,
                owner,
                identity,
                seen: tick,
                read: (tick, depth),
            },
        );
        self.register(pid);
    }

    pub fn denied(&self) -> usize {
        self.pids.values().filter(|t| t.denied).count()
    }
}

fn remove_holder(inodes: &mut IntMap<u64, InodeEntry>, inode: u64, pid: u32) {
    let Some(entry) = inodes.get_mut(&inode) else {
        return;
    };
    match &mut entry.holders {
        Holders::One(h) if h.pid == pid => {
            inodes.remove(&inode);
        }
        Holders::One(_) => {}
        Holders::Many(v) => {
            v.retain(|h| h.pid != pid);
            if let [only] = v[..] {
                entry.holders = Holders::One(only);
            } else if v.is_empty() {
                inodes.remove(&inode);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(fds: &[(u32, u64)], pid: u32, start: u64) -> ScanOutcome {
        ScanOutcome::Scanned {
            sig: FdDirSig::default(),
            fds: fds
                .iter()
                .map(|&(fd, inode)| FdEntry { fd, inode })
                .collect(),
            owner: Some((
                Identity {
                    start_time: start,
                    exec: 0,
                },
                Details::Fresh(Process {
                    pid,
                    start_time: start,
                    name: format!("p{pid}"),
                    cmdline: String::new(),
                    uid: 0,
                    user: String::new(),
                }),
            )),
            work: crate::source::owners::fdscan::Work::default(),
        }
    }

    fn holders(index: &OwnerIndex, inode: u64) -> Vec<u32> {
        index
            .inodes
            .get(&inode)
            .map(|e| e.holders.as_slice().iter().map(|h| h.pid).collect())
            .unwrap_or_default()
    }

    #[test]
    fn shared_inodes_list_every_holder_once() {
        let mut index = OwnerIndex::default();
        let mut cache = ProcessCache::new();
        index.apply(
            10,
            scanned(&[(3, 500), (4, 500), (5, 0)], 10, 1),
            Depth::Full,
            1,
            &mut cache,
        );
        index.apply(
            11,
            scanned(&[(3, 500), (7, 600)], 11, 1),
            Depth::Full,
            1,
            &mut cache,
        );
        index.apply(12, scanned(&[(3, 500)], 12, 1), Depth::Full, 1, &mut cache);
        assert_eq!(holders(&index, 500), [10, 11, 12]);
        assert_eq!(holders(&index, 600), [11]);
        assert_eq!(index.inodes.len(), 2, "fd 5 is not a socket");

        index.remove(11);
        assert_eq!(holders(&index, 500), [10, 12]);
        assert!(holders(&index, 600).is_empty());
        index.drop_holder(500, 12);
        assert!(matches!(
            index.inodes[&500].holders,
            Holders::One(Holder { pid: 10, fd: 3 })
        ));
    }

    #[test]
    fn rescan_replaces_old_sockets_and_gone_removes_them() {
        let mut index = OwnerIndex::default();
        let mut cache = ProcessCache::new();
        index.apply(10, scanned(&[(3, 500)], 10, 1), Depth::Full, 1, &mut cache);
        index.apply(
            10,
            scanned(&[(3, 501)], 10, 1),
            Depth::Changed,
            2,
            &mut cache,
        );
        assert!(holders(&index, 500).is_empty());
        assert_eq!(holders(&index, 501), [10]);
        assert_eq!(cache.len(), 1);
        index.apply(10, ScanOutcome::Gone, Depth::Changed, 3, &mut cache);
        assert!(index.inodes.is_empty() && index.pids.is_empty());
    }

    #[test]
    fn unseen_processes_are_dropped() {
        let mut index = OwnerIndex::default();
        let mut cache = ProcessCache::new();
        index.apply(10, scanned(&[(3, 500)], 10, 1), Depth::Full, 1, &mut cache);
        index.apply(
            11,
            ScanOutcome::Denied(FdDirSig::default()),
            Depth::Full,
            1,
            &mut cache,
        );
        assert_eq!(index.denied(), 1);
        index.pids.get_mut(&11).unwrap().seen = 2;
        assert_eq!(index.remove_unseen(2), 1);
        assert!(index.inodes.is_empty());
        assert_eq!(index.pids.keys().copied().collect::<Vec<_>>(), [11]);
    }
}

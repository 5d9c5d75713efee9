//! The per-socket passes of a tick: mark which indexed inodes are in the sample, then give
//! every socket an interned owner set or a reason.
//!
//! Both passes do one integer-hash lookup per socket and allocate nothing per socket: the
//! scratch maps live across ticks, and only a new distinct owner set allocates its `Box`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Coverage, Owners, Process, Socket, Unattributed};
use crate::source::owners::Attribution;
use crate::source::owners::index::{Holders, IntMap, OwnerIndex};

/// Scratch state of the per-socket passes, reused across ticks.
#[derive(Debug, Default)]
pub struct Resolver {
    /// (inode, socket uid) of sample sockets no process is known to hold.
    unknown: Vec<(u64, u32)>,
    /// Sample inodes held by more than one process.
    shared: Vec<u64>,
    /// pid -> index into this tick's `processes`.
    proc_of_pid: IntMap<u32, u32>,
    /// pid -> owner set holding only that process.
    single: IntMap<u32, u32>,
    /// Sorted process indexes -> owner set, for shared sockets.
    multi: HashMap<Box<[u32]>, u32>,
    set_buf: Vec<u32>,
}

impl Resolver {
    /// Pass 1: stamp indexed inodes of the sample with `tick`; collect unknown and shared ones.
    pub fn mark_sample(&mut self, index: &mut OwnerIndex, sockets: &[Socket], tick: u64) {
        self.unknown.clear();
        self.shared.clear();
        for s in sockets.iter().filter(|s| s.inode != 0) {
            match index.inodes.get_mut(&s.inode) {
                Some(e) if e.seen != tick => {
                    e.seen = tick;
                    if matches!(e.holders, Holders::Many(_)) {
                        self.shared.push(s.inode);
                    }
                }
                Some(_) => {}
                None => self.unknown.push((s.inode, s.uid)),
            }
        }
    }

    /// Drop unknown inodes that a scan has since indexed.
    pub fn prune_unknown(&mut self, index: &OwnerIndex) {
        self.unknown
            .retain(|(inode, _)| !index.inodes.contains_key(inode));
    }

    pub fn unknown(&self) -> &[(u64, u32)] {
        &self.unknown
    }

    pub fn shared(&self) -> &[u64] {
        &self.shared
    }

    /// Pass 2: set `owners` on every socket and build the attribution. `denied_any`: some fd
    /// dir could not be read, so an unknown socket of another uid than `euid` is blamed on
    /// permissions rather than reported as held by nobody.
    pub fn resolve(
        &mut self,
        index: &mut OwnerIndex,
        sockets: &mut [Socket],
        tick: u64,
        denied_any: bool,
        euid: u32,
        privileged: bool,
    ) -> Attribution {
        self.unknown.clear();
        self.proc_of_pid.clear();
        self.single.clear();
        self.multi.clear();
        let mut processes: Vec<Arc<Process>> = Vec::new();
        let mut owner_sets: Vec<Box<[u32]>> = Vec::new();
        let mut coverage = Coverage::default();
        for s in sockets.iter_mut() {
            let set = if s.inode == 0 {
                None
            } else if let Some(e) = index.inodes.get_mut(&s.inode) {
                e.seen = tick;
                self.set_buf.clear();
                for h in e.holders.as_slice() {
                    if let Some(&i) = self.proc_of_pid.get(&h.pid) {
                        self.set_buf.push(i);
                    } else if let Some(p) = index.pids.get(&h.pid).and_then(|t| t.owner.as_ref()) {
                        let i = processes.len() as u32;
                        processes.push(Arc::clone(p));
                        self.proc_of_pid.insert(h.pid, i);
                        self.set_buf.push(i);
                    }
                }
                self.intern(&e.holders, &mut owner_sets)
            } else {
                self.unknown.push((s.inode, s.uid));
                None
            };
            s.owners = match set {
                Some(n) => Owners::Known(n),
                None if s.inode == 0 => Owners::None(Unattributed::NoInode),
                None if denied_any && s.uid != euid => Owners::None(Unattributed::PermissionDenied),
                None => Owners::None(Unattributed::NotFound),
            };
            coverage.add(s.owners);
        }
        Attribution {
            processes,
            owner_sets,
            coverage,
            privileged,
        }
    }

    /// The owner set for the process indexes in `set_buf` (holders without details dropped).
    fn intern(&mut self, holders: &Holders, owner_sets: &mut Vec<Box<[u32]>>) -> Option<u32> {
        match (holders, self.set_buf.as_slice()) {
            (_, []) => None,
            (Holders::One(h), &[i]) => Some(*self.single.entry(h.pid).or_insert_with(|| {
                owner_sets.push(Box::new([i]));
                owner_sets.len() as u32 - 1
            })),
            _ => {
                self.set_buf.sort_unstable();
                self.set_buf.dedup();
                if let Some(&n) = self.multi.get(self.set_buf.as_slice()) {
                    return Some(n);
                }
                let n = owner_sets.len() as u32;
                let set: Box<[u32]> = self.set_buf.as_slice().into();
                owner_sets.push(set.clone());
                self.multi.insert(set, n);
                Some(n)
            }
        }
    }
}

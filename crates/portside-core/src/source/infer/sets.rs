//! Owner sets interned across snapshots by process identity, so a remembered 4-tuple can
//! name its processes after they leave the snapshot (exited, or pid reused).

use std::sync::Arc;

use crate::model::{Process, Snapshot};
use crate::source::infer::{Inference, NONE};

#[derive(Debug)]
pub(super) struct OwnerSet {
    pub(super) procs: Box<[Arc<Process>]>,
    /// Last time (seconds since `base`) a 4-tuple was remembered with this set.
    pub(super) last_used: u32,
}

impl Inference {
    /// Free interned owner sets no remembered 4-tuple can refer to: a 4-tuple's time is
    /// never later than its set's `last_used`, so sets unused since `cutoff` are orphans.
    pub(super) fn free_sets(&mut self, cutoff: u32) {
        for (id, slot) in self.sets.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|s| s.last_used < cutoff)
                && let Some(set) = slot.take()
            {
                self.key.clear();
                self.key
                    .extend(set.procs.iter().map(|p| (p.pid, p.start_time)));
                self.key.sort_unstable();
                self.set_ids.remove(&self.key[..]);
                self.free.push(id as u32);
            }
        }
    }

    /// Intern snapshot owner set `n` (by process identity); `None` if it names no process.
    pub(super) fn intern(&mut self, snapshot: &Snapshot, n: u32, now: u32) -> Option<u32> {
        let procs: Vec<&Arc<Process>> = snapshot.owner_sets[n as usize]
            .iter()
            .filter_map(|&i| snapshot.processes.get(i as usize))
            .collect();
        if procs.is_empty() {
            return None;
        }
        self.key.clear();
        self.key.extend(procs.iter().map(|p| (p.pid, p.start_time)));
        self.key.sort_unstable();
        let id = if let Some(&id) = self.set_ids.get(&self.key[..]) {
            id
        } else {
            let set = OwnerSet {
                procs: procs.into_iter().cloned().collect(),
                last_used: now,
            };
            let id = if let Some(id) = self.free.pop() {
                self.sets[id as usize] = Some(set);
                id
            } else {
                self.sets.push(Some(set));
                self.mine_to_snap.push(NONE);
                (self.sets.len() - 1) as u32
            };
            self.set_ids.insert(self.key.clone().into_boxed_slice(), id);
            id
        };
        if let Some(Some(set)) = self.sets.get_mut(id as usize) {
            set.last_used = now;
        }
        self.mine_to_snap[id as usize] = n;
        Some(id)
    }

    /// The snapshot owner set holding the processes of interned set `mine`, created (and
    /// exited processes re-added) if the snapshot has none.
    pub(super) fn snapshot_set(&mut self, snapshot: &mut Snapshot, mine: u32) -> Option<u32> {
        let existing = *self.mine_to_snap.get(mine as usize)?;
        if existing != NONE {
            return Some(existing);
        }
        let set = self.sets.get(mine as usize)?.as_ref()?;
        let mut indexes: Vec<u32> = Vec::with_capacity(set.procs.len());
        for p in &set.procs {
            let i = *self
                .proc_index
                .entry((p.pid, p.start_time))
                .or_insert_with(|| {
                    snapshot.processes.push(Arc::clone(p));
                    (snapshot.processes.len() - 1) as u32
                });
            indexes.push(i);
        }
        indexes.sort_unstable();
        snapshot.owner_sets.push(indexes.into_boxed_slice());
        let n = (snapshot.owner_sets.len() - 1) as u32;
        self.mine_to_snap[mine as usize] = n;
        Some(n)
    }
}

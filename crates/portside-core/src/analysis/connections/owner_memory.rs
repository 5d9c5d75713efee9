//! Owner sets remembered across snapshots by process identity, so a connection can name
//! its processes after they let go of it (TIME_WAIT, orphans) or exited (pid reused too).

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Process, Snapshot};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A process identity that survives pid reuse.
type ProcId = (u32, u64);

/// No set.
pub(super) const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct OwnerSet {
    procs: Box<[Arc<Process>]>,
    /// The last tick a remembered connection referred to this set.
    used: u32,
}

/// Interned owner sets, and their mapping to the current snapshot's `owner_sets`.
///
/// Per tick: [`OwnerMemory::begin`], then [`OwnerMemory::remember`] /
/// [`OwnerMemory::recall`] per socket, [`OwnerMemory::mark`] per remembered connection,
/// and [`OwnerMemory::sweep`]. Warm, a tick allocates only when a new set of processes
/// appears.
#[derive(Debug, Clone, Default)]
pub(super) struct OwnerMemory {
    sets: Vec<Option<OwnerSet>>,
    free: Vec<u32>,
    ids: FastMap<Box<[ProcId]>, u32>,
    tick: u32,
    /// Snapshot owner set -> interned set (`NONE`: not yet looked up this tick).
    snap_to_mine: Vec<u32>,
    /// Interned set -> snapshot owner set (`NONE`: none yet this tick).
    mine_to_snap: Vec<u32>,
    proc_index: FastMap<ProcId, u32>,
    key: Vec<ProcId>,
}

impl OwnerMemory {
    pub(super) fn begin(&mut self, snapshot: &Snapshot) {
        self.tick = self.tick.wrapping_add(1);
        self.snap_to_mine.clear();
        self.snap_to_mine.resize(snapshot.owner_sets.len(), NONE);
        self.mine_to_snap.clear();
        self.mine_to_snap.resize(self.sets.len(), NONE);
        self.proc_index.clear();
    }

    /// The interned set of snapshot owner set `n` (`NONE` if it names no process).
    pub(super) fn remember(&mut self, snapshot: &Snapshot, n: u32) -> u32 {
        match self.snap_to_mine.get(n as usize) {
            Some(&mine) if mine != NONE => mine,
            Some(_) => {
                let mine = self.intern(snapshot, n);
                self.snap_to_mine[n as usize] = mine;
                mine
            }
            None => NONE,
        }
    }

    fn intern(&mut self, snapshot: &Snapshot, n: u32) -> u32 {
        let Some(set) = snapshot.owner_sets.get(n as usize) else {
            return NONE;
        };
        self.key.clear();
        self.key.extend(
            set.iter()
                .filter_map(|&i| snapshot.processes.get(i as usize))
                .map(|p| (p.pid, p.start_time)),
        );
        if self.key.is_empty() {
            return NONE;
        }
        self.key.sort_unstable();
        if let Some(&id) = self.ids.get(&self.key[..]) {
            self.mine_to_snap[id as usize] = n;
            return id;
        }
        let procs = set
            .iter()
            .filter_map(|&i| snapshot.processes.get(i as usize))
            .cloned()
            .collect();
        let entry = OwnerSet {
            procs,
            used: self.tick,
        };
        let id = if let Some(id) = self.free.pop() {
            self.sets[id as usize] = Some(entry);
            id
        } else {
            self.sets.push(Some(entry));
            self.mine_to_snap.push(NONE);
            (self.sets.len() - 1) as u32
        };
        self.ids.insert(self.key.clone().into_boxed_slice(), id);
        self.mine_to_snap[id as usize] = n;
        id
    }

    /// A remembered connection still refers to `mine`: keep it past this tick's sweep.
    pub(super) fn mark(&mut self, mine: u32) {
        if let Some(Some(set)) = self.sets.get_mut(mine as usize) {
            set.used = self.tick;
        }
    }

    /// The snapshot owner set holding the processes of interned set `mine`, created (and
    /// exited processes re-added to the snapshot) if the snapshot has none.
    pub(super) fn recall(&mut self, snapshot: &mut Snapshot, mine: u32) -> Option<u32> {
        let existing = *self.mine_to_snap.get(mine as usize)?;
        if existing != NONE {
            return Some(existing);
        }
        let set = self.sets.get(mine as usize)?.as_ref()?;
        if self.proc_index.is_empty() {
            for (i, p) in snapshot.processes.iter().enumerate() {
                self.proc_index.insert((p.pid, p.start_time), i as u32);
            }
        }
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

    /// Free the sets no remembered connection referred to this tick.
    pub(super) fn sweep(&mut self) {
        let tick = self.tick;
        for (id, slot) in self.sets.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|s| s.used != tick)
                && let Some(set) = slot.take()
            {
                self.key.clear();
                self.key
                    .extend(set.procs.iter().map(|p| (p.pid, p.start_time)));
                self.key.sort_unstable();
                self.ids.remove(&self.key[..]);
                self.free.push(id as u32);
            }
        }
    }

    /// Sets held now.
    pub(super) fn len(&self) -> usize {
        self.sets.iter().filter(|s| s.is_some()).count()
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.sets.capacity() * size_of::<Option<OwnerSet>>()
            + self.ids.capacity() * (size_of::<(Box<[ProcId]>, u32)>() + 1 + 16)
            + (self.snap_to_mine.capacity() + self.mine_to_snap.capacity()) * 4
            + self.proc_index.capacity() * (size_of::<(ProcId, u32)>() + 1)
    }
}

//! CPU and memory of the processes that own sockets, through `sysinfo` (what it is good
//! at: per-pid CPU deltas and RSS, refreshed only for the pids asked about).

use std::sync::Arc;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::model::{Process, ProcessUsage};

/// Keeps `sysinfo`'s per-process state across ticks: CPU usage is the delta of CPU time
/// between two refreshes, so the first sample of a process has none.
pub struct UsageMeter {
    system: System,
    /// Reused pid list: one refresh per tick, of the socket owners only.
    pids: Vec<Pid>,
    /// (pid, start time) of the processes measured by the previous call: only these have
    /// a CPU delta now (a process's run time says nothing about when we first saw it).
    measured: foldhash::HashSet<(u32, u64)>,
    previous: foldhash::HashSet<(u32, u64)>,
}

impl Default for UsageMeter {
    fn default() -> Self {
        UsageMeter {
            system: System::new(),
            pids: Vec::new(),
            measured: foldhash::HashSet::default(),
            previous: foldhash::HashSet::default(),
        }
    }
}

impl UsageMeter {
    /// Usage of each process, in the order given. Costs one `/proc/<pid>/stat` and
    /// `statm` read per process (a few µs each), never a scan of every process.
    pub fn measure(&mut self, processes: &[Arc<Process>]) -> Vec<ProcessUsage> {
        self.pids.clear();
        self.pids
            .extend(processes.iter().map(|p| Pid::from_u32(p.pid)));
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&self.pids),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        std::mem::swap(&mut self.previous, &mut self.measured);
        self.measured.clear();
        processes
            .iter()
            .map(|p| match self.system.process(Pid::from_u32(p.pid)) {
                // Not readable by the user who runs portside (see `process::real_user`).
                _ if p.uid == crate::source::process::real_user::HIDDEN_UID => {
                    ProcessUsage::default()
                }
                Some(sp) => {
                    let key = (p.pid, p.start_time);
                    self.measured.insert(key);
                    ProcessUsage {
                        cpu_percent: self.previous.contains(&key).then(|| sp.cpu_usage()),
                        rss_bytes: Some(sp.memory()),
                    }
                }
                None => ProcessUsage::default(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_this_process() {
        let me = Arc::new(Process {
            pid: std::process::id(),
            start_time: 0,
            name: "test".into(),
            cmdline: String::new(),
            uid: 0,
            user: String::new(),
        });
        let mut meter = UsageMeter::default();
        let first = meter.measure(std::slice::from_ref(&me));
        assert_eq!(first.len(), 1);
        // A test binary has at least a few hundred KiB resident.
        assert!(first[0].rss_bytes.unwrap() > 100 * 1024, "{first:?}");
        // Burn some CPU, then the second refresh has a delta to report.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        std::thread::sleep(std::time::Duration::from_millis(250));
        let second = meter.measure(std::slice::from_ref(&me));
        assert!(second[0].cpu_percent.is_some(), "{second:?}");
        let gone = Arc::new(Process {
            pid: u32::MAX - 7,
            ..(*me).clone()
        });
        assert_eq!(meter.measure(&[gone]), vec![ProcessUsage::default()]);
    }
}

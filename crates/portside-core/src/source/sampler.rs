//! One sample: socket dump + owner join + process details -> an owned `Snapshot`.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::model::{Family, Proto, Query, Snapshot, Socket, SourceKind, TcpState};
#[cfg(target_os = "linux")]
use crate::source::destroyed::DestroyFeed;
use crate::source::owners::OwnerJoin;
use crate::source::selection::Selection;
#[cfg(target_os = "linux")]
use crate::source::selection::bytecode::Bytecode;
#[cfg(target_os = "linux")]
use crate::source::sockdiag::SockDiag;
use crate::source::usage::UsageMeter;
use crate::source::{SourceError, procnet, sysctl};

/// How the sampler reads the kernel.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    pub query: Query,
    /// Root of the proc filesystem (`/proc`); injected so tests can use a recorded tree.
    pub proc_root: PathBuf,
    /// Read `/proc/net/{tcp,udp}{,6}` instead of netlink sock_diag.
    pub force_proc_net: bool,
    /// Join sockets with their owning processes.
    pub resolve_owners: bool,
    /// What the kernel is asked to select beyond `query` (state mask and `inet_diag`
    /// bytecode, sock_diag only). The caller still filters: the sample holds a superset of
    /// the selection, including what owner inference needs (see `dump`).
    pub selection: Selection,
    /// Only one sample will be taken, so owner inference has no earlier samples to draw on
    /// and the selection needs no widening for it.
    pub one_shot: bool,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            query: Query::default(),
            proc_root: PathBuf::from("/proc"),
            force_proc_net: false,
            resolve_owners: true,
            selection: Selection::everything(),
            one_shot: false,
        }
    }
}

/// Long-lived sampler: keeps the netlink socket, its buffer and the owner index across
/// ticks, so a steady-state tick does no set-up work.
pub struct Sampler {
    config: SamplerConfig,
    #[cfg(target_os = "linux")]
    diag: Option<SockDiag>,
    /// Socket-destroy notifications: closed connections counted exactly (`None`: estimated).
    #[cfg(target_os = "linux")]
    destroyed: Option<DestroyFeed>,
    owners: Option<OwnerJoin>,
    /// CPU and memory of socket owners (only with the real `/proc`: `sysinfo` reads it).
    usage: Option<UsageMeter>,
    /// Socket count of the last sample: the next sample's `Vec` is allocated once, at
    /// about the right size, instead of growing through ~17 reallocations at 100k.
    last_len: usize,
    /// Whether a sample was taken (the owner index is warm).
    warm: bool,
}

impl Sampler {
    /// Open the kernel sources. Without `/proc/net` (not Linux, or /proc not mounted) this
    /// is an error; without netlink sock_diag it falls back to `/proc/net`.
    pub fn new(config: SamplerConfig) -> Result<Sampler, SourceError> {
        let net = config.proc_root.join("net");
        if !net.is_dir() {
            return Err(SourceError::Unsupported(format!(
                "{} not found: portside needs Linux with /proc mounted",
                net.display()
            )));
        }
        #[cfg(target_os = "linux")]
        let diag = if config.force_proc_net {
            None
        } else {
            SockDiag::open().ok()
        };
        // Subscribed before the first dump, so no close after it goes unheard.
        #[cfg(target_os = "linux")]
        let destroyed = diag
            .is_some()
            .then(|| DestroyFeed::open(&config.query).ok())
            .flatten();
        let measure_usage = config.resolve_owners && config.proc_root == Path::new("/proc");
        let owners = config
            .resolve_owners
            .then(|| OwnerJoin::new(config.proc_root.clone()));
        Ok(Sampler {
            config,
            #[cfg(target_os = "linux")]
            diag,
            #[cfg(target_os = "linux")]
            destroyed,
            owners,
            usage: measure_usage.then(UsageMeter::default),
            last_len: 0,
            warm: false,
        })
    }

    /// Which source this sampler reads.
    pub fn source(&self) -> SourceKind {
        #[cfg(target_os = "linux")]
        if self.diag.is_some() {
            return SourceKind::SockDiag;
        }
        SourceKind::ProcNet
    }

    /// Why the sample holds more than the selection asked for, when it does: the kernel
    /// refused the selection's bytecode, so every socket is dumped and the caller's filter
    /// does all the work. For a one-line note to the user.
    pub fn selection_note(&self) -> Option<String> {
        #[cfg(target_os = "linux")]
        if let Some(why) = self.diag.as_ref().and_then(SockDiag::bytecode_refused) {
            return Some(format!(
                "note: the kernel refused the socket filter program ({why}); \
                 reading every socket and filtering in portside instead"
            ));
        }
        None
    }

    /// Take one sample.
    pub fn sample(&mut self) -> Result<Snapshot, SourceError> {
        let started = Instant::now();
        let taken_at = SystemTime::now();
        let mut sockets = Vec::with_capacity(self.last_len + self.last_len / 8 + 16);
        match self.owners.as_mut() {
            // The first owner join walks every process's fd table (~0.3 s at 70k fds):
            // overlap it with the socket dump on a second thread. Later ticks read only what
            // changed and need no thread.
            Some(join) if !self.warm => std::thread::scope(|scope| {
                let prefetch = scope.spawn(|| join.prefetch());
                let dumped = dump(
                    &self.config,
                    #[cfg(target_os = "linux")]
                    self.diag.as_mut(),
                    &mut sockets,
                );
                // A panic in the prefetch thread only loses the head start.
                let _ = prefetch.join();
                dumped
            })?,
            _ => dump(
                &self.config,
                #[cfg(target_os = "linux")]
                self.diag.as_mut(),
                &mut sockets,
            )?,
        }
        self.last_len = sockets.len();
        self.warm = true;
        // Drained after the dump: a connection destroyed while the dump ran is either in
        // the dump and in this batch, or in neither yet (see `Insight` for the arithmetic).
        #[cfg(target_os = "linux")]
        let destroyed = self.destroyed.as_mut().map(DestroyFeed::drain);
        #[cfg(not(target_os = "linux"))]
        let destroyed = None;
        let (processes, owner_sets, coverage, privileged) = if let Some(join) = self.owners.as_mut()
        {
            let a = join.attribute(&mut sockets);
            (a.processes, a.owner_sets, a.coverage, a.privileged)
        } else {
            let mut coverage = crate::model::Coverage::default();
            for s in &sockets {
                coverage.add(s.owners);
            }
            (Vec::new(), Vec::new(), coverage, true)
        };
        let mut snapshot = Snapshot {
            taken_at,
            duration: started.elapsed(),
            source: self.source(),
            sockets,
            processes,
            usage: Vec::new(),
            owner_sets,
            coverage,
            privileged,
            ephemeral_range: sysctl::ephemeral_range(&self.config.proc_root)
                .unwrap_or(sysctl::DEFAULT_EPHEMERAL_RANGE),
            destroyed,
        };
        if let Some(meter) = self.usage.as_mut() {
            snapshot.usage = meter.measure(&snapshot.processes);
        }
        snapshot.duration = started.elapsed();
        Ok(snapshot)
    }
}

/// Dump every table of the query into `out`, from sock_diag when open, else `/proc/net`.
fn dump(
    config: &SamplerConfig,
    #[cfg(target_os = "linux")] diag: Option<&mut SockDiag>,
    out: &mut Vec<Socket>,
) -> Result<(), SourceError> {
    #[cfg(target_os = "linux")]
    if let Some(diag) = diag {
        return dump_selected(config, diag, out);
    }
    let query = config.query;
    for (proto, family) in query.tables() {
        let mask = state_mask(proto, query.listening_only);
        let from = out.len();
        procnet::read_table(&config.proc_root, proto, family, out)?;
        if query.listening_only {
            retain_from(out, from, |s| mask & s.state.mask_bit() != 0);
        }
    }
    Ok(())
}

/// One sock_diag dump per table of the query that the selection keeps, with the
/// selection's state mask and bytecode; TCP of both families in one kernel walk.
///
/// Owner inference attributes inode-less TCP sockets (TIME_WAIT, SYN_RECV, orphans, not yet
/// accepted connections) from data the selection may leave out, so that a selected sample
/// reads exactly as the same sockets of an unselected one: the listeners of their ports
/// (one cheap dump of every listener: the kernel walks only its listening hash), and, when
/// more samples follow, the earlier states of the same connections (the state mask is not
/// narrowed then; the bytecode still is, since a connection keeps its addresses and ports).
#[cfg(target_os = "linux")]
fn dump_selected(
    config: &SamplerConfig,
    diag: &mut SockDiag,
    out: &mut Vec<Socket>,
) -> Result<(), SourceError> {
    let query = config.query;
    let sel = &config.selection;
    let bytecode = sel.bytecode();
    let listen = TcpState::Listen.mask_bit();
    let tcp_base = state_mask(Proto::Tcp, query.listening_only);
    let mut tcp_mask = tcp_base & sel.states(Proto::Tcp);
    let tcp_v4 = query.tcp && query.v4 && sel.tcp && sel.v4;
    let tcp_v6 = query.tcp && query.v6 && sel.tcp && sel.v6;
    let narrowed = bytecode.is_some()
        || tcp_mask != tcp_base
        || (tcp_v4, tcp_v6) != (query.tcp && query.v4, query.tcp && query.v6);
    let mut listeners = false;
    if config.resolve_owners && narrowed && (tcp_v4 || tcp_v6) && tcp_mask & !listen != 0 {
        if !config.one_shot {
            tcp_mask = tcp_base;
        }
        if tcp_base & listen != 0 {
            listeners = true;
            tcp_mask &= !listen;
        }
    }
    if tcp_mask != 0 {
        dump_tcp(diag, (tcp_v4, tcp_v6), tcp_mask, bytecode.as_ref(), out)?;
    }
    if listeners {
        let families = (query.tcp && query.v4, query.tcp && query.v6);
        dump_tcp(diag, families, listen, None, out)?;
    }
    let udp_mask = state_mask(Proto::Udp, query.listening_only) & sel.states(Proto::Udp);
    for (proto, family) in query.tables() {
        if proto == Proto::Udp && sel.has_table(proto, family) && udp_mask != 0 {
            diag.dump_selected(proto, Some(family), udp_mask, bytecode.as_ref(), out)?;
        }
    }
    Ok(())
}

/// TCP of the given families (IPv4, IPv6): both in one walk, or one of them.
#[cfg(target_os = "linux")]
fn dump_tcp(
    diag: &mut SockDiag,
    families: (bool, bool),
    mask: u32,
    bytecode: Option<&Bytecode>,
    out: &mut Vec<Socket>,
) -> Result<(), SourceError> {
    let family = match families {
        (true, true) => None,
        (true, false) => Some(Family::V4),
        (false, true) => Some(Family::V6),
        (false, false) => return Ok(()),
    };
    diag.dump_selected(Proto::Tcp, family, mask, bytecode, out)
}

/// Kernel state mask for a table: everything, or only listening sockets (TCP LISTEN,
/// unconnected UDP), so `-l` is filtered in the kernel.
fn state_mask(proto: Proto, listening_only: bool) -> u32 {
    match (proto, listening_only) {
        (_, false) => crate::source::sockdiag::TABLE_STATES,
        (Proto::Tcp, true) => TcpState::Listen.mask_bit(),
        (Proto::Udp, true) => TcpState::Close.mask_bit(),
    }
}

fn retain_from(sockets: &mut Vec<Socket>, from: usize, keep: impl Fn(&Socket) -> bool) {
    let mut i = from;
    while i < sockets.len() {
        if keep(&sockets[i]) {
            i += 1;
        } else {
            sockets.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn missing_proc_is_a_clear_error() {
        let config = SamplerConfig {
            proc_root: PathBuf::from("/nonexistent/proc"),
            ..SamplerConfig::default()
        };
        let Err(e) = Sampler::new(config) else {
            panic!("a sampler without /proc");
        };
        assert!(e.to_string().contains("/nonexistent/proc/net"), "{e}");
        assert!(e.to_string().contains("Linux"), "{e}");
    }

    #[test]
    fn listening_only_on_both_sources() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        for force_proc_net in [false, true] {
            let mut sampler = Sampler::new(SamplerConfig {
                query: Query {
                    listening_only: true,
                    ..Query::default()
                },
                force_proc_net,
                ..SamplerConfig::default()
            })
            .unwrap();
            let snap = sampler.sample().unwrap();
            assert!(snap.sockets.iter().all(Socket::is_listening));
            let mine: Vec<_> = snap
                .sockets
                .iter()
                .filter(|s| s.local.port() == port)
                .collect();
            assert_eq!(
                mine.len(),
                1,
                "only the listener (proc_net: {force_proc_net})"
            );
            assert_eq!(mine[0].state, TcpState::Listen);
            let owner: Vec<u32> = snap.owners_of(mine[0]).map(|p| p.pid).collect();
            assert_eq!(owner, vec![std::process::id()]);
            let expected = if force_proc_net {
                SourceKind::ProcNet
            } else {
                SourceKind::SockDiag
            };
            assert_eq!(snap.source, expected);
        }
    }
}

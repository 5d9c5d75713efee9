//! `render-bench`: the time to build and render one TUI frame (grouped view and
//! connections view) from a large snapshot, drawn on ratatui's `TestBackend`.
//!
//! The snapshot is synthetic (the scale preset's mix, deterministic) or, with `--live`,
//! one real sample of the caller's network namespace.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use portside::model::{
    Coverage, Family, Owners, Process, Proto, Snapshot, Socket, SourceKind, TcpState, Unattributed,
};

use crate::plan::Mix;

/// Options of the `render-bench` subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Sockets in the synthetic snapshot (the preset's mix)
    #[arg(long, default_value_t = 100_000)]
    sockets: u32,
    /// Sample the current network namespace instead of a synthetic snapshot
    #[arg(long)]
    live: bool,
    /// Frames to time per view (the median is reported)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    frames: u32,
    /// Terminal size, columns x rows (`200x50`)
    #[arg(long, default_value = "200x50")]
    size: String,
}

/// The views the issue asks to time.
#[derive(Debug, Clone, Copy)]
pub enum View {
    Grouped,
    Connections,
}

impl View {
    fn name(self) -> &'static str {
        match self {
            View::Grouped => "grouped",
            View::Connections => "connections",
        }
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    let (cols, rows) = parse_size(&args.size)?;
    let snapshot = if args.live {
        live_snapshot()?
    } else {
        synthetic(Mix::of_total(args.sockets))
    };
    println!(
        "snapshot sockets={} processes={} size={cols}x{rows}",
        snapshot.sockets.len(),
        snapshot.processes.len()
    );
    for view in [View::Grouped, View::Connections] {
        let mut times = Vec::with_capacity(args.frames as usize);
        for _ in 0..args.frames {
            let t = Instant::now();
            render_frame(view, &snapshot, cols, rows)?;
            times.push(t.elapsed());
        }
        times.sort_unstable();
        println!(
            "frame view={} median_ms={:.2} min_ms={:.2} max_ms={:.2} frames={}",
            view.name(),
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1]),
            times.len()
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("bad --size {s:?}: use COLSxROWS, e.g. 200x50");
    let (c, r) = s.split_once('x').ok_or_else(bad)?;
    let (c, r) = (
        c.parse::<u16>().map_err(|_| bad())?,
        r.parse::<u16>().map_err(|_| bad())?,
    );
    if c < 20 || r < 5 {
        return Err(bad());
    }
    Ok((c, r))
}

/// SLOT for the TUI (branch `tui`): build the app state for `view` from `snapshot` and
/// draw one frame on a `TestBackend` of `cols` x `rows`, as the live view does per tick.
fn render_frame(view: View, snapshot: &Snapshot, cols: u16, rows: u16) -> Result<(), String> {
    let _ = (snapshot, cols, rows);
    Err(format!(
        "the TUI frame API is not merged yet: cannot render the {} view",
        view.name()
    ))
}

/// One real sample of the caller's namespace, through portside's own sampler.
fn live_snapshot() -> Result<Snapshot, String> {
    use portside::source::sampler::{Sampler, SamplerConfig};
    let mut sampler = Sampler::new(SamplerConfig::default()).map_err(|e| e.to_string())?;
    let snapshot = sampler.sample().map_err(|e| e.to_string())?;
    if snapshot.sockets.is_empty() {
        return Err("the live sample has no sockets (is the sampler implemented?)".into());
    }
    Ok(snapshot)
}

/// A deterministic snapshot with `mix`'s counts, shaped like the load generator's:
/// five processes, listeners on a few hot ports, `TIME_WAIT` without owners.
pub fn synthetic(mix: Mix) -> Snapshot {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let processes: Vec<Arc<Process>> = (0..5u32)
        .map(|i| {
            Arc::new(Process {
                pid: 1000 + i,
                start_time: 100 + u64::from(i),
                name: "portside-loadge".into(),
                cmdline: format!(
                    "portside-loadgen worker {}",
                    if i < 3 { "server" } else { "client" }
                ),
                uid: 0,
                user: "root".into(),
            })
        })
        .collect();
    let owner_sets: Vec<Box<[u32]>> = (0..5u32).map(|i| vec![i].into_boxed_slice()).collect();
    let listen_port = |k: u32| 20_000 + (k % mix.listen.max(1)) as u16;
    let client = |k: u32| {
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(
                127,
                1,
                (k / 250 % 250) as u8 + 1,
                (k % 250) as u8 + 1,
            )),
            32_768 + (k % 28_000) as u16,
        )
    };
    let mut sockets = Vec::with_capacity(mix.total() as usize);
    let mut push = |state, local, remote, owner: Option<u32>| {
        let (inode, owners) = match owner {
            Some(o) => (u64::from(sockets.len() as u32) + 10_000, Owners::Known(o)),
            None => (0, Owners::None(Unattributed::NoInode)),
        };
        sockets.push(Socket {
            proto: Proto::Tcp,
            family: Family::V4,
            state,
            local,
            remote,
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode,
            owners,
        });
    };
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    for k in 0..mix.listen {
        push(
            TcpState::Listen,
            SocketAddr::new(lo, listen_port(k)),
            any,
            Some(k % 3),
        );
    }
    for k in 0..mix.pairs() {
        let server = SocketAddr::new(lo, listen_port(k));
        push(TcpState::Established, server, client(k), Some(k % 3));
        push(TcpState::Established, client(k), server, Some(3 + k % 2));
    }
    for k in 0..mix.time_wait {
        push(
            TcpState::TimeWait,
            client(k + 60_000),
            SocketAddr::new(lo, listen_port(k)),
            None,
        );
    }
    for k in 0..mix.close_wait {
        push(
            TcpState::CloseWait,
            SocketAddr::new(lo, listen_port(k)),
            client(k + 90_000),
            Some(k % 3),
        );
    }
    let mut coverage = Coverage::default();
    for s in &sockets {
        coverage.add(s.owners);
    }
    Snapshot {
        taken_at: SystemTime::now(),
        duration: Duration::ZERO,
        source: SourceKind::SockDiag,
        sockets,
        processes,
        owner_sets,
        coverage,
        privileged: true,
        ephemeral_range: (32_768, 60_999),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_snapshot_has_the_mix() {
        let s = synthetic(Mix::of_total(10_000));
        assert_eq!(s.sockets.len(), 10_000);
        let count = |st| s.sockets.iter().filter(|x| x.state == st).count();
        assert_eq!(count(TcpState::Listen), 100);
        assert_eq!(count(TcpState::Established), 6_000);
        assert_eq!(count(TcpState::TimeWait), 3_000);
        assert_eq!(count(TcpState::CloseWait), 900);
        assert_eq!(s.coverage.no_inode, 3_000);
        assert_eq!(s.coverage.attributed, 7_000);
        assert!(s.sockets.iter().all(|x| s.owners_of(x).count() <= 1));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("200x50"), Ok((200, 50)));
        assert!(parse_size("200").is_err());
        assert!(parse_size("5x5").is_err());
    }
}

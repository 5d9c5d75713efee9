//! `render-bench`: the time to build and render one TUI frame (grouped view and
//! connections view) from a large snapshot, drawn on ratatui's `TestBackend`.
//!
//! The snapshot is synthetic (the scale preset's mix, deterministic) or, with `--live`,
//! one real sample of the caller's network namespace.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use portside::analysis::alerts::default_alerts;
use portside::analysis::filter::Filter;
use portside::model::{
    Coverage, Family, Owners, Process, Proto, Snapshot, Socket, SourceKind, TcpState, Unattributed,
};
use portside::source::sysctl::HostInfo;
use portside::tui::app::{App, AppOptions};
use portside::tui::event::Event;
use portside::tui::keys::Action;
use portside::tui::render;
use portside::tui::theme::Theme;
use portside_core::engine::{Engine, EngineConfig, Sample, SnapshotSource};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

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
        let mut screen = Screen::new(view, cols, rows)?;
        // The first frame fills caches and history; it is not counted.
        screen.frame(&snapshot)?;
        let mut builds = Vec::with_capacity(args.frames as usize);
        let mut renders = Vec::with_capacity(args.frames as usize);
        let mut totals = Vec::with_capacity(args.frames as usize);
        for _ in 0..args.frames {
            let (build, render) = screen.frame(&snapshot)?;
            builds.push(build);
            renders.push(render);
            totals.push(build + render);
        }
        println!(
            "frame view={} median_ms={:.2} min_ms={:.2} max_ms={:.2} build_ms={:.2} render_ms={:.2} frames={}",
            view.name(),
            ms(median(&mut totals)),
            ms(totals[0]),
            ms(totals[totals.len() - 1]),
            ms(median(&mut builds)),
            ms(median(&mut renders)),
            totals.len()
        );
    }
    Ok(())
}

/// Sorts `times` and returns the middle one.
fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
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

/// The live view driven as the terminal loop drives it, drawing on a `TestBackend`.
struct Screen {
    app: App,
    /// Derives each tick before the clock starts: that is the engine thread's work.
    engine: Engine,
    terminal: Terminal<TestBackend>,
    /// Samples fed so far: each is stamped a second after the previous, like the sampler's.
    fed: u32,
}

impl Screen {
    fn new(view: View, cols: u16, rows: u16) -> Result<Screen, String> {
        let options = AppOptions {
            interval: Duration::from_secs(1),
            host: HostInfo::default(),
            numeric: false,
            theme: Theme::new(true),
            filter_text: String::new(),
            parse_filter: Filter::parse_system,
            area: Rect::new(0, 0, cols, rows),
            alerts: default_alerts(),
        };
        let mut app = App::new(options, Instant::now()).map_err(|e| e.to_string())?;
        if matches!(view, View::Connections) {
            app.apply(Action::SwitchView);
        }
        let terminal = Terminal::new(TestBackend::new(cols, rows)).map_err(|e| e.to_string())?;
        Ok(Screen {
            app,
            engine: Engine::new(NoSource, EngineConfig::default()),
            terminal,
            fed: 0,
        })
    }

    /// One frame from a new snapshot: (build: apply the engine's tick and derive the view's
    /// rows, the UI thread's work; render: draw it). The copy of the snapshot and the
    /// engine's tick are made before the clock starts.
    fn frame(&mut self, snapshot: &Snapshot) -> Result<(Duration, Duration), String> {
        let mut snap = snapshot.clone();
        self.fed += 1;
        snap.taken_at += Duration::from_secs(u64::from(self.fed));
        let tick = self.engine.ingest(Sample::of(snap), Instant::now());
        let start = Instant::now();
        self.app.update(Event::Tick(tick), Instant::now());
        self.app.sync();
        let built = Instant::now();
        self.terminal
            .draw(|f| render::render(f, &self.app))
            .map_err(|e| e.to_string())?;
        Ok((built - start, built.elapsed()))
    }
}

/// The bench feeds its engine by hand (`Engine::ingest`): nothing to sample.
struct NoSource;

impl SnapshotSource for NoSource {
    fn sample(&mut self) -> Result<Sample, String> {
        Err("render-bench feeds samples itself".into())
    }
}

/// One real sample of the caller's namespace, through portside's own sampler.
fn live_snapshot() -> Result<Snapshot, String> {
    use portside::source::sampler::{Sampler, SamplerConfig};
    let mut sampler = Sampler::new(SamplerConfig::default()).map_err(|e| e.to_string())?;
    let snapshot = sampler.sample().map_err(|e| e.to_string())?;
    if snapshot.sockets.is_empty() {
        return Err(
            "the live sample has no sockets: run it inside a loaded namespace \
                    (portside-loadgen --preset 100k -- portside-loadgen render-bench --live)"
                .into(),
        );
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
            cookie: sockets.len() as u64 + 1,
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
        source: SourceKind::SockDiag,
        sockets,
        processes,
        owner_sets,
        coverage,
        privileged: true,
        ephemeral_range: (32_768, 60_999),
        ..Snapshot::empty()
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
    fn a_frame_shows_the_snapshot_totals() {
        let snapshot = synthetic(Mix::of_total(1_000));
        for view in [View::Grouped, View::Connections] {
            let mut screen = Screen::new(view, 200, 50).unwrap();
            screen.frame(&snapshot).unwrap();
            let text: String = screen
                .terminal
                .backend()
                .buffer()
                .content()
                .iter()
                .map(ratatui::buffer::Cell::symbol)
                .collect();
            for shown in ["LISTEN 10", "ESTAB 600", "TIME_WAIT 300", "CLOSE_WAIT 90"] {
                assert!(text.contains(shown), "{view:?} frame lacks {shown:?}");
            }
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("200x50"), Ok((200, 50)));
        assert!(parse_size("200").is_err());
        assert!(parse_size("5x5").is_err());
    }
}

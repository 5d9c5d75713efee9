//! Frame-time measurement at 100k sockets: `cargo run --release --example tui_frame_time`.
//! Times the engine's tick (insight, reports, alerts: the engine thread's work), the UI
//! thread's work per tick (apply + group or filter + sort) and one frame (build + render
//! into a `TestBackend`) for each view.
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use portside::tui::app::{App, AppOptions};
use portside::tui::event::Event;
use portside::tui::theme::Theme;
use portside::tui::{render, synthetic};
use portside_core::engine::{Engine, EngineConfig, Sample, SnapshotSource};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

fn key(app: &mut App, code: KeyCode) {
    let ev = Event::Input(TermEvent::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    app.update(ev, Instant::now());
}

/// The example feeds its engine by hand.
struct Fed;

impl SnapshotSource for Fed {
    fn sample(&mut self) -> Result<Sample, String> {
        Err("fed by hand".into())
    }
}

fn time<T>(runs: u32, mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(f());
    }
    start.elapsed() / runs
}

fn main() {
    let sockets: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let (width, height) = (200, 60);
    let options = AppOptions {
        interval: Duration::from_secs(1),
        host: portside::source::sysctl::HostInfo::default(),
        numeric: false,
        theme: Theme::new(true),
        filter_text: String::new(),
        parse_filter: portside::analysis::filter::Filter::parse_system,
        area: Rect::new(0, 0, width, height),
        alerts: portside::analysis::alerts::default_alerts(),
    };
    let mut app = App::new(options, Instant::now()).unwrap();
    let snaps: Vec<_> = (0..6)
        .map(|seed| synthetic::snapshot(sockets, seed))
        .collect();
    println!(
        "{} sockets per snapshot, {width}x{height} screen",
        snaps[0].sockets.len()
    );
    let mut term = Terminal::new(TestBackend::new(width, height)).unwrap();
    let mut engine = Engine::new(Fed, EngineConfig::default());
    let mut tick = 0;
    let mut per_snapshot = |app: &mut App| {
        tick += 1;
        let mut snap = snaps[tick % snaps.len()].clone();
        // A second apart, as the sampler would send them: the history and rates move.
        snap.taken_at += Duration::from_secs(tick as u64);
        let t = Instant::now();
        let ticked = engine.ingest(Sample::of(snap), t);
        let engine_took = t.elapsed();
        let t = Instant::now();
        app.update(Event::Tick(ticked), Instant::now());
        app.sync();
        (engine_took, t.elapsed())
    };
    let mut report = |name: &str, app: &mut App, term: &mut Terminal<TestBackend>| {
        let runs: Vec<_> = (0..5).map(|_| per_snapshot(app)).collect();
        let engine = runs.iter().map(|r| r.0).min().unwrap();
        let ui = runs.iter().map(|r| r.1).min().unwrap();
        let frame = time(50, || term.draw(|f| render::render(f, app)).map(|_| ()));
        println!(
            "{name:<22} engine tick: {engine:>9.2?}   UI thread per tick (apply + rows): {ui:>9.2?}   frame (build + render): {frame:>9.2?}"
        );
    };
    report("ports view", &mut app, &mut term);
    key(&mut app, KeyCode::Tab);
    report("connections view", &mut app, &mut term);
    key(&mut app, KeyCode::Tab);
    for _ in 0..2 {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    report("drill-down (443)", &mut app, &mut term);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('w'));
    report("TIME_WAIT panel", &mut app, &mut term);
    key(&mut app, KeyCode::Char('L'));
    report("listener panel", &mut app, &mut term);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('/'));
    let typing = time(20, || {
        key(&mut app, KeyCode::Char('4'));
        key(&mut app, KeyCode::Backspace);
    }) / 2;
    println!("filter keystroke (parse + regroup {sockets}): {typing:.2?}");
}

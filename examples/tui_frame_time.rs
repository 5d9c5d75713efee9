//! Frame-time measurement at 100k sockets: `cargo run --release --example tui_frame_time`.
//! Times the per-snapshot work (apply + insight + alerts + group or filter + sort, or the
//! open panel's report) and one frame (build + render into a `TestBackend`) for each view.
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use portside::tui::app::{App, AppOptions};
use portside::tui::event::{Event, Sample};
use portside::tui::theme::Theme;
use portside::tui::{render, synthetic};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

fn key(app: &mut App, code: KeyCode) {
    let ev = Event::Input(TermEvent::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    app.update(ev, Instant::now());
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
        keymap: portside::tui::keys::KeyMap::default(),
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
    let mut tick = 0;
    let mut per_snapshot = |app: &mut App| {
        tick += 1;
        let mut snap = snaps[tick % snaps.len()].clone();
        // A second apart, as the sampler would send them: the history and rates move.
        snap.taken_at += Duration::from_secs(tick as u64);
        let t = Instant::now();
        app.update(Event::Sample(Sample::of(snap)), Instant::now());
        app.sync();
        t.elapsed()
    };
    let mut report = |name: &str, app: &mut App, term: &mut Terminal<TestBackend>| {
        let sample = (0..5).map(|_| per_snapshot(app)).min().unwrap();
        let frame = time(50, || term.draw(|f| render::render(f, app)).map(|_| ()));
        println!(
            "{name:<22} new snapshot (apply + derive): {sample:>9.2?}   frame (build + render): {frame:>9.2?}"
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

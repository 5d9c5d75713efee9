//! Test support: an app fed by an engine over synthetic samples ([`Rig`]), scripted keys,
//! and drawing to a `TestBackend`. No terminal, no threads: the rig does what the engine
//! thread and the event loop do (ticks in, the user's filter out), in line.

use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

use crate::analysis::filter::Filter;
use crate::model::Snapshot;
use crate::source::sysctl::HostInfo;
use crate::tui::app::{App, AppOptions};
use portside_core::engine::{Engine, EngineConfig, Sample, SnapshotSource};

use crate::tui::event::Event;
use crate::tui::keys::Chord;
use crate::tui::theme::Theme;
use crate::tui::{render, synthetic};

/// A fixed start time, so ages on screen are exact.
pub fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T0.get_or_init(Instant::now)
}

pub fn at(secs: u64) -> Instant {
    t0() + Duration::from_secs(secs)
}

/// The test host: 8 listeners and `connections` more sockets.
pub fn snapshot(connections: usize) -> Snapshot {
    synthetic::snapshot(connections, 1)
}

/// An app and the engine that feeds it. Derefs to the app.
pub struct Rig {
    pub app: App,
    pub engine: Engine,
}

impl std::ops::Deref for Rig {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl std::ops::DerefMut for Rig {
    fn deref_mut(&mut self) -> &mut App {
        &mut self.app
    }
}

/// The rig's engine is fed by hand ([`Rig::feed`]).
struct Fed;

impl SnapshotSource for Fed {
    fn sample(&mut self) -> Result<Sample, String> {
        Err("the test rig feeds samples itself".into())
    }
}

impl Rig {
    /// The engine derives a tick from `sample`; it arrives at the app at `at`.
    pub fn feed(&mut self, sample: Sample, at: Instant) {
        let tick = self.engine.ingest(sample, Instant::now());
        self.app.update(Event::Tick(tick), at);
    }

    /// Hands a changed filter to the engine and its re-derived tick to the app (the
    /// engine thread's control channel), then syncs the app.
    pub fn sync(&mut self) {
        self.forward_scope();
        self.app.sync();
    }

    /// What the event loop does after each burst of events: a changed filter goes to the
    /// engine, and its re-derived tick comes back and is applied.
    pub fn forward_scope(&mut self) {
        if let Some((filter, text)) = self.app.take_scope_request()
            && let Some(tick) = self.engine.set_filter(filter, text)
        {
            let now = self.app.now;
            self.app.update(Event::Tick(tick), now);
            self.app.sync();
        }
    }

    /// Replaces the engine's alert rules (from the next tick).
    pub fn set_alerts(&mut self, rules: Vec<crate::analysis::alerts::Alert>) {
        self.engine.set_alerts(rules);
    }
}

/// A new app of `width` x `height` with `filter` and the default alerts, before any sample.
pub fn empty_app(width: u16, height: u16, filter: &str) -> Rig {
    let options = AppOptions {
        interval: Duration::from_secs(1),
        host: HostInfo {
            hostname: "testhost".into(),
            kernel: "6.1.0-test".into(),
        },
        numeric: false,
        theme: Theme::new(true),
        filter_text: filter.into(),
        parse_filter: Filter::parse_system,
        area: Rect::new(0, 0, width, height),
        alerts: crate::analysis::alerts::default_alerts(),
    };
    let app = App::new(options, t0()).expect("test filter parses");
    let engine = Engine::new(
        Fed,
        EngineConfig {
            alerts: app.alert_rules().to_vec(),
            filter: app.filter.clone(),
            filter_text: app.filter_text.clone(),
            ..EngineConfig::default()
        },
    );
    Rig { app, engine }
}

/// An app of `width` x `height` with `filter`, fed `snap` at t0.
pub fn app_with(snap: Snapshot, width: u16, height: u16, filter: &str) -> Rig {
    let mut app = empty_app(width, height, filter);
    app.feed(Sample::of(snap), t0());
    app.sync();
    app
}

/// An app of `width` x `height` fed the busy host's samples 0 to `last`, one second apart
/// (each applied, as the UI loop would between draws).
pub fn busy_app(last: u32, width: u16, height: u16) -> Rig {
    let mut app = empty_app(width, height, "");
    for tick in 0..=last {
        app.feed(synthetic::busy(tick), at(u64::from(tick)));
        app.sync();
    }
    app
}

pub fn app(connections: usize) -> Rig {
    app_with(snapshot(connections), 100, 30, "")
}

/// Presses the keys of a binding string (`"j"`, `"ctrl+c"`, `"enter"`).
pub fn press(app: &mut Rig, key: &str) {
    let chord: Chord = key.parse().expect("test key parses");
    let now = app.now;
    app.update(
        Event::Input(TermEvent::Key(KeyEvent::new(chord.code, chord.mods))),
        now,
    );
    app.forward_scope();
}

/// Types text character by character.
pub fn type_text(app: &mut Rig, text: &str) {
    for c in text.chars() {
        press(app, &c.to_string());
    }
}

/// Draws one frame at the app's size.
pub fn draw(app: &mut Rig) -> Terminal<TestBackend> {
    app.sync();
    let mut term = Terminal::new(TestBackend::new(app.area.width, app.area.height)).unwrap();
    term.draw(|f| render::render(f, &app.app)).unwrap();
    term
}

/// The screen as text lines.
pub fn screen(app: &mut Rig) -> String {
    draw(app).backend().to_string()
}

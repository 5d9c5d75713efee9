//! Test support: an app over a synthetic snapshot, scripted keys, and drawing to a
//! `TestBackend`. No terminal.

use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

use crate::analysis::filter::Filter;
use crate::model::Snapshot;
use crate::source::sysctl::HostInfo;
use crate::tui::app::{App, AppOptions};
use crate::tui::event::{Event, Sample};
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

/// A new app of `width` x `height` with `filter` and the default alerts, before any sample.
pub fn empty_app(width: u16, height: u16, filter: &str) -> App {
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
        keymap: crate::tui::keys::KeyMap::default(),
    };
    App::new(options, t0()).expect("test filter parses")
}

/// An app of `width` x `height` with `filter`, fed `snap` at t0.
pub fn app_with(snap: Snapshot, width: u16, height: u16, filter: &str) -> App {
    let mut app = empty_app(width, height, filter);
    app.update(Event::Sample(Sample::of(snap)), t0());
    app.sync();
    app
}

/// An app of `width` x `height` fed the busy host's samples 0 to `last`, one second apart
/// (each applied, as the UI loop would between draws).
pub fn busy_app(last: u32, width: u16, height: u16) -> App {
    let mut app = empty_app(width, height, "");
    for tick in 0..=last {
        app.update(Event::Sample(synthetic::busy(tick)), at(u64::from(tick)));
        app.sync();
    }
    app
}

pub fn app(connections: usize) -> App {
    app_with(snapshot(connections), 100, 30, "")
}

/// Presses the keys of a binding string (`"j"`, `"ctrl+c"`, `"enter"`).
pub fn press(app: &mut App, key: &str) {
    let chord: Chord = key.parse().expect("test key parses");
    let now = app.now;
    app.update(
        Event::Input(TermEvent::Key(KeyEvent::new(chord.code, chord.mods))),
        now,
    );
}

/// Types text character by character.
pub fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, &c.to_string());
    }
}

/// Draws one frame at the app's size.
pub fn draw(app: &mut App) -> Terminal<TestBackend> {
    app.sync();
    let mut term = Terminal::new(TestBackend::new(app.area.width, app.area.height)).unwrap();
    term.draw(|f| render::render(f, app)).unwrap();
    term
}

/// The screen as text lines.
pub fn screen(app: &mut App) -> String {
    draw(app).backend().to_string()
}

//! The live view driven by arbitrary keys, mouse events, pastes, resizes (down to 0x0) and
//! samples, drawn after every event on a test backend: nothing may panic.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};
use libfuzzer_sys::fuzz_target;
use portside::analysis::alerts::default_alerts;
use portside::analysis::filter::Filter;
use portside::source::sysctl::HostInfo;
use portside::tui::app::{App, AppOptions};
use portside::tui::event::{Event, Sample};
use portside::tui::render;
use portside::tui::synthetic;
use portside::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

#[derive(Debug, Arbitrary)]
enum Step {
    Char(char, u8),
    Special(u8, u8),
    Mouse(u8, u16, u16),
    Resize(u8, u8),
    Paste(String),
    Sample(u8, u16),
    Tick,
    Error(String),
}

const SPECIAL: [KeyCode; 16] = [
    KeyCode::Enter,
    KeyCode::Esc,
    KeyCode::Backspace,
    KeyCode::Delete,
    KeyCode::Left,
    KeyCode::Right,
    KeyCode::Up,
    KeyCode::Down,
    KeyCode::Home,
    KeyCode::End,
    KeyCode::PageUp,
    KeyCode::PageDown,
    KeyCode::Tab,
    KeyCode::BackTab,
    KeyCode::F(1),
    KeyCode::Insert,
];

fn key(code: KeyCode, mods: u8) -> TermEvent {
    TermEvent::Key(KeyEvent::new_with_kind(
        code,
        KeyModifiers::from_bits_truncate(mods),
        KeyEventKind::Press,
    ))
}

fuzz_target!(|steps: Vec<Step>| {
    let (mut w, mut h) = (80u16, 24u16);
    let options = AppOptions {
        interval: Duration::from_secs(1),
        host: HostInfo::default(),
        numeric: false,
        theme: Theme::new(true),
        filter_text: String::new(),
        parse_filter: Filter::parse,
        area: Rect::new(0, 0, w, h),
        alerts: default_alerts(),
    };
    let Ok(mut app) = App::new(options, Instant::now()) else {
        return;
    };
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut now = Instant::now();
    let mut fed = 0u64;
    for step in steps.into_iter().take(200) {
        now += Duration::from_millis(300);
        let event = match step {
            Step::Char(c, mods) => Event::Input(key(KeyCode::Char(c), mods)),
            Step::Special(k, mods) => Event::Input(key(SPECIAL[usize::from(k) % 16], mods)),
            Step::Mouse(kind, x, y) => {
                let kind = match kind % 5 {
                    0 => MouseEventKind::ScrollDown,
                    1 => MouseEventKind::ScrollUp,
                    2 => MouseEventKind::Down(MouseButton::Left),
                    3 => MouseEventKind::Up(MouseButton::Left),
                    _ => MouseEventKind::Moved,
                };
                Event::Input(TermEvent::Mouse(MouseEvent {
                    kind,
                    column: x,
                    row: y,
                    modifiers: KeyModifiers::NONE,
                }))
            }
            Step::Resize(nw, nh) => {
                (w, h) = (u16::from(nw), u16::from(nh));
                terminal.backend_mut().resize(w, h);
                Event::Input(TermEvent::Resize(w, h))
            }
            Step::Paste(text) => Event::Input(TermEvent::Paste(text)),
            Step::Sample(seed, n) => {
                let mut snap = synthetic::snapshot(usize::from(n % 2000), u64::from(seed));
                fed += 1;
                snap.taken_at += Duration::from_secs(fed);
                Event::Sample(Sample::of(snap))
            }
            Step::Tick => Event::Tick,
            Step::Error(e) => Event::SampleError(e),
        };
        app.update(event, now);
        if app.quit_reason().is_some() {
            return;
        }
        app.sync();
        terminal.draw(|f| render::render(f, &app)).unwrap();
    }
});

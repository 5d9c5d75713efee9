//! Rendering tests of the history, panels and alerts: `TestBackend` + insta snapshots of
//! the busy host after 21 samples a second apart (so rates and history are not trivial),
//! plus colors, and every small size with a panel open.

use std::time::Instant;

use crossterm::event::Event as TermEvent;
use ratatui::style::Color;

use crate::tui::event::Event;
use crate::tui::testing::{busy_app, draw, empty_app, press, screen};

/// The busy host's last sample: 800 TIME_WAIT toward 127.0.0.1:5432 (810 ports of 1,000
/// in use), the 8080 accept queue at 120 of 128, 120 CLOSE_WAIT on 8080.
const LAST: u32 = 20;

/// The screen line holding `needle`, and the column (in characters) where it starts.
fn find(term: &ratatui::Terminal<ratatui::backend::TestBackend>, needle: &str) -> (u16, u16) {
    let buf = term.backend().buffer();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if let Some(i) = line.find(needle) {
            return (line[..i].chars().count() as u16, y);
        }
    }
    panic!("{needle:?} not on screen:\n{}", term.backend());
}

#[test]
fn timewait_panel() {
    let mut app = busy_app(LAST, 100, 30);
    press(&mut app, "w");
    let term = draw(&mut app);
    let text = term.backend().to_string();
    // 800 + 100 client-side from the pile-ups, plus the web server's own (server side).
    let report = app.timewait_report().unwrap();
    assert_eq!(report.split.client_side, 900);
    assert!(text.contains("127.0.0.1:5432"), "{text}");
    assert!(text.contains("810 of 1,000  81%"), "{text}");
    // The gauge past 80% is red; the 10% one toward 203.0.113.7:443 green.
    let (x, y) = find(&term, "810 of 1,000");
    assert_eq!(term.backend().buffer()[(x, y)].fg, Color::Red);
    let (x, y) = find(&term, "100 of 1,000");
    assert_eq!(term.backend().buffer()[(x, y)].fg, Color::Green);
    insta::assert_snapshot!(text);
}

#[test]
fn timewait_panel_at_80x24() {
    let mut app = busy_app(LAST, 80, 24);
    press(&mut app, "w");
    let text = screen(&mut app);
    for needle in [
        "TIME_WAIT",
        "client side",
        "BY LOCAL PORT",
        "81%",
        "tcp_tw_reuse",
    ] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn listener_panel() {
    let mut app = busy_app(LAST, 100, 30);
    press(&mut app, "L");
    // Select the 8080 listener (rows are ordered by port: 22, 22, 80, 443, 443, 5432, 8080).
    press(&mut app, "G");
    let term = draw(&mut app);
    let text = term.backend().to_string();
    assert!(text.contains("120/128"), "{text}");
    assert!(text.contains("accept queue 120 of 128 (94%)"), "{text}");
    let (x, y) = find(&term, "120/128");
    assert_eq!(term.backend().buffer()[(x, y)].fg, Color::Red, "94% full");
    // ListenOverflows went from 19² to 20² in the last second.
    assert!(text.contains("ListenOverflows 39/s"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn listener_panel_wide_shows_history_and_peers() {
    let mut app = busy_app(LAST, 160, 30);
    press(&mut app, "L");
    let text = screen(&mut app);
    for needle in ["PROCESS", "Q HISTORY", "TOP PEERS", "812/sshd"] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn listener_panel_at_80x24() {
    let mut app = busy_app(LAST, 80, 24);
    press(&mut app, "L");
    insta::assert_snapshot!(screen(&mut app));
}

#[test]
fn header_sparklines_alert_and_port_trends() {
    let mut app = busy_app(LAST, 130, 30);
    let term = draw(&mut app);
    let text = term.backend().to_string();
    // TIME_WAIT grew every second: its sparkline climbs to a full block.
    let spark: Vec<char> = text
        .split("TIME_WAIT 931 ")
        .nth(1)
        .unwrap_or_else(|| panic!("no TIME_WAIT count:\n{text}"))
        .chars()
        .take(4)
        .collect();
    assert!(spark.is_sorted() && spark[3] == '█', "{spark:?}");
    // Most severe first (the accept queue at 94% is a warning, so are the others).
    assert!(text.contains("WARNING "), "{text}");
    assert!(text.contains("(+2 more)"), "{text}");
    let (x, y) = find(&term, "WARNING");
    assert_eq!(term.backend().buffer()[(x, y)].fg, Color::Yellow);
    // 8080 gained 6 CLOSE_WAIT a second for a minute's worth of history (20 s here).
    assert!(text.contains("▲120"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn paused_panels_freeze_with_the_picture() {
    let mut app = busy_app(LAST, 100, 30);
    press(&mut app, "w");
    press(&mut app, "p");
    let below_first_line = |s: String| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    let before = below_first_line(screen(&mut app));
    app.feed(
        crate::tui::synthetic::busy(LAST + 5),
        crate::tui::testing::at(25),
    );
    assert_eq!(below_first_line(screen(&mut app)), before);
    press(&mut app, "p");
    let resumed = screen(&mut app);
    assert!(resumed.contains("910 of 1,000"), "{resumed}");
}

#[test]
fn panels_before_the_first_sample_wait() {
    for key in ["w", "L"] {
        let mut app = empty_app(100, 30, "");
        press(&mut app, key);
        let text = screen(&mut app);
        assert!(
            text.contains("waiting for the first sample"),
            "{key}:\n{text}"
        );
    }
}

#[test]
fn no_color_panels_draw_without_colors() {
    for key in ["w", "L"] {
        let mut app = busy_app(5, 100, 30);
        app.theme = crate::tui::theme::Theme::new(false);
        press(&mut app, key);
        let term = draw(&mut app);
        for cell in term.backend().buffer().content() {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{key}");
        }
    }
}

#[test]
fn every_size_draws_panels_without_panic() {
    for key in ["w", "L"] {
        let mut app = busy_app(3, 100, 30);
        press(&mut app, key);
        for w in 0..=84 {
            for h in 0..=28 {
                app.update(Event::Input(TermEvent::Resize(w, h)), Instant::now());
                draw(&mut app);
            }
        }
        for (w, h) in [
            (1, 1),
            (80, 24),
            (500, 200),
            (u16::MAX, 3),
            (3, u16::MAX / 64),
        ] {
            app.update(Event::Input(TermEvent::Resize(w, h)), Instant::now());
            for k in ["j", "G", "pgdn", "enter", "?", "esc", "/", "esc", key] {
                press(&mut app, k);
                draw(&mut app);
            }
        }
    }
}

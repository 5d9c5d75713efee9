//! Whole-screen rendering tests: `TestBackend` + insta snapshots from synthetic snapshots,
//! plus checks of colors and of every small size.

use std::time::Instant;

use crossterm::event::Event as TermEvent;
use ratatui::style::Color;

use crate::model::TcpState;
use crate::tui::event::Event;
use crate::tui::testing::{app, app_with, at, draw, press, screen, snapshot, type_text};
use portside_core::engine::Sample;

#[test]
fn grouped_view() {
    let mut app = app(40);
    insta::assert_snapshot!(screen(&mut app));
}

#[test]
fn grouped_view_at_80x24_folds_states_into_other() {
    let mut app = app_with(snapshot(300), 80, 24, "");
    let text = screen(&mut app);
    assert!(text.contains("OTHER"));
    insta::assert_snapshot!(text);
}

#[test]
fn grouped_view_sorted_by_total() {
    let mut app = app(40);
    while app.ports_sort.column != Some(crate::tui::sort::GroupColumn::Total) {
        press(&mut app, "s");
    }
    insta::assert_snapshot!(screen(&mut app));
}

#[test]
fn drill_down() {
    let mut app = app(40);
    press(&mut app, "j");
    press(&mut app, "j");
    press(&mut app, "enter");
    // Ten seconds later: listeners seen since start, a new connection seen for 0s.
    let mut next = snapshot(40);
    let mut fresh = next.sockets[8];
    fresh.local.set_port(443);
    fresh.remote.set_port(2);
    next.sockets.push(fresh);
    app.feed(Sample::of(next), at(10));
    app.update(Event::Clock, at(12));
    insta::assert_snapshot!(screen(&mut app));
}

#[test]
fn connections_view() {
    let mut app = app(40);
    press(&mut app, "tab");
    insta::assert_snapshot!(screen(&mut app));
}

#[test]
fn connections_view_numeric() {
    let mut app = app_with(snapshot(40), 80, 24, "");
    press(&mut app, "tab");
    press(&mut app, "n");
    let text = screen(&mut app);
    assert!(!text.contains("SERVICE"));
    insta::assert_snapshot!(text);
}

#[test]
fn filter_prompt_valid() {
    let mut app = app(40);
    press(&mut app, "/");
    type_text(&mut app, "lport:443,5432 !tw");
    let term = draw(&mut app);
    insta::assert_snapshot!(term.backend());
    let cursor = term.backend().cursor_position();
    assert_eq!((cursor.x, cursor.y), (19, 29));
}

#[test]
fn filter_prompt_invalid() {
    let mut app = app(40);
    press(&mut app, "/");
    type_text(&mut app, "lport:443 state:bogus");
    let term = draw(&mut app);
    insta::assert_snapshot!(term.backend());
    // The bad text is red; the last valid filter (lport:443) stays applied.
    let buf = term.backend().buffer();
    assert_eq!(buf[(1, 29)].fg, Color::Red);
    assert_eq!(buf[(0, 28)].fg, Color::Red);
    assert_eq!(app.filter_text.trim(), "lport:443");
}

#[test]
fn help_overlay_at_80x24() {
    let mut app = app_with(snapshot(40), 80, 24, "");
    press(&mut app, "?");
    insta::assert_snapshot!(screen(&mut app));
}

#[test]
fn tiny_terminal() {
    let mut app = app_with(snapshot(40), 40, 6, "");
    insta::assert_snapshot!(screen(&mut app));
}

#[test]
fn not_root_note_and_sample_error() {
    let mut snap = snapshot(40);
    snap.privileged = false;
    let mut app = app_with(snap, 100, 30, "");
    app.update(
        Event::SampleError("netlink sock_diag: dump: Connection refused".into()),
        at(1),
    );
    insta::assert_snapshot!(screen(&mut app));
}

#[test]
fn waiting_for_the_first_sample_and_paused() {
    let mut app = app(40);
    press(&mut app, "p");
    app.feed(Sample::of(snapshot(41)), at(1));
    let text = screen(&mut app);
    assert!(text.contains("PAUSED (1 new)"), "{text}");
    let mut empty = app_with(snapshot(0), 100, 30, "");
    empty.feed(Sample::of(crate::model::Snapshot::empty()), at(1));
    let text = screen(&mut empty);
    assert!(text.contains("no sockets"), "{text}");
}

#[test]
fn one_color_per_state_in_header_columns_and_rows() {
    let mut app = app(40);
    let term = draw(&mut app);
    let buf = term.backend().buffer();
    let find = |y: u16, text: &str| {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        line.find(text).map(|x| line[..x].chars().count() as u16)
    };
    let theme = app.theme;
    for state in [TcpState::Listen, TcpState::Established, TcpState::TimeWait] {
        let label = crate::tui::theme::state_label(state);
        let want = theme.state(state).fg.unwrap();
        let x = find(3, label).unwrap();
        assert_eq!(buf[(x, 3)].fg, want, "column {label}");
        let header = crate::tui::theme::state_header_name(state);
        let hx = find(1, header).unwrap();
        assert_eq!(buf[(hx, 1)].fg, want, "header {header}");
    }
}

#[test]
fn no_color_draws_without_colors() {
    let mut app = app(40);
    app.theme = crate::tui::theme::Theme::new(false);
    press(&mut app, "tab");
    let term = draw(&mut app);
    let buf = term.backend().buffer();
    for cell in buf.content() {
        assert_eq!(cell.fg, Color::Reset);
        assert_eq!(cell.bg, Color::Reset);
    }
}

#[test]
fn every_small_size_draws_without_panic() {
    let mut app = app(40);
    press(&mut app, "?");
    for w in 0..=82 {
        for h in 0..=26 {
            app.update(Event::Input(TermEvent::Resize(w, h)), Instant::now());
            draw(&mut app);
        }
    }
    press(&mut app, "esc");
    for (w, h) in [(1, 1), (80, 24), (79, 24), (500, 200)] {
        app.update(Event::Input(TermEvent::Resize(w, h)), Instant::now());
        for key in ["tab", "enter", "/", "x", "esc", "esc", "tab"] {
            press(&mut app, key);
            draw(&mut app);
        }
    }
}

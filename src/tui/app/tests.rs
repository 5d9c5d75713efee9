//! App logic driven by scripted events, with no terminal.

use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::*;
use crate::model::Owners;
use crate::tui::testing::{Rig, app, app_with, at, press, snapshot, t0, type_text};
use portside_core::engine::Sample;

fn ports(app: &App) -> Vec<(Proto, u16)> {
    app.groups.iter().map(|g| (g.proto, g.port)).collect()
}

fn selected_port(app: &App) -> (Proto, u16) {
    let g = &app.groups[app.ports_nav.selected];
    (g.proto, g.port)
}

fn select_port(app: &mut Rig, port: u16) {
    press(app, "home");
    for _ in 0..app.groups.len() {
        if selected_port(app).1 == port {
            return;
        }
        press(app, "j");
    }
    panic!("port {port} not in the list");
}

#[test]
fn listening_ports_come_first_by_default() {
    let app = app(40);
    assert_eq!(
        ports(&app)[..6],
        [
            (Proto::Tcp, 22),
            (Proto::Tcp, 80),
            (Proto::Tcp, 443),
            (Proto::Tcp, 5432),
            (Proto::Tcp, 8080),
            (Proto::Udp, 53),
        ]
    );
    assert!(app.groups[..6].iter().all(|g| g.listening));
    assert!(app.groups.len() > 6);
    assert!(app.groups[6..].iter().all(|g| !g.listening));
    let clients: Vec<u16> = app.groups[6..].iter().map(|g| g.port).collect();
    assert!(clients.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn typing_a_filter_updates_the_view_and_keeps_the_last_valid_one() {
    let mut app = app(40);
    press(&mut app, "/");
    assert_eq!(app.mode(), Mode::Prompt);
    type_text(&mut app, "lport:443");
    assert_eq!(ports(&app), vec![(Proto::Tcp, 443)]);
    assert_eq!(app.filter_text, "lport:443");
    // Mid-typing states that do not parse keep the last valid filter.
    type_text(&mut app, "x");
    let err = app.prompt.as_ref().unwrap().error.clone().unwrap();
    assert_eq!(err.term, "lport:443x");
    assert_eq!(app.filter_text, "lport:443");
    assert_eq!(ports(&app), vec![(Proto::Tcp, 443)]);
    // Enter does not accept an invalid expression.
    press(&mut app, "enter");
    assert_eq!(app.mode(), Mode::Prompt);
    press(&mut app, "backspace");
    assert!(app.prompt.as_ref().unwrap().error.is_none());
    press(&mut app, "enter");
    assert_eq!(app.mode(), Mode::Normal);
    assert_eq!(app.filter_text, "lport:443");
    // q typed in the prompt is text, not quit.
    press(&mut app, "/");
    type_text(&mut app, " q");
    assert!(app.quit_reason().is_none());
    // Esc restores the filter from before the prompt opened.
    press(&mut app, "esc");
    assert_eq!(app.mode(), Mode::Normal);
    assert_eq!(app.filter_text, "lport:443");
    assert_eq!(ports(&app), vec![(Proto::Tcp, 443)]);
    press(&mut app, "c");
    assert_eq!(app.filter_text, "");
    assert!(app.groups.len() > 7);
}

#[test]
fn prompt_cancel_restores_the_starting_filter() {
    let mut app = app_with(snapshot(40), 100, 30, "udp");
    assert_eq!(ports(&app), vec![(Proto::Udp, 53)]);
    press(&mut app, "/");
    press(&mut app, "ctrl+u");
    assert!(app.groups.len() > 7);
    press(&mut app, "esc");
    assert_eq!(ports(&app), vec![(Proto::Udp, 53)]);
    assert_eq!(app.filter_text, "udp");
}

#[test]
fn drill_down_and_back() {
    let mut app = app(40);
    select_port(&mut app, 443);
    let before = app.ports_nav;
    press(&mut app, "enter");
    let drill = app.drill.as_ref().unwrap();
    assert_eq!((drill.proto, drill.port), (Proto::Tcp, 443));
    let socks: Vec<_> = drill
        .rows
        .iter()
        .map(|&i| app.snapshot.sockets[i as usize])
        .collect();
    assert!(
        socks
            .iter()
            .all(|s| s.local.port() == 443 && s.proto == Proto::Tcp)
    );
    let group = app.groups.iter().find(|g| g.port == 443).unwrap();
    assert_eq!(socks.len(), group.total as usize);
    assert!(
        socks[0].is_listening() && socks[1].is_listening(),
        "listeners first"
    );
    assert_eq!(drill.summary.as_ref().unwrap().total, group.total);
    press(&mut app, "j");
    assert_eq!(app.drill.as_ref().unwrap().nav.selected, 1);
    press(&mut app, "esc");
    assert!(app.drill.is_none());
    assert_eq!(app.ports_nav, before);
    assert_eq!(selected_port(&app), (Proto::Tcp, 443));
}

#[test]
fn drill_down_from_the_connections_view() {
    let mut app = app(40);
    press(&mut app, "tab");
    assert_eq!(app.view, View::Connections);
    assert_eq!(app.conn_rows.len(), app.snapshot.sockets.len());
    press(&mut app, "end");
    let last = app.snapshot.sockets[app.conn_rows[app.conns_nav.selected] as usize];
    press(&mut app, "enter");
    let drill = app.drill.as_ref().unwrap();
    assert_eq!((drill.proto, drill.port), (last.proto, last.local.port()));
    press(&mut app, "tab");
    assert!(app.drill.is_none());
    assert_eq!(app.view, View::Ports);
}

#[test]
fn sort_cycles_columns_and_reverses() {
    let mut app = app(40);
    let cols = crate::tui::sort::group_columns(&app.state_columns);
    press(&mut app, "s");
    assert_eq!(app.ports_sort.column, Some(GroupColumn::Proto));
    for _ in 1..cols.len() {
        press(&mut app, "s");
    }
    assert_eq!(app.ports_sort.column, Some(GroupColumn::Total));
    let totals: Vec<u32> = app.groups.iter().map(|g| g.total).collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");
    assert_eq!(app.groups[0].port, 443);
    press(&mut app, "r");
    let totals: Vec<u32> = app.groups.iter().map(|g| g.total).collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");
    press(&mut app, "s");
    assert_eq!(app.ports_sort, Sort::default());
    assert_eq!(app.groups[0].port, 22);
}

#[test]
fn connections_sort_by_send_queue_largest_first() {
    let mut app = app(200);
    press(&mut app, "tab");
    while app.conns_sort.column != Some(SocketColumn::SendQ) {
        press(&mut app, "s");
    }
    let q: Vec<u32> = app
        .conn_rows
        .iter()
        .map(|&i| app.snapshot.sockets[i as usize].send_q)
        .collect();
    assert!(q[0] > 0);
    assert!(q.windows(2).all(|w| w[0] >= w[1]));
}

#[test]
fn pause_freezes_the_picture_while_samples_arrive() {
    let mut app = app(40);
    let before = app.snapshot.sockets.len();
    press(&mut app, "p");
    assert!(app.paused);
    app.feed(Sample::of(snapshot(80)), at(1));
    app.feed(Sample::of(snapshot(90)), at(2));
    app.sync();
    assert_eq!(app.snapshot.sockets.len(), before);
    assert_eq!(app.held_count, 2);
    press(&mut app, "space");
    assert!(!app.paused);
    assert_eq!(app.snapshot.sockets.len(), 98);
    assert_eq!(app.held_count, 0);
}

#[test]
fn selection_follows_its_row_across_snapshots() {
    let mut app = app(40);
    select_port(&mut app, 5432);
    // The next sample has a new listener that sorts before 5432.
    let mut next = snapshot(40);
    let mut extra = next.sockets[0];
    extra.local.set_port(1000);
    next.sockets.push(extra);
    app.feed(Sample::of(next), at(1));
    app.sync();
    assert_eq!(selected_port(&app), (Proto::Tcp, 5432));
}

#[test]
fn a_failed_sample_keeps_the_last_good_snapshot() {
    let mut app = app(40);
    let n = app.snapshot.sockets.len();
    app.update(
        Event::SampleError("netlink: permission denied".into()),
        at(1),
    );
    app.sync();
    assert_eq!(
        app.last_error.as_deref(),
        Some("netlink: permission denied")
    );
    assert_eq!(app.snapshot.sockets.len(), n);
    app.feed(Sample::of(snapshot(10)), at(2));
    assert_eq!(app.last_error, None);
}

#[test]
fn ages_count_from_first_sight() {
    let mut app = app(40);
    let kept = app.snapshot.sockets[8];
    let mut next = snapshot(40);
    next.taken_at += Duration::from_secs(10);
    let mut new = kept;
    new.remote.set_port(1);
    next.sockets.push(new);
    let new_index = next.sockets.len() - 1;
    assert_eq!(next.sockets[8], kept);
    app.feed(Sample::of(next), at(10));
    app.sync();
    app.now = at(12);
    assert_eq!(app.age(8), Some((Duration::from_secs(12), true)));
    assert_eq!(app.age(new_index), Some((Duration::from_secs(2), false)));
}

#[test]
fn navigation_stays_in_bounds() {
    let mut app = app(40);
    let len = app.groups.len();
    for key in ["k", "pgup", "home"] {
        press(&mut app, key);
        assert_eq!(app.ports_nav.selected, 0);
    }
    press(&mut app, "pgdn");
    assert_eq!(app.ports_nav.selected, app.page().min(len - 1));
    for key in ["end", "j", "pgdn", "G"] {
        press(&mut app, key);
        assert_eq!(app.ports_nav.selected, len - 1);
    }
    assert!(app.ports_nav.offset + app.page() >= len);
}

#[test]
fn mouse_wheel_scrolls_and_click_selects() {
    let mut app = app(40);
    let mouse = |kind, row| {
        Event::Input(TermEvent::Mouse(MouseEvent {
            kind,
            column: 10,
            row,
            modifiers: KeyModifiers::NONE,
        }))
    };
    app.update(mouse(MouseEventKind::ScrollDown, 0), t0());
    assert_eq!(app.ports_nav.selected, 3);
    app.update(mouse(MouseEventKind::ScrollUp, 0), t0());
    assert_eq!(app.ports_nav.selected, 0);
    let rows = app.regions().unwrap().rows;
    app.update(
        mouse(MouseEventKind::Down(MouseButton::Left), rows.y + 4),
        t0(),
    );
    assert_eq!(app.ports_nav.selected, 4);
    // A click on the header or past the last row changes nothing.
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), 0), t0());
    app.update(
        mouse(MouseEventKind::Down(MouseButton::Left), rows.bottom() - 1),
        t0(),
    );
    assert_eq!(app.ports_nav.selected, 4);
}

#[test]
fn help_captures_keys_until_closed() {
    let mut app = app(40);
    press(&mut app, "?");
    assert_eq!(app.mode(), Mode::Help);
    press(&mut app, "j");
    assert_eq!(app.ports_nav.selected, 0);
    press(&mut app, "q");
    assert!(app.quit_reason().is_none());
    assert_eq!(app.mode(), Mode::Normal);
    press(&mut app, "?");
    press(&mut app, "ctrl+c");
    assert_eq!(app.quit_reason(), Some(&QuitReason::Key));
}

#[test]
fn quit_keys_and_signals() {
    for key in ["q", "ctrl+c"] {
        let mut app = app(0);
        press(&mut app, key);
        assert_eq!(app.quit_reason(), Some(&QuitReason::Key));
    }
    let mut app = app(0);
    app.update(Event::Signal(15), t0());
    assert_eq!(app.quit_reason(), Some(&QuitReason::Signal(15)));
}

#[test]
fn numeric_toggles_and_state_columns_stick() {
    let mut app = app(40);
    press(&mut app, "n");
    assert!(app.numeric);
    assert!(app.state_columns.contains(&TcpState::TimeWait));
    let mut quiet = snapshot(0);
    quiet.sockets.retain(|s| s.owners != Owners::Known(3));
    app.feed(Sample::of(quiet), at(1));
    app.sync();
    assert!(
        app.state_columns.contains(&TcpState::TimeWait),
        "columns stay once seen"
    );
    assert_eq!(
        app.state_columns[..2],
        [TcpState::Listen, TcpState::Established]
    );
}

#[test]
fn resize_clamps_and_tiny_screens_do_not_panic() {
    let mut app = app(200);
    press(&mut app, "end");
    app.update(Event::Input(TermEvent::Resize(80, 24)), t0());
    let page = app.page();
    assert!(app.ports_nav.selected < app.ports_nav.offset + page);
    app.update(Event::Input(TermEvent::Resize(1, 1)), t0());
    assert!(app.regions().is_none());
    for key in [
        "j", "k", "pgdn", "enter", "esc", "tab", "s", "/", "x", "esc", "?", "esc",
    ] {
        press(&mut app, key);
    }
    assert!(app.quit_reason().is_none());
}

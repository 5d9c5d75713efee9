//! The drill-down: the connections of one port, with how long each has been seen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;

use crate::model::{Proto, Socket, TcpState};
use crate::tui::app::{App, Drill};
use crate::tui::connections::{owner_cell, queue_style};
use crate::tui::format;
use crate::tui::grid::{self, Align, Cell, Column};
use crate::tui::layout::Regions;
use crate::tui::render;
use crate::tui::sort::{DRILL_COLUMNS, SocketColumn};
use crate::tui::theme::state_label;

pub fn render(frame: &mut Frame, r: &Regions, app: &App, drill: &Drill) {
    let theme = app.theme;
    let head = head(app, drill);
    let stats = stats(app, drill);
    let sort_name = render::socket_sort_name(drill.sort, "listening, state");
    render::title(frame, r.title, app, head, stats, &sort_name);
    let columns: Vec<Column> = DRILL_COLUMNS
        .iter()
        .map(|&c| {
            let (width, align) = match c {
                SocketColumn::Peer => (Constraint::Length(30), Align::LeftKeepEnd),
                SocketColumn::State => (Constraint::Length(7), Align::Left),
                SocketColumn::RecvQ | SocketColumn::SendQ => (Constraint::Length(6), Align::Right),
                SocketColumn::Seen => (Constraint::Length(7), Align::Right),
                _ => (Constraint::Fill(1), Align::Left),
            };
            Column {
                sorted: render::sort_mark(drill.sort, c),
                ..Column::new(render::socket_column_label(c), width, align)
            }
        })
        .collect();
    let xs = grid::layout(&columns, r.columns.width);
    let buf = frame.buffer_mut();
    grid::draw_header(buf, r.columns, &columns, &xs, theme);
    if drill.rows.is_empty() {
        grid::draw_empty(
            buf,
            r.rows,
            "no sockets on this port match the filter",
            theme,
        );
        return;
    }
    let window = drill
        .nav
        .window(drill.rows.len(), usize::from(r.rows.height));
    for (y, i) in (r.rows.y..).zip(window) {
        let Some(s) = drill
            .rows
            .get(i)
            .and_then(|&n| app.snapshot.sockets.get(n as usize))
        else {
            continue;
        };
        let line = Rect::new(r.rows.x, y, r.rows.width, 1);
        grid::draw_row(
            buf,
            line,
            &columns,
            &xs,
            &cells(app, drill.rows[i] as usize, s),
            i == drill.nav.selected,
            theme,
        );
    }
}

/// `tcp 8080 http-alt` in the title's place of the tabs.
fn head(app: &App, drill: &Drill) -> Vec<Span<'static>> {
    let theme = app.theme;
    let service = drill
        .summary
        .as_ref()
        .and_then(|g| g.service)
        .filter(|_| !app.numeric)
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    vec![Span::styled(
        format!(" {} {}{service} ", drill.proto, drill.port),
        theme.title().patch(theme.selected()),
    )]
}

/// Listeners and their queues, the number of sockets, the owners.
fn stats(app: &App, drill: &Drill) -> Vec<Span<'static>> {
    let theme = app.theme;
    let Some(g) = &drill.summary else {
        return vec![Span::styled("no sockets", theme.dim())];
    };
    let mut spans = vec![
        Span::styled(format::count(g.total), theme.bold()),
        Span::raw(format::plural(g.total as usize, " socket", " sockets")),
    ];
    if g.listening {
        let addrs: Vec<String> = g.listen_addrs.iter().map(ToString::to_string).collect();
        spans.push(Span::raw(" · listening on "));
        spans.push(Span::styled(
            addrs.join(", "),
            theme.state(TcpState::Listen),
        ));
        // One accept queue per listener: they are never added up (two of 511 are not 1022).
        let queues: Vec<String> = app
            .insight()
            .listeners()
            .iter()
            .filter(|l| drill.proto == Proto::Tcp && l.local.port() == drill.port && l.backlog > 0)
            .map(|l| format!("{}/{} on {}", l.queue, l.backlog, l.local.ip()))
            .collect();
        if !queues.is_empty() {
            let waiting = app
                .insight()
                .listeners()
                .iter()
                .any(|l| l.local.port() == drill.port && l.queue > 0);
            let style = if waiting {
                theme.warning()
            } else {
                Style::new()
            };
            let label = if queues.len() == 1 {
                " · accept queue "
            } else {
                " · accept queues "
            };
            spans.push(Span::styled(format!("{label}{}", queues.join(", ")), style));
        }
    }
    let owners = format::group_owners(format::processes(&app.snapshot, &g.owners));
    if !owners.is_empty() {
        spans.push(Span::raw(format!(" · {owners}")));
        if let Some(usage) = format::usage(&app.snapshot, &g.owners) {
            spans.push(Span::styled(format!(" · {usage}"), theme.dim()));
        }
    }
    spans
}

fn cells(app: &App, index: usize, s: &Socket) -> Vec<Cell> {
    let theme = app.theme;
    let seen = match app.age(index) {
        Some((age, at_start)) => {
            let plus = if at_start { "+" } else { "" };
            Cell::new(format!("{}{plus}", format::duration(age)), Style::new())
        }
        None => Cell::new("-", theme.dim()),
    };
    vec![
        Cell::new(format::addr(s.remote), Style::new()),
        Cell::new(state_label(s.state), theme.state(s.state)),
        Cell::new(format::count(s.recv_q), queue_style(s.recv_q, theme)),
        Cell::new(format::count(s.send_q), queue_style(s.send_q, theme)),
        owner_cell(s, &app.snapshot, theme),
        seen,
    ]
}

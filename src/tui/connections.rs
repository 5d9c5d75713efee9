//! The connections view: every socket matching the filter, one row each, with the columns
//! of `--once`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;

use crate::analysis::sides::Service;
use crate::model::{Snapshot, Socket};
use crate::tui::app::App;
use crate::tui::format;
use crate::tui::grid::{self, Align, Cell, Column};
use crate::tui::layout::Regions;
use crate::tui::render;
use crate::tui::sort::SocketColumn;
use crate::tui::theme::{Theme, state_label};

/// Narrowest process column before addresses are cut.
const PROCESS_MIN: u16 = 8;
/// The longest address `ss` style prints: `[ffff:...:ffff]:65535`.
const ADDR_MAX: u16 = 47;

pub fn render(frame: &mut Frame, r: &Regions, app: &App) {
    let theme = app.theme;
    let rows = &app.conn_rows;
    let stats = vec![
        Span::styled(format::usize_count(rows.len()), theme.bold()),
        Span::raw(format::plural(rows.len(), " socket", " sockets")),
    ];
    let sort_name = render::socket_sort_name(app.conns_sort, "local port");
    render::title(frame, r.title, app, render::tabs(app), stats, &sort_name);
    let window = app.conns_nav.window(rows.len(), usize::from(r.rows.height));
    let visible: Vec<&Socket> = rows[window.clone()]
        .iter()
        .filter_map(|&i| app.snapshot.sockets.get(i as usize))
        .collect();
    let columns = columns(app, r.columns.width, &visible);
    let xs = grid::layout(&columns, r.columns.width);
    let buf = frame.buffer_mut();
    grid::draw_header(buf, r.columns, &columns, &xs, theme);
    if rows.is_empty() {
        grid::draw_empty(buf, r.rows, render::empty_message(app), theme);
        return;
    }
    for ((y, i), s) in (r.rows.y..).zip(window).zip(visible) {
        let cells = cells(app, s);
        let line = Rect::new(r.rows.x, y, r.rows.width, 1);
        grid::draw_row(
            buf,
            line,
            &columns,
            &xs,
            &cells,
            i == app.conns_nav.selected,
            theme,
        );
    }
}

/// Addresses get the width their visible rows need when it fits; the process column
/// takes the rest.
fn columns(app: &App, width: u16, visible: &[&Socket]) -> Vec<Column> {
    let mark = |c| render::sort_mark(app.conns_sort, c);
    let col = |c: SocketColumn, width: Constraint, align| Column {
        sorted: mark(c),
        ..Column::new(render::socket_column_label(c), width, align)
    };
    let need = |f: fn(&Socket) -> std::net::SocketAddr| {
        visible
            .iter()
            .map(|s| format::addr(f(s)).len() as u16)
            .max()
            .unwrap_or(0)
            .clamp(5, ADDR_MAX)
            + 1
    };
    let (local_need, peer_need) = (need(|s| s.local), need(|s| s.remote));
    let service_w = if app.numeric { 0 } else { 10 + 1 };
    let fixed = 5 + 7 + 6 + 6 + service_w + 6;
    let rest = width.saturating_sub(fixed);
    // When both do not fit, the local address (usually short: one host) goes first.
    let local_w = local_need.min(rest / 2);
    let peer_w = peer_need.min(rest.saturating_sub(local_w + PROCESS_MIN));
    let mut columns = vec![
        col(SocketColumn::Proto, Constraint::Length(5), Align::Left),
        col(SocketColumn::State, Constraint::Length(7), Align::Left),
        col(SocketColumn::RecvQ, Constraint::Length(6), Align::Right),
        col(SocketColumn::SendQ, Constraint::Length(6), Align::Right),
        col(
            SocketColumn::Local,
            Constraint::Length(local_w),
            Align::LeftKeepEnd,
        ),
        col(
            SocketColumn::Peer,
            Constraint::Length(peer_w),
            Align::LeftKeepEnd,
        ),
    ];
    if !app.numeric {
        columns.push(col(
            SocketColumn::Service,
            Constraint::Length(10),
            Align::Left,
        ));
    }
    columns.push(col(SocketColumn::Process, Constraint::Fill(1), Align::Left));
    columns
}

fn cells(app: &App, s: &Socket) -> Vec<Cell> {
    let (snap, theme) = (&app.snapshot, app.theme);
    let mut cells = vec![
        Cell::new(s.proto.name(), Style::new()),
        Cell::new(state_label(s.state), theme.state(s.state)),
        Cell::new(format::count(s.recv_q), queue_style(s.recv_q, theme)),
        Cell::new(format::count(s.send_q), queue_style(s.send_q, theme)),
        Cell::new(format::addr(s.local), Style::new()),
        Cell::new(format::addr(s.remote), Style::new()),
    ];
    if !app.numeric {
        cells.push(match app.listening.service(snap, s) {
            Some(Service { name, peer: false }) => Cell::new(name, Style::new()),
            Some(Service { name, peer: true }) => Cell::new(format!("->{name}"), theme.dim()),
            None => Cell::new("-", theme.dim()),
        });
    }
    cells.push(owner_cell(s, snap, theme));
    cells
}

/// Zero queues dim, so the non-empty ones stand out.
pub fn queue_style(n: u32, theme: Theme) -> Style {
    if n == 0 { theme.dim() } else { theme.bold() }
}

/// The owner cell; unattributed sockets dim.
pub fn owner_cell(s: &Socket, snap: &Snapshot, theme: Theme) -> Cell {
    let label = crate::vocabulary::socket_owner(snap, s);
    let style = if label == "-" || label.starts_with('?') {
        theme.dim()
    } else {
        Style::new()
    };
    Cell::new(label, style)
}

//! The grouped view: one row per (protocol, local port) with a count per state and the
//! port's trend (change over the last minute, and a sparkline when there is room).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;

use std::time::Duration;

use crate::analysis::group::PortGroup;
use crate::analysis::ports::PortKey;
use crate::model::TcpState;
use crate::tui::app::App;
use crate::tui::grid::{self, Align, Cell, Column};
use crate::tui::layout::Regions;
use crate::tui::render;
use crate::tui::sort::GroupColumn;
use crate::tui::theme::state_label;
use crate::tui::{chart, format};

/// Widest the process column shrinks to before state columns give way.
const PROCESS_MIN: u16 = 12;
/// Width of the OTHER column that sums the states without a column of their own.
const OTHER_WIDTH: u16 = 6;
/// Width of the trend column's change over the last minute (`▲123`, `▼12k`).
const DELTA_WIDTH: u16 = 5;
/// Width of the trend column's sparkline, added when the state columns leave room.
const SPARK_WIDTH: u16 = 8;
/// The trend column's window.
const TREND_WINDOW: Duration = Duration::from_secs(60);

/// The columns on screen: which state columns fit, whether an OTHER column sums the rest,
/// and the width of the trend's sparkline (0: the change alone).
struct Plan {
    columns: Vec<Column>,
    states: Vec<TcpState>,
    other: Vec<TcpState>,
    spark: usize,
}

fn plan(app: &App, width: u16) -> Plan {
    let theme = app.theme;
    let mark = |col| render::sort_mark(app.ports_sort, col);
    let label_width = |label: &str, col| label.len() as u16 + u16::from(mark(col).is_some());
    let column = |label, width, align, key: Option<GroupColumn>| Column {
        sorted: key.and_then(mark),
        ..Column::new(label, Constraint::Length(width), align)
    };
    let mut columns = vec![
        column(
            "PROTO",
            label_width("PROTO", GroupColumn::Proto),
            Align::Left,
            Some(GroupColumn::Proto),
        ),
        column(
            "PORT",
            label_width("PORT", GroupColumn::Port).max(5),
            Align::Right,
            Some(GroupColumn::Port),
        ),
    ];
    if !app.numeric {
        columns.push(column(
            "SERVICE",
            10,
            Align::Left,
            Some(GroupColumn::Service),
        ));
    }
    columns.push(column(
        "CLASS",
        label_width("CLASS", GroupColumn::Class),
        Align::Left,
        Some(GroupColumn::Class),
    ));
    let total_w = label_width("TOTAL", GroupColumn::Total).max(5);
    // Everything but the state columns: fixed columns, the process column at its
    // narrowest, TOTAL, the trend's change, and one space after each column.
    let fixed: u16 = columns
        .iter()
        .map(|c| match c.width {
            Constraint::Length(n) => n + 1,
            _ => 0,
        })
        .sum::<u16>()
        + PROCESS_MIN
        + 1
        + total_w
        + 1
        + DELTA_WIDTH;
    columns.push(Column {
        sorted: mark(GroupColumn::Process),
        ..Column::new("PROCESS", Constraint::Fill(1), Align::Left)
    });
    let state_w = |s: TcpState| label_width(state_label(s), GroupColumn::State(s)).max(5);
    let all = &app.state_columns;
    let mut avail = width.saturating_sub(fixed);
    if all.iter().map(|&s| state_w(s) + 1).sum::<u16>() > avail {
        avail = avail.saturating_sub(OTHER_WIDTH + 1);
    }
    let (mut states, mut other) = (Vec::new(), Vec::new());
    for &s in all {
        if other.is_empty() && state_w(s) < avail {
            avail -= state_w(s) + 1;
            states.push(s);
        } else {
            other.push(s);
        }
    }
    for &s in &states {
        columns.push(
            column(
                state_label(s),
                state_w(s),
                Align::Right,
                Some(GroupColumn::State(s)),
            )
            .style(theme.state(s)),
        );
    }
    if !other.is_empty() {
        columns.push(column("OTHER", OTHER_WIDTH, Align::Right, None));
    }
    columns.push(column(
        "TOTAL",
        total_w,
        Align::Right,
        Some(GroupColumn::Total),
    ));
    let spark = trend_column(&mut columns, avail);
    Plan {
        columns,
        states,
        other,
        spark,
    }
}

/// Adds the trend column: the change alone, with a sparkline when `avail` leaves room.
/// Returns the sparkline's width (0 without).
fn trend_column(columns: &mut Vec<Column>, avail: u16) -> usize {
    let spark = if avail > SPARK_WIDTH + 1 {
        SPARK_WIDTH
    } else {
        0
    };
    let (label, width) = if spark > 0 {
        ("TREND  Δ1m", DELTA_WIDTH + 1 + spark)
    } else {
        ("Δ1m", DELTA_WIDTH)
    };
    columns.push(Column::new(label, Constraint::Length(width), Align::Right));
    usize::from(spark)
}

pub fn render(frame: &mut Frame, r: &Regions, app: &App) {
    let theme = app.theme;
    let sockets: u32 = app.groups.iter().map(|g| g.total).sum();
    let stats = vec![
        Span::styled(format::usize_count(app.groups.len()), theme.bold()),
        Span::raw(format::plural(app.groups.len(), " port, ", " ports, ")),
        Span::styled(format::count(sockets), theme.bold()),
        Span::raw(format::plural(sockets as usize, " socket", " sockets")),
    ];
    let sort = render::group_sort_name(app.ports_sort);
    render::title(frame, r.title, app, render::tabs(app), stats, &sort);
    let plan = plan(app, r.columns.width);
    let xs = grid::layout(&plan.columns, r.columns.width);
    let buf = frame.buffer_mut();
    grid::draw_header(buf, r.columns, &plan.columns, &xs, theme);
    if app.groups.is_empty() {
        grid::draw_empty(buf, r.rows, render::empty_message(app), theme);
        return;
    }
    let window = app
        .ports_nav
        .window(app.groups.len(), usize::from(r.rows.height));
    for (y, i) in (r.rows.y..).zip(window) {
        let cells = cells(app, &app.groups[i], &plan);
        let line = Rect::new(r.rows.x, y, r.rows.width, 1);
        grid::draw_row(
            buf,
            line,
            &plan.columns,
            &xs,
            &cells,
            i == app.ports_nav.selected,
            theme,
        );
    }
}

fn cells(app: &App, g: &PortGroup, plan: &Plan) -> Vec<Cell> {
    let theme = app.theme;
    let snap = &app.snapshot;
    let port_style = if g.listening {
        theme.state(TcpState::Listen).patch(theme.bold())
    } else {
        ratatui::style::Style::new()
    };
    let mut cells = vec![
        Cell::new(g.proto.name(), ratatui::style::Style::new()),
        Cell::new(g.port.to_string(), port_style),
    ];
    if !app.numeric {
        cells.push(match g.service {
            Some(s) => Cell::new(s, ratatui::style::Style::new()),
            None => Cell::new("-", theme.dim()),
        });
    }
    cells.push(Cell::new(format::port_class(g.port, snap), theme.dim()));
    let owners = format::group_owners(format::processes(snap, &g.owners));
    cells.push(if owners.is_empty() {
        Cell::new(if snap.privileged { "-" } else { "?" }, theme.dim())
    } else {
        Cell::new(owners, ratatui::style::Style::new())
    });
    let count_cell = |n: u32, style| {
        if n == 0 {
            Cell::new("·", theme.dim())
        } else {
            Cell::new(format::count(n), style)
        }
    };
    for &s in &plan.states {
        cells.push(count_cell(g.count(s), theme.state(s)));
    }
    if !plan.other.is_empty() {
        let n = plan.other.iter().map(|&s| g.count(s)).sum();
        cells.push(count_cell(n, ratatui::style::Style::new()));
    }
    cells.push(Cell::new(format::count(g.total), theme.bold()));
    cells.push(trend_cell(app, g, plan.spark));
    cells
}

/// The port's sockets (all states, unfiltered) a minute ago against now, and the last
/// samples as a sparkline; blank for ports without history (one-socket client ports).
fn trend_cell(app: &App, g: &PortGroup, spark: usize) -> Cell {
    let history = app.insight().history();
    let Some(h) = history.port(PortKey::new(g.proto, g.port)) else {
        return Cell::default();
    };
    let d = h.delta(None, history.points_within(TREND_WINDOW));
    let change = chart::delta(d);
    if spark == 0 {
        return Cell::new(change, chart::delta_style(d, app.theme));
    }
    let text = format!(
        "{} {change:>w$}",
        chart::spark(h.totals(), spark),
        w = usize::from(DELTA_WIDTH)
    );
    Cell::new(text, chart::delta_style(d, app.theme))
}

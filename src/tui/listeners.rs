//! The listener panel (`L`), for watching a busy server: one row per listening socket
//! with its accept queue, the states on its port, churn and top peers; the selected
//! listener's queue history and peers below.
//!
//! ```text
//! ┌───────────────────────────────────────────────────────────────────────────┐
//! │ Listeners  8 sockets · ListenOverflows 39/s ▁▂▅ · ListenDrops 40/s        │ title
//! │ LOCAL  PROCESS  ACCEPT QUEUE  Q HISTORY SYN_R ESTAB CLOSE_W Δ1m NEW/s ... │ columns
//! │ rows (the visible window only)                                            │ table_rows
//! │ 127.0.0.1:8080 (?): accept queue 120 of 128 (94%), history over 20s       │ detail
//! │ ▁▁▂▂▃▃▄▄▅▅▆▆▇▇██                                                          │
//! │ top peers: 192.0.2.9 120                                                  │
//! └───────────────────────────────────────────────────────────────────────────┘
//! ```
//! Optional columns (process, queue history, peers) appear as the width allows.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;

use crate::analysis::listeners::ListenerRow;
use crate::model::{Owners, Snapshot, TcpState, Unattributed};
use crate::tui::app::App;
use crate::tui::chart::{self, Level};
use crate::tui::format;
use crate::tui::grid::{self, Align, Cell, Column};
use crate::tui::panel;
use crate::tui::theme::Theme;

mod detail;

/// Accept-queue fill from which the bar turns yellow, and red (the default alert's 90%).
const QUEUE_WARN: f64 = 50.0;
const QUEUE_CRITICAL: f64 = 90.0;
/// Lines of the selected listener's detail, when the body is tall enough for it.
const DETAIL_H: u16 = 4;
const DETAIL_MAX: u16 = 8;
const DETAIL_MIN_BODY: u16 = 12;
/// Width of the accept-queue fill bar and of the queue-history sparkline.
const QUEUE_BAR: u16 = 6;
const QUEUE_SPARK: u16 = 10;

/// The optional columns, in the order they are added as the width allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    Process,
    History,
    Peers,
}

/// Where the rows go inside the panel's `body`: below the title and column labels,
/// above the detail. Shared with the app for paging and clicks.
pub fn table_rows(body: Rect) -> Rect {
    let detail = if body.height >= DETAIL_MIN_BODY {
        DETAIL_H
    } else {
        0
    };
    Rect {
        y: body.y + 2.min(body.height),
        height: body.height.saturating_sub(2 + detail),
        ..body
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme;
    title_line(frame, area, app);
    let rows = table_rows(area);
    let extras = extras(area.width);
    let columns = columns(&extras, theme);
    let xs = grid::layout(&columns, area.width);
    let header = Rect {
        y: rows.y.saturating_sub(1),
        height: area.height.min(2).saturating_sub(1),
        ..area
    };
    let lines = app.listener_rows();
    let buf = frame.buffer_mut();
    grid::draw_header(buf, header, &columns, &xs, theme);
    if lines.is_empty() {
        let message = if app.has_sample {
            "no listening TCP sockets"
        } else {
            "waiting for the first sample…"
        };
        grid::draw_empty(buf, rows, message, theme);
        return;
    }
    let nav = app.panels.nav;
    let window = nav.window(lines.len(), usize::from(rows.height));
    let shown = u16::try_from(window.len()).unwrap_or(rows.height);
    for (y, i) in (rows.y..).zip(window) {
        let cells = cells(app, &lines[i], &extras);
        let line = Rect {
            y,
            height: 1,
            ..rows
        };
        grid::draw_row(buf, line, &columns, &xs, &cells, i == nav.selected, theme);
    }
    // Right under the rows, after a blank line when they leave room; the history chart
    // grows into the room left, up to DETAIL_MAX lines in all.
    let top = if shown < rows.height {
        rows.y + shown + 1
    } else {
        rows.bottom()
    };
    let detail = Rect {
        y: top,
        height: area.bottom().saturating_sub(top).min(DETAIL_MAX),
        ..area
    };
    if let Some(line) = lines.get(nav.selected)
        && rows.bottom() < area.bottom()
    {
        detail::render(frame, detail, app, line);
    }
}

fn title_line(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme;
    let n = app.listener_rows().len();
    let mut stats = vec![
        Span::styled(format::usize_count(n), theme.bold()),
        Span::raw(format::plural(n, " socket", " sockets")),
    ];
    let rate = app.host_insight().listen_rate();
    let history = app.host_insight().history().host();
    let figures = [
        (
            " · ListenOverflows ",
            rate.map(|r| r.overflows_per_sec),
            history
                .iter()
                .map(|p| p.listen_overflows)
                .collect::<Vec<_>>(),
        ),
        (
            " · ListenDrops ",
            rate.map(|r| r.drops_per_sec),
            history.iter().map(|p| p.listen_drops).collect(),
        ),
    ];
    for (name, per_sec, series) in figures {
        stats.push(Span::raw(name));
        let style = match per_sec {
            Some(r) if r > 0.0 => theme.error(),
            _ => theme.bold(),
        };
        let text = per_sec.map_or("-".to_string(), format::rate);
        stats.push(Span::styled(format!("{text}/s"), style));
        if series.iter().rev().take(8).any(|&v| v > 0) {
            stats.push(Span::styled(
                format!(" {}", chart::spark(series.into_iter(), 8)),
                style,
            ));
        }
    }
    // Whether NEW/s and CLOSED/s are counted from the kernel's destroy notifications.
    if let Some(how) = app.insight().churn_source().name() {
        stats.push(Span::styled(format!(" · rates {how}"), theme.dim()));
    }
    let title = Rect {
        height: area.height.min(1),
        ..area
    };
    panel::title(frame, title, app, " Listeners ", stats);
}

/// The optional columns that fit in `width` beside the fixed ones.
fn extras(width: u16) -> Vec<Extra> {
    let fixed: u16 = fixed_widths().iter().map(|(_, w, _)| w + 1).sum();
    let mut avail = width.saturating_sub(fixed);
    let mut extras = Vec::new();
    for (extra, need) in [
        (Extra::Process, 15),
        (Extra::History, QUEUE_SPARK + 1),
        (Extra::Peers, 20),
    ] {
        if avail >= need {
            avail -= need;
            extras.push(extra);
        }
    }
    extras
}

/// Label, width and alignment of the columns always shown.
fn fixed_widths() -> [(&'static str, u16, Align); 8] {
    [
        ("LOCAL", 18, Align::LeftKeepEnd),
        ("ACCEPT QUEUE", QUEUE_BAR + 1 + 9, Align::Left),
        ("SYN_R", 5, Align::Right),
        ("ESTAB", 5, Align::Right),
        ("CLOSE_W", 7, Align::Right),
        ("Δ1m", 5, Align::Right),
        ("NEW/s", 5, Align::Right),
        ("CLOSED/s", 8, Align::Right),
    ]
}

fn columns(extras: &[Extra], theme: Theme) -> Vec<Column> {
    let mut columns: Vec<Column> = fixed_widths()
        .into_iter()
        .map(|(label, w, align)| Column::new(label, Constraint::Length(w), align))
        .collect();
    columns[2] = columns[2].clone().style(theme.state(TcpState::SynRecv));
    columns[3] = columns[3].clone().style(theme.state(TcpState::Established));
    columns[4] = columns[4].clone().style(theme.state(TcpState::CloseWait));
    if extras.contains(&Extra::Process) {
        columns.insert(
            1,
            Column::new("PROCESS", Constraint::Length(14), Align::Left),
        );
    }
    if extras.contains(&Extra::History) {
        let at = columns
            .iter()
            .position(|c| c.label == "ACCEPT QUEUE")
            .unwrap_or(0)
            + 1;
        columns.insert(
            at,
            Column::new("Q HISTORY", Constraint::Length(QUEUE_SPARK), Align::Left),
        );
    }
    if extras.contains(&Extra::Peers) {
        columns.push(Column::new("TOP PEERS", Constraint::Fill(1), Align::Left));
    }
    columns
}

fn cells(app: &App, l: &ListenerRow, extras: &[Extra]) -> Vec<Cell> {
    let theme = app.theme;
    let q = l.listener;
    let fill = q.fill_percent().unwrap_or(0.0);
    let queue_style = Level::of(fill, QUEUE_WARN, QUEUE_CRITICAL).style(theme);
    let count = |n: u32, state: TcpState| {
        if n == 0 {
            Cell::new("·", theme.dim())
        } else {
            Cell::new(format::count(n), theme.state(state))
        }
    };
    let rate = |r: Option<f64>| match r {
        Some(r) => Cell::new(format::rate(r), Style::new()),
        None => Cell::new("-", theme.dim()),
    };
    let delta = match l.close_wait_delta {
        Some(d) if d > 0 => Cell::new(chart::delta(d), theme.error()),
        Some(d) => Cell::new(chart::delta(d), chart::delta_style(d, theme)),
        None => Cell::default(),
    };
    let mut cells = vec![
        Cell::new(format::addr(q.local), theme.state(TcpState::Listen)),
        Cell::new(
            format!(
                "{} {}/{}",
                chart::bar(fill / 100.0, usize::from(QUEUE_BAR)),
                format::count(q.queue),
                format::count(q.backlog)
            ),
            queue_style,
        ),
        count(l.syn_recv, TcpState::SynRecv),
        count(l.established, TcpState::Established),
        count(l.close_wait, TcpState::CloseWait),
        delta,
        rate(l.rate.map(|r| r.new_per_sec)),
        rate(l.rate.map(|r| r.closed_per_sec)),
    ];
    if extras.contains(&Extra::Process) {
        let (label, style) = owner_label(q.owners, &app.snapshot, theme);
        cells.insert(1, Cell::new(label, style));
    }
    if extras.contains(&Extra::History) {
        let at = if extras.contains(&Extra::Process) {
            3
        } else {
            2
        };
        let spark = app
            .insight()
            .history()
            .listener_queue(&q.key())
            .map_or(String::new(), |h| {
                chart::spark_to(h.iter(), usize::from(QUEUE_SPARK), q.backlog)
            });
        cells.insert(at, Cell::new(spark, queue_style));
    }
    if extras.contains(&Extra::Peers) {
        cells.push(Cell::new(peers(l, ", "), Style::new()));
    }
    cells
}

/// `192.0.2.9 120, 198.51.0.1 3`; `-` without connections.
fn peers(l: &ListenerRow, sep: &str) -> String {
    if l.top_peers.is_empty() {
        return "-".to_string();
    }
    l.top_peers
        .iter()
        .map(|(ip, n)| format!("{ip} {}", format::count(*n)))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The processes of a listener: `812/sshd`, `nginx (2)`; `?` hidden, `-` none.
fn owner_label(owners: Owners, snap: &Snapshot, theme: Theme) -> (String, Style) {
    match owners {
        Owners::Known(n) | Owners::Inferred(n) => {
            let set = snap.owner_sets.get(n as usize).map_or(&[][..], |s| &s[..]);
            let label = format::group_owners(format::processes(snap, set));
            if label.is_empty() {
                ("-".to_string(), theme.dim())
            } else {
                (label, Style::new())
            }
        }
        Owners::None(Unattributed::PermissionDenied) => ("?".to_string(), theme.dim()),
        Owners::None(_) => ("-".to_string(), theme.dim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_leave_room_for_title_columns_and_detail() {
        let body = Rect::new(0, 3, 80, 20);
        assert_eq!(table_rows(body), Rect::new(0, 5, 80, 14));
        let short = Rect::new(0, 3, 80, 8);
        assert_eq!(table_rows(short), Rect::new(0, 5, 80, 6), "no detail");
        assert_eq!(table_rows(Rect::new(0, 0, 80, 1)).height, 0);
    }

    #[test]
    fn optional_columns_come_with_width() {
        assert_eq!(extras(80), []);
        assert_eq!(extras(100), [Extra::Process]);
        assert_eq!(extras(200), [Extra::Process, Extra::History, Extra::Peers]);
        for w in [80, 100, 120, 200] {
            let extras = extras(w);
            let cols = columns(&extras, Theme::new(false));
            let need: u16 = cols
                .iter()
                .map(|c| match c.width {
                    Constraint::Length(n) => n + 1,
                    _ => 0,
                })
                .sum();
            assert!(need <= w + 1, "{w}: {need}");
        }
    }
}

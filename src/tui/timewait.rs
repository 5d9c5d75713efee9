//! The TIME_WAIT panel (`w`): the count over time, who closed first, where the sockets
//! point, ephemeral ports used per destination, and the kernel settings that matter.
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────────────────┐
//! │ TIME_WAIT  924 sockets, ▲200 in 1 min, peak 924 over 20s   all sockets │ title
//! │ ▁▁▂▂▃▃▄▄▅▅▆▆▇▇██                                                         │ chart (1-3)
//! │ client side  824 ███████░ 89%  we closed first: outbound pile-up         │ split
//! │ server side  100 █░░░░░░░ 11%  a listener's port: the server closed first│
//! │ BY LOCAL PORT       BY REMOTE ADDRESS      BY REMOTE ADDRESS:PORT        │ breakdown
//! │ EPHEMERAL PORTS PER DESTINATION ...                                      │ gauges
//! │ ip_local_port_range 32768-60999  tcp_fin_timeout 60 ...                  │ kernel
//! │ what the settings mean (wrapped)                                         │ notes
//! └──────────────────────────────────────────────────────────────────────────┘
//! ```
//! Sections shrink to fit; the breakdown and gauges lose rows first, then the notes.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use crate::analysis::timewait::{TimeWaitReport, TimeWaitSplit};
use crate::model::{Proto, TcpState};
use crate::tui::app::App;
use crate::tui::chart;
use crate::tui::grid::{self, Align, Cell, Column};
use crate::tui::panel::{self, wrap};
use crate::tui::{format, theme::Theme};

mod ports;
use ports::{ephemeral_gauges, kernel_spans, wrap_height};

/// Gap between the three breakdown columns.
const GAP: u16 = 2;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let Some(report) = app.timewait_report() else {
        panel::waiting(frame, area, app);
        return;
    };
    let theme = app.theme;
    let notes: Vec<String> = app
        .settings()
        .map(|k| report.kernel_notes(k))
        .unwrap_or_default();
    let notes: Vec<String> = notes
        .iter()
        .flat_map(|n| wrap(n, usize::from(area.width)))
        .collect();
    let kernel = kernel_spans(app.settings(), theme);
    let kernel_h = wrap_height(&kernel, area.width);
    let chart_h = match area.height {
        0..=16 => 1,
        17..=19 => 2,
        _ => 3,
    };
    let breakdown_len = report
        .by_local_port
        .len()
        .max(report.by_remote_addr.len())
        .max(report.by_remote.len());
    let fixed = 1 + chart_h + 2 + 1 + 1 + kernel_h;
    let (k, m, n) = allot(
        area.height.saturating_sub(fixed),
        breakdown_len,
        report.ephemeral.len(),
        notes.len(),
    );
    let [
        title,
        chart,
        split,
        breakdown,
        gauges,
        kernel_area,
        notes_area,
    ] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(chart_h),
        Constraint::Length(2),
        Constraint::Length(1 + k),
        Constraint::Length(1 + m),
        Constraint::Length(kernel_h),
        Constraint::Length(n),
    ])
    .areas(area);
    title_line(frame, title, app, report);
    history_chart(frame, chart, app);
    split_lines(frame, split, report.split, theme);
    breakdowns(frame, breakdown, report, theme);
    ephemeral_gauges(frame, gauges, report, theme);
    frame.render_widget(
        Paragraph::new(Line::from(kernel)).wrap(ratatui::widgets::Wrap { trim: true }),
        kernel_area,
    );
    let notes: Vec<Line> = notes
        .into_iter()
        .map(|n| Line::styled(n, theme.warning()))
        .collect();
    frame.render_widget(Paragraph::new(notes), notes_area);
}

/// Lines for the breakdown rows, the gauges and the notes out of `rest`: one row each
/// first, then up to three gauges, the notes, then the room left is shared: up to half to
/// more gauges, the breakdown, and what the breakdown does not need to the gauges.
fn allot(rest: u16, breakdown: usize, gauges: usize, notes: usize) -> (u16, u16, u16) {
    let want = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    let mut rest = rest;
    let mut k = take(&mut rest, 1);
    let mut m = take(&mut rest, 1);
    m += take(&mut rest, want(gauges).saturating_sub(1).min(2));
    let n = take(&mut rest, want(notes));
    let half = rest / 2;
    m += take(&mut rest, want(gauges).saturating_sub(m).min(half));
    k += take(&mut rest, want(breakdown).saturating_sub(1));
    m += take(&mut rest, want(gauges).saturating_sub(m));
    (k, m, n)
}

/// Up to `n` of the lines left in `rest`.
fn take(rest: &mut u16, n: u16) -> u16 {
    let t = n.min(*rest);
    *rest -= t;
    t
}

fn title_line(frame: &mut Frame, area: Rect, app: &App, report: &TimeWaitReport) {
    let theme = app.theme;
    let history = app.insight().history();
    let host = history.host();
    let series = || history.state_series(Proto::Tcp, TcpState::TimeWait);
    // The change over the last minute, or over the history while it is shorter.
    let back = history.points_within(Duration::from_secs(60));
    let (delta, over) = match (host.last(), host.back(back)) {
        (Some(now), Some(then)) => (
            i64::from(now.count(Proto::Tcp, TcpState::TimeWait))
                - i64::from(then.count(Proto::Tcp, TcpState::TimeWait)),
            now.at.duration_since(then.at).unwrap_or_default(),
        ),
        _ => (0, Duration::ZERO),
    };
    let peak = series().max().unwrap_or(0);
    let span = match (host.iter().next(), host.last()) {
        (Some(first), Some(last)) => last.at.duration_since(first.at).unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let stats = vec![
        Span::styled(format::thousands(u64::from(report.total)), theme.bold()),
        Span::raw(format::plural(
            report.total as usize,
            " socket, ",
            " sockets, ",
        )),
        Span::styled(chart::delta(delta), chart::delta_style(delta, theme)),
        Span::raw(format!(" in {}, peak ", format::duration(over))),
        Span::raw(format::thousands(u64::from(peak))),
        Span::raw(format!(" over {}", format::duration(span))),
    ];
    panel::title(frame, area, app, " TIME_WAIT ", stats);
}

/// The TIME_WAIT count over the whole history, squeezed to the width, newest on the right.
fn history_chart(frame: &mut Frame, area: Rect, app: &App) {
    let series = app
        .insight()
        .history()
        .state_series(Proto::Tcp, TcpState::TimeWait);
    let bars = chart::buckets(series, usize::from(area.width));
    let len = u16::try_from(bars.len())
        .unwrap_or(area.width)
        .min(area.width);
    let right = Rect {
        x: area.x + area.width - len,
        width: len,
        ..area
    };
    frame.render_widget(
        Sparkline::default()
            .data(bars)
            .style(app.theme.state(TcpState::TimeWait)),
        right,
    );
}

/// Who closed first: client side (no listener on the local port) against server side.
fn split_lines(frame: &mut Frame, area: Rect, split: TimeWaitSplit, theme: Theme) {
    let total = f64::from(split.total().max(1));
    let bar_w = usize::from(area.width / 6);
    let rows = [
        (
            "client side",
            split.client_side,
            "we closed first, as the client",
        ),
        (
            "server side",
            split.server_side,
            "on a listening port: server closed first",
        ),
    ];
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|(label, n, meaning)| {
            let fraction = f64::from(n) / total;
            Line::from(vec![
                Span::styled(format!("{label:<12}"), theme.bold()),
                Span::raw(format!("{:>7} ", format::thousands(u64::from(n)))),
                Span::styled(chart::bar(fraction, bar_w), theme.state(TcpState::TimeWait)),
                Span::raw(format!(" {:>3.0}%  ", fraction * 100.0)),
                Span::styled(meaning, theme.dim()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// Three columns: TIME_WAIT by local port, by remote address, by remote address:port.
fn breakdowns(frame: &mut Frame, area: Rect, report: &TimeWaitReport, theme: Theme) {
    let [a, b, c] = Layout::horizontal([Constraint::Fill(1); 3])
        .spacing(GAP)
        .areas(area);
    let ports: Vec<(String, Style, u32)> = report
        .by_local_port
        .iter()
        .map(|p| {
            let side = if p.listening { "listening" } else { "client" };
            (format!("{} ({side})", p.port), Style::new(), p.count)
        })
        .collect();
    let addrs: Vec<(String, Style, u32)> = report
        .by_remote_addr
        .iter()
        .map(|(ip, n)| (ip.to_string(), Style::new(), *n))
        .collect();
    let remotes: Vec<(String, Style, u32)> = report
        .by_remote
        .iter()
        .map(|(addr, n)| (format::addr(*addr), Style::new(), *n))
        .collect();
    for (area, label, rows) in [
        (a, "BY LOCAL PORT", ports),
        (b, "BY REMOTE ADDRESS", addrs),
        (c, "BY REMOTE ADDRESS:PORT", remotes),
    ] {
        count_table(frame, area, label, &rows, theme);
    }
}

/// A two-column list, name and count, under a label across both; as many rows as fit.
fn count_table(
    frame: &mut Frame,
    area: Rect,
    label: &'static str,
    rows: &[(String, Style, u32)],
    theme: Theme,
) {
    let columns = [
        Column::new("", Constraint::Fill(1), Align::LeftKeepEnd),
        Column::new("", Constraint::Length(6), Align::Right),
    ];
    let xs = grid::layout(&columns, area.width);
    let heading = Line::styled(label, theme.column_header());
    frame.render_widget(Paragraph::new(heading), Rect { height: 1, ..area });
    let buf = frame.buffer_mut();
    let body = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(1),
        ..area
    };
    if rows.is_empty() {
        grid::draw_empty(buf, body, "none", theme);
        return;
    }
    for ((text, style, n), y) in rows.iter().zip(body.y..body.bottom()) {
        let cells = [
            Cell::new(text.clone(), *style),
            Cell::new(format::count(*n), theme.state(TcpState::TimeWait)),
        ];
        let line = Rect {
            y,
            height: 1,
            ..area
        };
        grid::draw_row(buf, line, &columns, &xs, &cells, false, theme);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_to_one_of_each_then_gauges_notes_breakdown() {
        assert_eq!(allot(0, 10, 10, 3), (0, 0, 0));
        assert_eq!(allot(2, 10, 10, 3), (1, 1, 0));
        assert_eq!(allot(12, 10, 1, 3), (8, 1, 3));
        assert_eq!(allot(12, 2, 5, 1), (2, 5, 1));
        assert_eq!(allot(50, 0, 0, 0), (1, 1, 0), "room for 'none'");
        // Many of both: 3 gauges and the notes, then half the rest to gauges.
        assert_eq!(allot(24, 50, 50, 2), (10, 12, 2));
    }
}

//! The listener panel's foot: the selected listener's accept queue now and over its
//! history (scaled to the backlog, so a full bar is a full queue), and its top peers.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use super::{QUEUE_CRITICAL, QUEUE_WARN, owner_label, peers};
use crate::analysis::listeners::ListenerRow;
use crate::model::TcpState;
use crate::tui::app::App;
use crate::tui::chart::{self, Level};
use crate::tui::format;

/// The selected listener: queue now and over time, and its top peers.
pub fn render(frame: &mut Frame, area: Rect, app: &App, l: &ListenerRow) {
    let theme = app.theme;
    let q = l.listener;
    let history = app.insight().history();
    let series = history.listener_queue(&q.key());
    let peak = series.and_then(|h| h.iter().max()).unwrap_or(q.queue);
    let owner = match owner_label(q.owners, &app.snapshot, theme).0.as_str() {
        "-" => String::new(),
        "?" => " (owner hidden)".to_string(),
        name => format!(" {name}"),
    };
    let fill = q
        .fill_percent()
        .map_or(String::new(), |p| format!(" ({p:.0}%)"));
    let [head, chart, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let head_line = Line::from(vec![
        Span::styled(format::addr(q.local), theme.bold()),
        Span::raw(format!("{owner}: accept queue ")),
        Span::styled(
            format!(
                "{} of {}{fill}",
                format::count(q.queue),
                format::count(q.backlog)
            ),
            Level::of(q.fill_percent().unwrap_or(0.0), QUEUE_WARN, QUEUE_CRITICAL).style(theme),
        ),
        Span::styled(format!(", peak {}", format::count(peak)), theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(head_line), head);
    if let Some(h) = series {
        let bars = chart::buckets(h.iter(), usize::from(chart.width));
        let len = u16::try_from(bars.len()).unwrap_or(0).min(chart.width);
        let right = Rect {
            x: chart.x + chart.width - len,
            width: len,
            ..chart
        };
        // Scaled to the backlog, so a full bar means a full queue.
        let max = u64::from(q.backlog.max(peak).max(1));
        frame.render_widget(
            Sparkline::default()
                .data(bars)
                .max(max)
                .style(theme.state(TcpState::Listen)),
            right,
        );
    }
    let foot_line = Line::from(vec![
        Span::styled("top peers: ", theme.dim()),
        Span::raw(peers(l, " · ")),
    ]);
    frame.render_widget(Paragraph::new(foot_line), foot);
}

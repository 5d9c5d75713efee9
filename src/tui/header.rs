//! The header: host and totals, a colored count per state with its recent history as a
//! sparkline, then status lines (the most severe firing alert, the last sample's error,
//! the not-root note).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::analysis::alerts::Severity;
use crate::model::TcpState;
use crate::tui::app::App;
use crate::tui::theme::{state_header_name, state_label};
use crate::tui::{chart, format};

/// Header order: the life of a connection, then the rest.
const ORDER: [TcpState; TcpState::COUNT] = [
    TcpState::Listen,
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::NewSynRecv,
    TcpState::Established,
    TcpState::FinWait1,
    TcpState::FinWait2,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::Closing,
    TcpState::TimeWait,
    TcpState::Close,
    TcpState::BoundInactive,
];

/// States shown even at zero: the ones people look for.
const ALWAYS: [TcpState; 5] = [
    TcpState::Listen,
    TcpState::SynRecv,
    TcpState::Established,
    TcpState::CloseWait,
    TcpState::TimeWait,
];

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme;
    let snap = &app.snapshot;
    let sep = || Span::styled(" │ ", theme.dim());
    let mut info = vec![
        Span::styled(app.host.hostname.clone(), theme.bold()),
        Span::raw(format!(" {}", app.host.kernel)),
        sep(),
    ];
    if app.has_sample {
        let owned = snap.coverage.attributed + snap.coverage.inferred;
        info.extend([
            Span::styled(format::usize_count(snap.sockets.len()), theme.bold()),
            Span::raw(" sockets, "),
            Span::styled(format::usize_count(owned), theme.bold()),
            Span::raw(" with a process"),
            sep(),
            Span::raw(format!(
                "every {}, took {}",
                format::duration(app.interval),
                format::duration(snap.duration)
            )),
        ]);
    } else {
        info.push(Span::styled("waiting for the first sample…", theme.dim()));
    }
    if app.paused {
        info.push(sep());
        let held = match app.held_count {
            0 => String::new(),
            n => format!(" ({n} new)"),
        };
        info.push(Span::styled(
            format!("PAUSED{held}"),
            theme.warning().patch(theme.bold()),
        ));
    }
    let brand = [Span::styled("portside", theme.title()), sep()];
    let brand_w: usize = brand.iter().map(Span::width).sum();
    if info.iter().map(Span::width).sum::<usize>() + brand_w <= usize::from(area.width) {
        info.splice(0..0, brand);
    }
    let mut lines = vec![Line::from(info), states_line(app, area.width)];
    if let Some(alert) = alert_line(app, area.width) {
        lines.push(alert);
    }
    if let Some(e) = &app.last_error {
        lines.push(Line::styled(
            format!("sample failed: {e} (showing the last good sample)"),
            theme.error(),
        ));
    }
    if app.not_root() {
        lines.push(Line::styled(
            "not root: other users' sockets show no process; run as root to see all owners",
            theme.warning(),
        ));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// A state's name in the header: long (`TIME_WAIT`) or short (`TIME_W`).
type StateName = fn(TcpState) -> &'static str;

/// Ways to write the states line, widest first: long or short names, and sparklines of
/// the last N samples (one per second by default) or none.
const STATES_FORMS: [(StateName, usize); 7] = [
    (state_header_name, 10),
    (state_header_name, 7),
    (state_header_name, 4),
    (state_label, 6),
    (state_label, 4),
    (state_header_name, 0),
    (state_label, 0),
];

/// `LISTEN 12 ▁▂▃  ESTAB 1.2k ▅▆█  TIME_WAIT 300 ▁▁▇ ...`, each in its state's color; the
/// first form of [`STATES_FORMS`] that fits in `width`.
fn states_line(app: &App, width: u16) -> Line<'static> {
    let mut spans = Vec::new();
    for (name, spark) in STATES_FORMS {
        spans = states_spans(app, name, spark);
        if spans.iter().map(Span::width).sum::<usize>() <= usize::from(width) {
            break;
        }
    }
    Line::from(spans)
}

fn states_spans(app: &App, name: fn(TcpState) -> &'static str, spark: usize) -> Vec<Span<'static>> {
    let theme = app.theme;
    let history = app.host_insight().history().host();
    let mut spans = Vec::new();
    for state in ORDER {
        let n = app.state_totals[state.index()];
        if n == 0 && !ALWAYS.contains(&state) {
            continue;
        }
        if !spans.is_empty() {
            spans.push(Span::raw("  "));
        }
        let style = if n == 0 {
            theme.dim()
        } else {
            theme.state(state)
        };
        spans.push(Span::styled(format!("{} ", name(state)), style));
        spans.push(Span::styled(format::count(n), style.patch(theme.bold())));
        let i = state.index();
        let series = || history.iter().map(move |p| p.tcp[i] + p.udp[i]);
        // As wide as the history, once there are two points to compare.
        let spark = spark.min(history.len());
        if spark > 1 && series().rev().take(spark).any(|v| v > 0) {
            spans.push(Span::styled(
                format!(" {}", chart::spark(series(), spark)),
                theme.state(state),
            ));
        }
    }
    spans
}

/// The most severe firing alert, cut to `width` so the count of the others stays visible.
fn alert_line(app: &App, width: u16) -> Option<Line<'static>> {
    let theme = app.theme;
    let first = app.fired().first()?;
    let (label, style) = match first.severity {
        Severity::Critical => ("CRITICAL ", theme.error().patch(theme.selected())),
        Severity::Warning => ("WARNING ", theme.warning().patch(theme.bold())),
    };
    let more = match app.fired().len() - 1 {
        0 => String::new(),
        n => format!("  (+{n} more)"),
    };
    let room = usize::from(width).saturating_sub(label.len() + more.len());
    let message = if first.message.chars().count() > room {
        let mut cut: String = first.message.chars().take(room.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        first.message.clone()
    };
    Some(Line::from(vec![
        Span::styled(label, style),
        Span::styled(
            message,
            style.remove_modifier(ratatui::style::Modifier::REVERSED),
        ),
        Span::styled(more, theme.bold()),
    ]))
}

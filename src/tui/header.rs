//! The header: host and totals, a colored count per state, then status lines (the last
//! sample's error, the not-root note).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::model::TcpState;
use crate::tui::app::App;
use crate::tui::format;
use crate::tui::theme::{state_header_name, state_label};

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

/// `LISTEN 12  ESTAB 1.2k  TIME_WAIT 300 ...`, each in its state's color; with the short
/// column labels (`TIME_W`) when the long names do not fit in `width`.
fn states_line(app: &App, width: u16) -> Line<'static> {
    let long = states_spans(app, state_header_name);
    if long.iter().map(Span::width).sum::<usize>() <= usize::from(width) {
        return Line::from(long);
    }
    Line::from(states_spans(app, state_label))
}

fn states_spans(app: &App, name: fn(TcpState) -> &'static str) -> Vec<Span<'static>> {
    let theme = app.theme;
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
    }
    spans
}

//! The TIME_WAIT panel's lower half: ephemeral ports in use per destination as gauges
//! against the kernel's range, and the sysctls that decide how long ports stay taken.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::analysis::timewait::{EphemeralUse, TimeWaitReport, range_size};
use crate::source::sysctl::KernelSettings;
use crate::tui::chart::{self, Level};
use crate::tui::format;
use crate::tui::grid::{self, Align, Cell, Column};
use crate::tui::theme::Theme;

/// Ephemeral use from which a gauge turns yellow, and red (percent of the range).
const GAUGE_WARN: f64 = 50.0;
const GAUGE_CRITICAL: f64 = 80.0;

/// One gauge per destination: local ports in use (all states) against the range.
pub fn ephemeral_gauges(frame: &mut Frame, area: Rect, report: &TimeWaitReport, theme: Theme) {
    let (lo, hi) = report.ephemeral_range;
    let size = range_size(report.ephemeral_range);
    let heading = Line::from(vec![
        Span::styled("EPHEMERAL PORTS PER DESTINATION", theme.column_header()),
        Span::styled(
            format!(
                "  all states, of {} in {lo}-{hi}",
                format::thousands(u64::from(size))
            ),
            theme.dim(),
        ),
    ]);
    frame.render_widget(Paragraph::new(heading), Rect { height: 1, ..area });
    let body = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(1),
        ..area
    };
    if report.ephemeral.is_empty() {
        let none = "no outbound connections from ephemeral ports";
        frame.render_widget(Paragraph::new(Line::styled(none, theme.dim())), body);
        return;
    }
    let bar_w = (area.width / 5).max(8);
    let columns = [
        Column::new("", Constraint::Fill(1), Align::LeftKeepEnd),
        Column::new("", Constraint::Length(bar_w), Align::Left),
        Column::new("", Constraint::Length(22), Align::Right),
    ];
    let xs = grid::layout(&columns, area.width);
    let buf = frame.buffer_mut();
    for (u, y) in report.ephemeral.iter().zip(body.y..body.bottom()) {
        let line = Rect {
            y,
            height: 1,
            ..area
        };
        grid::draw_row(
            buf,
            line,
            &columns,
            &xs,
            &gauge_cells(u, bar_w, theme),
            false,
            theme,
        );
    }
}

/// `127.0.0.1:5432 from 127.0.0.1`, the bar, `23,004 of 28,232  81%`.
fn gauge_cells(u: &EphemeralUse, bar_w: u16, theme: Theme) -> [Cell; 3] {
    let percent = u.percent().unwrap_or(0.0);
    let style = Level::of(percent, GAUGE_WARN, GAUGE_CRITICAL).style(theme);
    let d = u.destination;
    [
        Cell::new(
            format!("{} from {}", format::addr(d.remote), d.local_ip),
            Style::new(),
        ),
        Cell::new(chart::bar(percent / 100.0, usize::from(bar_w)), style),
        Cell::new(
            format!(
                "{} of {} {:>3.0}%",
                format::thousands(u64::from(u.used)),
                format::thousands(u64::from(u.range_size)),
                percent
            ),
            style,
        ),
    ]
}

/// `ip_local_port_range 32768-60999  tcp_fin_timeout 60  tcp_tw_reuse 2  tcp_max_tw_buckets
/// 262,144`; `?` for a setting that could not be read.
pub fn kernel_spans(settings: Option<&KernelSettings>, theme: Theme) -> Vec<Span<'static>> {
    let Some(k) = settings else {
        return vec![Span::styled("kernel settings: not read yet", theme.dim())];
    };
    let opt = |v: Option<u64>| v.map_or("?".to_string(), format::thousands);
    let reuse = match k.tcp_tw_reuse {
        Some(0) => "0 (off)".to_string(),
        Some(1) => "1 (on)".to_string(),
        Some(2) => "2 (loopback)".to_string(),
        other => opt(other.map(u64::from)),
    };
    let (lo, hi) = k.ephemeral_range;
    let items = [
        ("ip_local_port_range", format!("{lo}-{hi}")),
        ("tcp_fin_timeout", opt(k.tcp_fin_timeout.map(u64::from))),
        ("tcp_tw_reuse", reuse),
        ("tcp_max_tw_buckets", opt(k.tcp_max_tw_buckets)),
    ];
    let mut spans = Vec::new();
    for (name, value) in items {
        if !spans.is_empty() {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(format!("{name} "), theme.dim()));
        spans.push(Span::styled(value, theme.bold()));
    }
    spans
}

/// Lines `spans` take when wrapped at `width`: 1, or 2 when they do not fit on one.
pub fn wrap_height(spans: &[Span], width: u16) -> u16 {
    let w: usize = spans.iter().map(Span::width).sum();
    if w <= usize::from(width) { 1 } else { 2 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::timewait::Destination;
    use ratatui::style::Color;

    #[test]
    fn gauges_read_as_a_sentence_and_warn_by_level() {
        let u = EphemeralUse {
            destination: Destination {
                local_ip: "127.0.0.1".parse().unwrap(),
                remote: "127.0.0.1:5432".parse().unwrap(),
            },
            used: 23_004,
            range_size: 28_232,
        };
        let theme = Theme::new(true);
        let [label, bar, figures] = gauge_cells(&u, 10, theme);
        assert_eq!(label.text, "127.0.0.1:5432 from 127.0.0.1");
        assert_eq!(bar.text, "████████▏░");
        assert_eq!(figures.text, "23,004 of 28,232  81%");
        assert_eq!(figures.style.fg, Some(Color::Red));
        let half = EphemeralUse { used: 14_116, ..u };
        assert_eq!(
            gauge_cells(&half, 10, theme)[2].style.fg,
            Some(Color::Yellow)
        );
        let empty = EphemeralUse { range_size: 0, ..u };
        assert_eq!(gauge_cells(&empty, 4, theme)[2].text, "23,004 of 0   0%");
    }

    #[test]
    fn kernel_settings_name_their_values() {
        let text = |k: Option<&KernelSettings>| -> String {
            kernel_spans(k, Theme::new(false))
                .iter()
                .map(|s| s.content.to_string())
                .collect()
        };
        assert_eq!(text(None), "kernel settings: not read yet");
        let k = KernelSettings {
            ephemeral_range: (32768, 60999),
            tcp_fin_timeout: Some(60),
            tcp_tw_reuse: Some(2),
            tcp_max_tw_buckets: None,
            somaxconn: Some(4096),
        };
        assert_eq!(
            text(Some(&k)),
            "ip_local_port_range 32768-60999  tcp_fin_timeout 60  tcp_tw_reuse 2 (loopback)  \
             tcp_max_tw_buckets ?"
        );
    }
}

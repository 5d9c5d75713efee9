//! What the panels share: their title line, the wait for a first report, word wrapping.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::App;
use crate::tui::keys::{self, Action, NORMAL};

/// `[ name ]  stats…` on the left, the scope (`filter: port:443` or `all sockets`) and
/// `esc back` on the right when it fits.
pub fn title(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    name: &'static str,
    stats: Vec<Span<'static>>,
) {
    let theme = app.theme;
    let mut spans = vec![
        Span::styled(name, theme.title().patch(theme.selected())),
        Span::raw("  "),
    ];
    spans.extend(stats);
    let left = Line::from(spans);
    let used = left.width();
    frame.render_widget(Paragraph::new(left), area);
    let back = keys::first_key(NORMAL, Action::Back).unwrap_or("esc");
    // The panel describes the sockets the filter selects (the engine scoped it); say which.
    let scope = &app.tick.scope;
    let right = if scope.is_filtered() {
        Line::styled(
            format!("filter: {} · {back} back ", scope.filter_text),
            theme.warning(),
        )
    } else {
        Line::styled(format!("all sockets · {back} back "), theme.dim())
    };
    let right_w = right.width() as u16;
    if usize::from(area.width) > used + usize::from(right_w) + 2 {
        let at = Rect {
            x: area.x + area.width - right_w,
            width: right_w,
            ..area
        };
        frame.render_widget(Paragraph::new(right), at);
    }
}

/// Before the first report (a panel opened ahead of the first sample).
pub fn waiting(frame: &mut Frame, area: Rect, app: &App) {
    let line = Line::styled("waiting for the first sample…", app.theme.dim()).centered();
    let at = Rect {
        y: area.y + area.height / 3,
        height: area.height.min(1),
        ..area
    };
    frame.render_widget(Paragraph::new(line), at);
}

/// Greedy word wrap of `text` at `width` columns; a word longer than a line is cut.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_w = 0;
    for word in text.split_whitespace() {
        let word: String = word.chars().take(width).collect();
        let w = word.chars().count();
        if line_w > 0 && line_w + 1 + w > width {
            lines.push(std::mem::take(&mut line));
            line_w = 0;
        }
        if line_w > 0 {
            line.push(' ');
            line_w += 1;
        }
        line.push_str(&word);
        line_w += w;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_on_words() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("  ", 5), Vec::<String>::new());
        assert_eq!(wrap("abcdefgh ij", 4), ["abcd", "ij"]);
        assert_eq!(wrap("x y", 0), ["x", "y"]);
    }
}

//! The `?` overlay: every key, listed from the active bindings (defaults, preset and the
//! user's) so the help cannot drift from what the keys do, plus what the marks in the tables mean. Fits 80x24.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::tui::app::App;
use crate::tui::keys::KeyMap;
use crate::tui::theme::Theme;

/// Width of the key column.
const KEYS_W: usize = 27;
/// Width of the text inside the box.
const INNER_W: usize = 70;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let lines = lines(&app.keymap, app.theme);
    let width = lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 2;
    let popup = centered(area, width, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(Line::styled(" keys · esc closes ", app.theme.title()))
        .border_style(app.theme.dim());
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

fn lines(keymap: &KeyMap, theme: Theme) -> Vec<Line<'static>> {
    let mut lines: Vec<Line> = keymap
        .keys_by_description()
        .into_iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<KEYS_W$}"), theme.key()),
                Span::raw(what),
            ])
        })
        .collect();
    lines.push(Line::styled(" In the / prompt:", theme.bold()));
    let mut prompt: Vec<(String, String, Style)> = Vec::new();
    prompt.extend(
        KeyMap::prompt_keys_by_description()
            .into_iter()
            .map(|(k, what)| (k, what.to_string(), Style::new())),
    );
    prompt.push((
        String::new(),
        "e.g. lport:443 state:est,tw !proc:nginx".into(),
        theme.dim(),
    ));
    lines.extend(pack(prompt, theme));
    let marks = [
        ("~", "owner inferred"),
        ("?", "owner hidden (not root)"),
        ("-", "no owner"),
        ("5s+", "seen since start"),
        ("wheel/click", "scroll/select"),
        ("Δ1m", "1-min change"),
        (
            "wk reg eph dyn",
            "well-known, registered, ephemeral, dynamic ports",
        ),
    ];
    lines.extend(pack(
        marks
            .into_iter()
            .map(|(k, what)| (k.to_string(), what.to_string(), Style::new()))
            .collect(),
        theme,
    ));
    lines
}

/// Packs `key what` items into lines at most `INNER_W` wide, separated by ` · `.
fn pack(items: Vec<(String, String, Style)>, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut line: Vec<Span> = vec![Span::raw(" ")];
    let mut width = 1;
    for (key, what, style) in items {
        let item_w = key.chars().count() + usize::from(!key.is_empty()) + what.chars().count();
        if width > 1 && width + 3 + item_w > INNER_W {
            lines.push(Line::from(std::mem::replace(
                &mut line,
                vec![Span::raw(" ")],
            )));
            width = 1;
        }
        if width > 1 {
            line.push(Span::styled(" · ", theme.dim()));
            width += 3;
        }
        if !key.is_empty() {
            line.push(Span::styled(format!("{key} "), theme.key()));
        }
        line.push(Span::styled(what, style));
        width += item_w;
    }
    if width > 1 {
        lines.push(Line::from(line));
    }
    lines
}

/// A `width` x `height` rectangle in the middle of `area`, shrunk to fit.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_fits_the_smallest_screen() {
        let lines = lines(&KeyMap::default(), Theme::new(false));
        assert!(lines.len() + 2 <= 24, "{} lines", lines.len());
        for l in &lines {
            assert!(l.width() + 2 <= 80, "{l}");
        }
    }
}

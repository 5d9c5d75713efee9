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
    let mut lines: Vec<Line> = Vec::new();
    for (keys, what) in keymap.keys_by_description() {
        // Many keys for one thing (the user's or a preset's) wrap in the key column.
        for (i, chunk) in wrap_keys(&keys).into_iter().enumerate() {
            lines.push(Line::from(vec![
                Span::styled(format!(" {chunk:<KEYS_W$}"), theme.key()),
                Span::raw(if i == 0 { what } else { "" }),
            ]));
        }
    }
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

/// `a, b, c` split into pieces at most `KEYS_W - 1` wide, at the commas.
fn wrap_keys(keys: &str) -> Vec<String> {
    let keys: Vec<&str> = keys.split(", ").collect();
    let mut out: Vec<String> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        // A piece that more keys follow ends in a comma.
        let comma = usize::from(i + 1 < keys.len());
        match out.last_mut() {
            Some(line) if line.chars().count() + 2 + key.chars().count() + comma < KEYS_W => {
                line.push_str(", ");
                line.push_str(key);
            }
            Some(line) => {
                line.push(',');
                out.push((*key).to_string());
            }
            None => out.push((*key).to_string()),
        }
    }
    out
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
    fn long_key_lists_wrap_in_their_column() {
        assert_eq!(wrap_keys("q, ctrl+c"), ["q, ctrl+c"]);
        let long = "pgup, ctrl+b, ctrl+u, pgdn, ctrl+f, ctrl+d";
        let wrapped = wrap_keys(long);
        assert_eq!(wrapped, ["pgup, ctrl+b, ctrl+u,", "pgdn, ctrl+f, ctrl+d"]);
        assert!(wrapped.iter().all(|l| l.len() < KEYS_W));
    }

    #[test]
    fn help_fits_the_smallest_screen() {
        let lines = lines(&KeyMap::default(), Theme::new(false));
        assert!(lines.len() + 2 <= 24, "{} lines", lines.len());
        for l in &lines {
            assert!(l.width() + 2 <= 80, "{l}");
        }
    }
}

//! The `/` prompt in the footer: the expression being typed, and above it, in red, why it
//! does not parse (the last valid filter stays applied meanwhile).

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::tui::app::{App, Prompt};

pub fn render(frame: &mut Frame, area: Rect, app: &App, prompt: &Prompt) {
    let theme = app.theme;
    let input_y = area.bottom().saturating_sub(1);
    let message = prompt
        .error
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| prompt.note.clone());
    if let Some(message) = message {
        let error_area = Rect::new(area.x, area.y, area.width, input_y - area.y);
        frame.render_widget(
            Paragraph::new(Line::styled(message, theme.error())).wrap(Wrap { trim: false }),
            error_area,
        );
    }
    let input_style = if prompt.error.is_some() {
        theme.error()
    } else {
        theme.bold()
    };
    let text = prompt.input.text();
    let input = Line::from(vec![
        Span::styled("/", theme.key()),
        Span::styled(text.to_string(), input_style),
    ]);
    let input_area = Rect::new(area.x, input_y, area.width, 1);
    frame.render_widget(Paragraph::new(input), input_area);
    // On the right: what stays applied while the text is invalid, and the keys.
    let mut hint = Vec::new();
    if prompt.error.is_some() {
        let applied = if app.filter_text.trim().is_empty() {
            "none"
        } else {
            app.filter_text.trim()
        };
        hint.push(Span::styled("applied: ", theme.dim()));
        hint.push(Span::styled(applied.to_string(), theme.bold()));
        hint.push(Span::styled(" · ", theme.dim()));
    }
    hint.push(Span::styled("Enter keep · Esc cancel ", theme.dim()));
    let hint = Line::from(hint);
    let text_w = Span::raw(text).width() + 1;
    let hint_w = hint.width();
    if usize::from(area.width) > text_w + hint_w + 2 {
        let right = Rect::new(area.right() - hint_w as u16, input_y, hint_w as u16, 1);
        frame.render_widget(Paragraph::new(hint), right);
    }
    let before: String = text.chars().take(prompt.input.cursor()).collect();
    let x = area.x + (Span::raw(before).width() as u16 + 1).min(area.width.saturating_sub(1));
    frame.set_cursor_position(Position::new(x, input_y));
}

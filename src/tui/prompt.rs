//! The `/` prompt in the footer: the expression being typed, and above it, in red, why it
//! does not parse (the last valid filter stays applied meanwhile).

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, Prompt};

pub fn render(frame: &mut Frame, area: Rect, app: &App, prompt: &Prompt) {
    let theme = app.theme;
    let mut lines = Vec::with_capacity(2);
    if let Some(e) = &prompt.error {
        let applied = if app.filter_text.trim().is_empty() {
            "none".to_string()
        } else {
            app.filter_text.clone()
        };
        lines.push(Line::styled(format!("{e} (applied: {applied})"), theme.error()));
    }
    let input_style = if prompt.error.is_some() {
        theme.error()
    } else {
        theme.bold()
    };
    let text = prompt.input.text();
    lines.push(Line::from(vec![
        Span::styled("/", theme.key()),
        Span::styled(text.to_string(), input_style),
    ]));
    let input_y = area.bottom().saturating_sub(1);
    let hint = Line::styled("Enter keep · Esc cancel · ctrl+u clear ", theme.dim());
    frame.render_widget(Paragraph::new(lines), area);
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

//! The footer: the active filter, then the keys that matter in the current view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, Panel};
use crate::tui::keys::Action;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme;
    let mut spans = vec![Span::styled("filter: ", theme.dim())];
    if app.filter_text.trim().is_empty() {
        spans.push(Span::styled("none", theme.dim()));
    } else {
        spans.push(Span::styled(app.filter_text.clone(), theme.bold()));
    }
    let mut width: usize = spans.iter().map(Span::width).sum();
    for &action in hints(app) {
        let Some(key) = app.keymap.first_key(action) else {
            continue;
        };
        let hint = [
            Span::raw("  "),
            Span::styled(key, theme.key()),
            Span::raw(" "),
            Span::raw(action.hint()),
        ];
        let w: usize = hint.iter().map(Span::width).sum();
        if width + w > usize::from(area.width) {
            break;
        }
        width += w;
        spans.extend(hint);
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The keys worth showing now, most useful first (the footer drops the last ones first).
fn hints(app: &App) -> &'static [Action] {
    match app.panels.open {
        Some(Panel::TimeWait) => {
            return &[
                Action::Back,
                Action::ListenerPanel,
                Action::ToggleHelp,
                Action::Quit,
                Action::TogglePause,
            ];
        }
        Some(Panel::Listeners) => {
            return &[
                Action::Back,
                Action::DrillDown,
                Action::TimeWaitPanel,
                Action::ToggleHelp,
                Action::Quit,
                Action::TogglePause,
            ];
        }
        None => {}
    }
    if app.drill.is_some() {
        &[
            Action::Back,
            Action::ToggleHelp,
            Action::Quit,
            Action::OpenFilter,
            Action::CycleSort,
            Action::ReverseSort,
            Action::TogglePause,
            Action::TimeWaitPanel,
            Action::ListenerPanel,
        ]
    } else if app.filter.is_empty() {
        &[
            Action::ToggleHelp,
            Action::Quit,
            Action::OpenFilter,
            Action::TimeWaitPanel,
            Action::ListenerPanel,
            Action::DrillDown,
            Action::SwitchView,
            Action::CycleSort,
            Action::ReverseSort,
            Action::TogglePause,
            Action::ToggleNumeric,
        ]
    } else {
        &[
            Action::ToggleHelp,
            Action::Quit,
            Action::OpenFilter,
            Action::ClearFilter,
            Action::TimeWaitPanel,
            Action::ListenerPanel,
            Action::DrillDown,
            Action::SwitchView,
            Action::CycleSort,
            Action::ReverseSort,
            Action::TogglePause,
        ]
    }
}

//! Each theme drawn on whole screens, its styles in the snapshot; and the help drawn from
//! the user's bindings.

use std::fmt::Write as _;

use ratatui::buffer::Buffer;
use ratatui::style::Style;

use crate::model::TcpState;
use crate::tui::keys::{Action, Bindings, KeyMap, Preset};
use crate::tui::testing::{app_with, draw, press, snapshot};
use crate::tui::theme::{BuiltinTheme, Theme};

/// The screen's text, each line followed by its styled runs: `  [col..col] fg +MODS`.
fn styled(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut text = String::new();
        let mut runs: Vec<(u16, u16, Style)> = Vec::new();
        for x in 0..area.width {
            let cell = &buffer[(x, y)];
            text.push_str(cell.symbol());
            let style = Style::new().fg(cell.fg).add_modifier(cell.modifier);
            match runs.last_mut() {
                Some((_, end, s)) if *s == style && *end == x => *end = x + 1,
                _ => runs.push((x, x + 1, style)),
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
        for (start, end, style) in runs {
            let fg = style.fg.filter(|c| *c != ratatui::style::Color::Reset);
            let mods = style.add_modifier;
            if fg.is_none() && mods.is_empty() {
                continue;
            }
            let _ = write!(out, "  [{start}..{end}]");
            if let Some(fg) = fg {
                let _ = write!(out, " {fg}");
            }
            if !mods.is_empty() {
                let _ = write!(out, " +{mods:?}");
            }
            out.push('\n');
        }
    }
    out
}

fn themed(theme: Theme) -> String {
    let mut app = app_with(snapshot(40), 80, 24, "");
    app.theme = theme;
    styled(draw(&mut app).backend().buffer())
}

#[test]
fn default_theme() {
    insta::assert_snapshot!(themed(BuiltinTheme::Default.theme()));
}

#[test]
fn light_theme() {
    insta::assert_snapshot!(themed(BuiltinTheme::Light.theme()));
}

#[test]
fn high_contrast_theme() {
    insta::assert_snapshot!(themed(BuiltinTheme::HighContrast.theme()));
}

#[test]
fn monochrome_theme_has_no_colour() {
    let text = themed(BuiltinTheme::Monochrome.theme());
    let mut app = app_with(snapshot(40), 80, 24, "");
    app.theme = BuiltinTheme::Monochrome.theme();
    let term = draw(&mut app);
    for cell in term.backend().buffer().content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset, "{text}");
        assert_eq!(cell.bg, ratatui::style::Color::Reset, "{text}");
    }
    assert!(
        text.contains("REVERSED"),
        "the selection stays visible:\n{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn a_state_has_one_style_on_the_whole_screen() {
    for t in BuiltinTheme::ALL {
        let theme = t.theme();
        let mut app = app_with(snapshot(40), 100, 30, "");
        app.theme = theme;
        let term = draw(&mut app);
        let buffer = term.backend().buffer();
        // Every cell spelling a state label in a state's colour uses that state's colour.
        let text: Vec<String> = (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect()
            })
            .collect();
        for state in [TcpState::Listen, TcpState::Established, TcpState::TimeWait] {
            let label = crate::tui::theme::state_label(state);
            let want = theme.state(state);
            let mut seen = 0;
            for (y, line) in text.iter().enumerate() {
                let mut from = 0;
                while let Some(at) = line[from..].find(label) {
                    let x = (from + at) as u16;
                    let cell = &buffer[(x, y as u16)];
                    if cell.fg == want.fg.unwrap_or(ratatui::style::Color::Reset)
                        && want.fg.is_some()
                    {
                        seen += 1;
                    }
                    from += at + label.len();
                }
            }
            if want.fg.is_some() {
                assert!(seen > 0, "{t}: {state:?} never drawn in its colour");
            }
        }
    }
}

#[test]
fn help_lists_the_users_bindings() {
    let mut bindings = Bindings::preset(Preset::Vim);
    bindings.set(
        Action::Quit,
        vec!["x".parse().unwrap(), "ctrl+q".parse().unwrap()],
    );
    bindings.set(Action::CycleSort, vec!["o".parse().unwrap()]);
    let mut app = app_with(snapshot(40), 80, 24, "");
    app.keymap = KeyMap::new(&bindings).unwrap();
    app.theme = Theme::new(false);
    press(&mut app, "?");
    let screen = draw(&mut app).backend().to_string();
    assert!(screen.contains("x, ctrl+q"), "{screen}");
    assert!(screen.contains("esc, backspace, h"), "{screen}");
    assert!(!screen.contains("q, ctrl+c"), "{screen}");
    insta::assert_snapshot!(screen);
    // x closes the help like q did; in the main view it quits.
    press(&mut app, "x");
    assert!(!app.help);
    assert!(app.quit_reason().is_none());
    press(&mut app, "x");
    assert!(app.quit_reason().is_some());
}

//! Colors and styles: one style per TCP state used everywhere (header, column headers,
//! rows, panels), from a built-in theme (`default`, `light`, `high-contrast`, `monochrome`,
//! the last also for `NO_COLOR`) or a theme file laid over one.

mod builtin;
mod file;

use ratatui::style::{Color, Modifier, Style};

use crate::model::TcpState;

pub use builtin::BuiltinTheme;
pub use file::{ThemeFileError, parse_style};

/// The styles the UI draws with. Selection, column headers and bold text use modifiers
/// only, so they stay visible in every theme. Kept small (a colour and modifiers per slot,
/// not a whole `Style`): render code passes it by value everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    states: [Look; TcpState::COUNT],
    title: Look,
    error: Look,
    warning: Look,
    good: Look,
    dim: Look,
    key: Look,
}

/// A foreground colour and modifiers: what a theme sets per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Look {
    fg: Option<Color>,
    mods: Modifier,
}

impl Look {
    fn style(self) -> Style {
        let style = Style::new().add_modifier(self.mods);
        match self.fg {
            Some(c) => style.fg(c),
            None => style,
        }
    }
}

impl From<Style> for Look {
    fn from(style: Style) -> Look {
        Look {
            fg: style.fg,
            mods: style.add_modifier,
        }
    }
}

/// The themeable styles other than states, by their name in a theme file.
pub const ELEMENTS: &[&str] = &["title", "error", "warning", "good", "dim", "key"];

impl Theme {
    /// The default theme with `color`, else the monochrome one.
    pub fn new(color: bool) -> Theme {
        if color {
            BuiltinTheme::Default.theme()
        } else {
            BuiltinTheme::Monochrome.theme()
        }
    }

    /// The style of a state, the same in the header, the column headers and the rows.
    pub fn state(self, state: TcpState) -> Style {
        self.states[state.index()].style()
    }

    /// The selected row: reversed, so it stays visible without color.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn column_header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    pub fn title(self) -> Style {
        self.title.style()
    }

    pub fn error(self) -> Style {
        self.error.style()
    }

    pub fn warning(self) -> Style {
        self.warning.style()
    }

    /// A gauge with headroom left.
    pub fn good(self) -> Style {
        self.good.style()
    }

    /// Zero counts and secondary text.
    pub fn dim(self) -> Style {
        self.dim.style()
    }

    /// Key names in the footer and help.
    pub fn key(self) -> Style {
        self.key.style()
    }

    pub fn bold(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// The style of a theme file's element (`title`, ...) or state (`time-wait`, ...).
    fn slot(&mut self, name: &str) -> Option<&mut Look> {
        Some(match name {
            "title" => &mut self.title,
            "error" => &mut self.error,
            "warning" => &mut self.warning,
            "good" => &mut self.good,
            "dim" => &mut self.dim,
            "key" => &mut self.key,
            _ => {
                let state = TcpState::ALL.into_iter().find(|&s| state_key(s) == name)?;
                &mut self.states[state.index()]
            }
        })
    }
}

/// A state's key in a theme file: the kernel's name in kebab case (`time-wait`).
pub fn state_key(state: TcpState) -> &'static str {
    match state {
        TcpState::Established => "established",
        TcpState::SynSent => "syn-sent",
        TcpState::SynRecv => "syn-recv",
        TcpState::NewSynRecv => "new-syn-recv",
        TcpState::FinWait1 => "fin-wait-1",
        TcpState::FinWait2 => "fin-wait-2",
        TcpState::TimeWait => "time-wait",
        TcpState::Close => "close",
        TcpState::CloseWait => "close-wait",
        TcpState::LastAck => "last-ack",
        TcpState::Listen => "listen",
        TcpState::Closing => "closing",
        TcpState::BoundInactive => "bound-inactive",
    }
}

/// A column label for a state, at most 7 wide. `Close` is `UNCONN` as `ss` prints it
/// (unconnected UDP sockets; a TCP socket in CLOSE is bound but neither listening nor
/// connected).
pub fn state_label(state: TcpState) -> &'static str {
    match state {
        TcpState::Close => "UNCONN",
        TcpState::NewSynRecv => "NSYN_R",
        other => other.short_name(),
    }
}

/// The header's name for a state: the kernel's, shortened where it is long.
pub fn state_header_name(state: TcpState) -> &'static str {
    match state {
        TcpState::Established => "ESTAB",
        TcpState::Close => "UNCONN",
        TcpState::NewSynRecv => "NEW_SYN_RECV",
        TcpState::BoundInactive => "BOUND",
        other => other.kernel_name(crate::model::Proto::Tcp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Color;

    #[test]
    fn no_color_keeps_modifiers_only() {
        let plain = Theme::new(false);
        for state in TcpState::ALL {
            assert_eq!(plain.state(state).fg, None);
        }
        assert_eq!(plain.error().fg, None);
        assert!(plain.selected().add_modifier.contains(Modifier::REVERSED));
        assert_eq!(
            Theme::new(true).state(TcpState::Listen).fg,
            Some(Color::Green)
        );
    }

    #[test]
    fn every_slot_has_a_name() {
        let mut theme = Theme::new(true);
        for name in ELEMENTS.iter().copied().chain(TcpState::ALL.map(state_key)) {
            assert!(theme.slot(name).is_some(), "{name}");
        }
        assert!(theme.slot("nope").is_none());
    }

    #[test]
    fn labels_fit_columns_and_are_distinct() {
        let labels: Vec<_> = TcpState::ALL.iter().map(|&s| state_label(s)).collect();
        for (i, a) in labels.iter().enumerate() {
            assert!(a.len() <= 7, "{a}");
            assert!(!labels[i + 1..].contains(a), "duplicate label {a}");
        }
    }
}

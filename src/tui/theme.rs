//! Colors and styles: one color per TCP state used everywhere, and a `NO_COLOR` variant.

use ratatui::style::{Color, Modifier, Style};

use crate::model::TcpState;

/// The styles the UI draws with. `color: false` keeps only modifiers (bold, reverse, dim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colors unless `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
    pub fn from_env() -> Theme {
        Theme::new(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
    }

    pub fn new(color: bool) -> Theme {
        Theme { color }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    /// The color of a state, the same in the header, the column headers and the rows.
    pub fn state(self, state: TcpState) -> Style {
        self.fg(state_color(state))
    }

    /// The selected row: reversed, so it stays visible without color.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn column_header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn warning(self) -> Style {
        self.fg(Color::Yellow)
    }

    /// A gauge with headroom left.
    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }

    /// Zero counts and secondary text.
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    /// Key names in the footer and help.
    pub fn key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn bold(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
}

/// Listening green, established blue, opening yellow, closing from magenta to red
/// (CLOSE_WAIT red: the application has not closed its end).
fn state_color(state: TcpState) -> Color {
    match state {
        TcpState::Listen => Color::Green,
        TcpState::Established => Color::LightBlue,
        TcpState::SynSent | TcpState::SynRecv | TcpState::NewSynRecv => Color::Yellow,
        TcpState::FinWait1 | TcpState::FinWait2 => Color::LightMagenta,
        TcpState::TimeWait => Color::Magenta,
        TcpState::CloseWait => Color::LightRed,
        TcpState::LastAck | TcpState::Closing => Color::Red,
        TcpState::Close => Color::Gray,
        TcpState::BoundInactive => Color::DarkGray,
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

    #[test]
    fn no_color_keeps_modifiers_only() {
        let plain = Theme::new(false);
        for state in TcpState::ALL {
            assert_eq!(plain.state(state), Style::new());
        }
        assert_eq!(plain.error().fg, None);
        assert!(plain.selected().add_modifier.contains(Modifier::REVERSED));
        assert_eq!(
            Theme::new(true).state(TcpState::Listen).fg,
            Some(Color::Green)
        );
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

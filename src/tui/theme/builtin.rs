//! The built-in themes. All use the 16 ANSI colours, so they look the same on a 16-colour
//! terminal as on a 256-colour one; a theme file may use indexed or RGB colours.

use std::fmt;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};

use crate::model::TcpState;
use crate::tui::theme::Theme;

/// A theme that ships with portside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinTheme {
    /// For dark backgrounds.
    Default,
    /// For light backgrounds: no yellow, light grey or bright colours.
    Light,
    /// Bright colours in bold, grey instead of dark grey.
    HighContrast,
    /// No colour at all: bold, dim and reverse only (also used for `NO_COLOR`).
    Monochrome,
}

impl BuiltinTheme {
    pub const ALL: [BuiltinTheme; 4] = [
        BuiltinTheme::Default,
        BuiltinTheme::Light,
        BuiltinTheme::HighContrast,
        BuiltinTheme::Monochrome,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BuiltinTheme::Default => "default",
            BuiltinTheme::Light => "light",
            BuiltinTheme::HighContrast => "high-contrast",
            BuiltinTheme::Monochrome => "monochrome",
        }
    }

    /// The theme's styles.
    pub fn theme(self) -> Theme {
        let fg = |c: Color| Style::new().fg(c);
        let bold = Style::new().add_modifier(Modifier::BOLD);
        let styles = match self {
            BuiltinTheme::Default => Styles {
                // Listening green, established blue, opening yellow, closing from magenta
                // to red (CLOSE_WAIT light red: the application has not closed its end).
                states: states(|s| {
                    fg(match s {
                        TcpState::Listen => Color::Green,
                        TcpState::Established => Color::LightBlue,
                        TcpState::SynSent | TcpState::SynRecv | TcpState::NewSynRecv => {
                            Color::Yellow
                        }
                        TcpState::FinWait1 | TcpState::FinWait2 => Color::LightMagenta,
                        TcpState::TimeWait => Color::Magenta,
                        TcpState::CloseWait => Color::LightRed,
                        TcpState::LastAck | TcpState::Closing => Color::Red,
                        TcpState::Close => Color::Gray,
                        TcpState::BoundInactive => Color::DarkGray,
                    })
                }),
                title: fg(Color::Cyan).add_modifier(Modifier::BOLD),
                error: fg(Color::Red).add_modifier(Modifier::BOLD),
                warning: fg(Color::Yellow),
                good: fg(Color::Green),
                dim: fg(Color::DarkGray),
                key: fg(Color::Cyan).add_modifier(Modifier::BOLD),
            },
            BuiltinTheme::Light => Styles {
                states: states(|s| match s {
                    TcpState::Listen => fg(Color::Green),
                    TcpState::Established => fg(Color::Blue),
                    TcpState::SynSent | TcpState::SynRecv | TcpState::NewSynRecv => fg(Color::Cyan),
                    TcpState::FinWait1 | TcpState::FinWait2 => fg(Color::Magenta),
                    TcpState::TimeWait => fg(Color::Magenta).add_modifier(Modifier::BOLD),
                    TcpState::CloseWait => fg(Color::Red).add_modifier(Modifier::BOLD),
                    TcpState::LastAck | TcpState::Closing => fg(Color::Red),
                    TcpState::Close => Style::new(),
                    TcpState::BoundInactive => fg(Color::DarkGray),
                }),
                title: fg(Color::Blue).add_modifier(Modifier::BOLD),
                error: fg(Color::Red).add_modifier(Modifier::BOLD),
                warning: fg(Color::Magenta),
                good: fg(Color::Green),
                dim: fg(Color::DarkGray),
                key: fg(Color::Blue).add_modifier(Modifier::BOLD),
            },
            BuiltinTheme::HighContrast => Styles {
                states: states(|s| {
                    let style = fg(match s {
                        TcpState::Listen => Color::LightGreen,
                        TcpState::Established => Color::LightCyan,
                        TcpState::SynSent | TcpState::SynRecv | TcpState::NewSynRecv => {
                            Color::LightYellow
                        }
                        TcpState::FinWait1 | TcpState::FinWait2 => Color::LightMagenta,
                        TcpState::TimeWait => Color::Magenta,
                        TcpState::CloseWait => Color::LightRed,
                        TcpState::LastAck | TcpState::Closing => Color::Red,
                        TcpState::Close => Color::White,
                        TcpState::BoundInactive => Color::Gray,
                    });
                    style.add_modifier(Modifier::BOLD)
                }),
                title: fg(Color::White).add_modifier(Modifier::BOLD),
                error: fg(Color::LightRed).add_modifier(Modifier::BOLD | Modifier::REVERSED),
                warning: fg(Color::LightYellow).add_modifier(Modifier::BOLD),
                good: fg(Color::LightGreen).add_modifier(Modifier::BOLD),
                dim: fg(Color::Gray),
                key: fg(Color::LightYellow).add_modifier(Modifier::BOLD),
            },
            BuiltinTheme::Monochrome => Styles {
                states: [Style::new(); TcpState::COUNT],
                title: bold,
                error: bold,
                warning: Style::new(),
                good: Style::new(),
                dim: Style::new().add_modifier(Modifier::DIM),
                key: bold,
            },
        };
        styles.theme()
    }
}

/// A theme's styles, written out.
struct Styles {
    states: [Style; TcpState::COUNT],
    title: Style,
    error: Style,
    warning: Style,
    good: Style,
    dim: Style,
    key: Style,
}

impl Styles {
    fn theme(self) -> Theme {
        Theme {
            states: self.states.map(Into::into),
            title: self.title.into(),
            error: self.error.into(),
            warning: self.warning.into(),
            good: self.good.into(),
            dim: self.dim.into(),
            key: self.key.into(),
        }
    }
}

/// A per-state array from a function of the state.
fn states(style: impl Fn(TcpState) -> Style) -> [Style; TcpState::COUNT] {
    let mut out = [Style::new(); TcpState::COUNT];
    for state in TcpState::ALL {
        out[state.index()] = style(state);
    }
    out
}

impl FromStr for BuiltinTheme {
    type Err = String;

    fn from_str(s: &str) -> Result<BuiltinTheme, String> {
        BuiltinTheme::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown theme '{s}' (themes: default, light, high-contrast, monochrome, \
                     or a theme file: a path with / or ending in .toml)"
                )
            })
    }
}

impl fmt::Display for BuiltinTheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_colours_are_ansi() {
        for t in BuiltinTheme::ALL {
            assert_eq!(t.name().parse::<BuiltinTheme>(), Ok(t));
            let theme = t.theme();
            let styles = TcpState::ALL.map(|s| theme.state(s)).into_iter().chain([
                theme.title(),
                theme.error(),
                theme.warning(),
                theme.good(),
                theme.dim(),
                theme.key(),
            ]);
            for style in styles {
                assert!(
                    !matches!(style.fg, Some(Color::Indexed(_) | Color::Rgb(..))),
                    "{t}: {style:?} needs more than 16 colours"
                );
            }
        }
        assert!(
            "solarized"
                .parse::<BuiltinTheme>()
                .unwrap_err()
                .contains("'solarized'")
        );
    }

    #[test]
    fn light_theme_avoids_colours_unreadable_on_white() {
        let theme = BuiltinTheme::Light.theme();
        for state in TcpState::ALL {
            let fg = theme.state(state).fg;
            assert!(
                !matches!(
                    fg,
                    Some(Color::Yellow | Color::LightYellow | Color::Gray | Color::White)
                ),
                "{state:?}"
            );
        }
    }

    #[test]
    fn states_that_differ_in_the_default_differ_everywhere_but_monochrome() {
        let default = BuiltinTheme::Default.theme();
        for t in [BuiltinTheme::Light, BuiltinTheme::HighContrast] {
            let theme = t.theme();
            for a in TcpState::ALL {
                for b in TcpState::ALL {
                    if default.state(a) != default.state(b) {
                        assert_ne!(theme.state(a), theme.state(b), "{t}: {a:?} {b:?}");
                    }
                }
            }
        }
    }
}

//! Theme files: a built-in theme to start from and the styles to change, in TOML.
//!
//! ```toml
//! base = "light"            # default, light, high-contrast, monochrome
//! title = "bold blue"       # modifiers (bold, dim, italic, underlined, reversed) and a colour
//! [states]
//! time-wait = "#aa00aa"     # a colour name, a 256-colour index, or #rrggbb
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use toml::Spanned;

use crate::model::TcpState;
use crate::toml_error::TomlError;
use crate::tui::theme::{BuiltinTheme, ELEMENTS, Theme, state_key};

/// A bad theme file: names the file, line and key.
pub type ThemeFileError = TomlError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    base: Option<Spanned<String>>,
    title: Option<Spanned<String>>,
    error: Option<Spanned<String>>,
    warning: Option<Spanned<String>>,
    good: Option<Spanned<String>>,
    dim: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    #[serde(default)]
    states: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// `[modifier ...] [colour]`: `bold red`, `#ff8800`, `underlined 208`, `default` (no colour).
pub fn parse_style(spec: &str) -> Result<Style, String> {
    let mut style = Style::new();
    let mut colour = None;
    for word in spec.split_whitespace() {
        let modifier = match word {
            "bold" => Some(Modifier::BOLD),
            "dim" => Some(Modifier::DIM),
            "italic" => Some(Modifier::ITALIC),
            "underlined" => Some(Modifier::UNDERLINED),
            "reversed" => Some(Modifier::REVERSED),
            _ => None,
        };
        if let Some(m) = modifier {
            style = style.add_modifier(m);
        } else if colour.is_some() {
            return Err(format!("bad style '{spec}': more than one colour"));
        } else if word == "default" {
            colour = Some(None);
        } else {
            let c: Color = word.parse().map_err(|_| {
                format!(
                    "bad style '{spec}': '{word}' is not a modifier (bold, dim, italic, \
                     underlined, reversed) or a colour (red, light-blue, 208, #ff8800)"
                )
            })?;
            colour = Some(Some(c));
        }
    }
    if let Some(Some(c)) = colour {
        style = style.fg(c);
    }
    Ok(style)
}

impl Theme {
    /// Reads a theme file.
    pub fn from_file(path: &Path) -> Result<Theme, ThemeFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| TomlError::unreadable(path, &e))?;
        Theme::parse(path, &text)
    }

    /// Parses the text of a theme file read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Theme, ThemeFileError> {
        let file: ThemeFile =
            toml::from_str(text).map_err(|e| TomlError::from_toml(path, text, &e))?;
        let at = |s: &Spanned<String>, key: &str, msg: String| {
            TomlError::at(path, text, s.span(), key, msg)
        };
        let mut theme = match &file.base {
            Some(base) => base
                .get_ref()
                .parse::<BuiltinTheme>()
                .map_err(|e| at(base, "base", e))?
                .theme(),
            None => BuiltinTheme::Default.theme(),
        };
        let elements = [
            ("title", &file.title),
            ("error", &file.error),
            ("warning", &file.warning),
            ("good", &file.good),
            ("dim", &file.dim),
            ("key", &file.key),
        ];
        debug_assert_eq!(elements.len(), ELEMENTS.len());
        for (name, spec) in elements {
            if let Some(spec) = spec {
                let style = parse_style(spec.get_ref()).map_err(|e| at(spec, name, e))?;
                *theme.slot(name).expect("elements have slots (tested)") = style.into();
            }
        }
        for (name, spec) in &file.states {
            let key = format!("states.{}", name.get_ref());
            if !TcpState::ALL
                .iter()
                .any(|&s| state_key(s) == name.get_ref())
            {
                let known: Vec<&str> = TcpState::ALL.iter().map(|&s| state_key(s)).collect();
                return Err(at(
                    name,
                    &key,
                    format!("unknown state (states: {})", known.join(", ")),
                ));
            }
            let style = parse_style(spec.get_ref()).map_err(|e| at(spec, &key, e))?;
            *theme.slot(name.get_ref()).expect("checked above") = style.into();
        }
        Ok(theme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_parse() {
        let cases = [
            ("red", Style::new().fg(Color::Red)),
            (
                "bold light-blue",
                Style::new()
                    .fg(Color::LightBlue)
                    .add_modifier(Modifier::BOLD),
            ),
            ("208", Style::new().fg(Color::Indexed(208))),
            (
                "#ff8800 underlined",
                Style::new()
                    .fg(Color::Rgb(255, 136, 0))
                    .add_modifier(Modifier::UNDERLINED),
            ),
            ("default bold", Style::new().add_modifier(Modifier::BOLD)),
            ("", Style::new()),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_style(spec), Ok(want), "{spec}");
        }
        for bad in ["blink", "red blue", "#12345", "300"] {
            assert!(
                parse_style(bad).unwrap_err().contains(&format!("'{bad}'")),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_file_changes_its_base() {
        let text = "base = \"light\"\ntitle = \"bold red\"\n[states]\ntime-wait = \"208\"\n";
        let theme = Theme::parse(Path::new("t.toml"), text).unwrap();
        let light = BuiltinTheme::Light.theme();
        assert_eq!(
            theme.title(),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            theme.state(TcpState::TimeWait).fg,
            Some(Color::Indexed(208))
        );
        assert_eq!(theme.state(TcpState::Listen), light.state(TcpState::Listen));
        assert_eq!(theme.key(), light.key());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            ("base = \"dark\"\n", "t.toml:1: base: unknown theme 'dark'"),
            (
                "\ntitle = \"blinking\"\n",
                "t.toml:2: title: bad style 'blinking'",
            ),
            (
                "[states]\nlisten = \"red\"\nwaiting = \"red\"\n",
                "t.toml:3: states.waiting: unknown state",
            ),
            (
                "[states]\nlisten = \"rouge\"\n",
                "t.toml:2: states.listen: bad style 'rouge'",
            ),
            ("titel = \"red\"\n", "t.toml:1: titel: unknown field"),
            ("title = 3\n", "t.toml:1: title: invalid type"),
        ];
        for (text, want) in cases {
            let e = Theme::parse(Path::new("t.toml"), text)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}

//! Key chords written as strings (`"ctrl+c"`, `"pgdn"`, `"?"`): parsing, display, and
//! matching against terminal key events.

use std::fmt;
use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// A key with its modifiers. Shift is folded into the character (`G`, `?`), as terminals
/// report it both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chord {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

/// A binding string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad key binding '{0}'")]
pub struct BadChord(pub String);

impl Chord {
    fn new(code: KeyCode, mods: KeyModifiers) -> Chord {
        let mods = match code {
            KeyCode::Char(_) | KeyCode::BackTab => mods - KeyModifiers::SHIFT,
            _ => mods,
        };
        Chord { code, mods }
    }

    /// Whether the key types a character in the prompt (no ctrl or alt).
    pub fn is_typed(self) -> bool {
        matches!(self.code, KeyCode::Char(_))
            && !self
                .mods
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    }

    /// The chord of a key press; `None` for releases and repeats of non-press kinds.
    pub fn from_event(key: KeyEvent) -> Option<Chord> {
        (key.kind != KeyEventKind::Release).then(|| Chord::new(key.code, key.modifiers))
    }
}

const NAMED: &[(&str, KeyCode)] = &[
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("delete", KeyCode::Delete),
    ("space", KeyCode::Char(' ')),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pgup", KeyCode::PageUp),
    ("pgdn", KeyCode::PageDown),
];

impl FromStr for Chord {
    type Err = BadChord;

    /// `[ctrl+][alt+][shift+]KEY` where KEY is one character or a name (`enter`, `pgdn`, `f1`).
    fn from_str(s: &str) -> Result<Chord, BadChord> {
        let bad = || BadChord(s.to_string());
        let (prefix, key) = match s.strip_suffix('+') {
            Some(rest) if rest.is_empty() || rest.ends_with('+') => (rest, "+"),
            _ => s.rsplit_once('+').unwrap_or(("", s)),
        };
        let mut mods = KeyModifiers::NONE;
        for m in prefix.split('+').filter(|m| !m.is_empty()) {
            mods |= match m {
                "ctrl" => KeyModifiers::CONTROL,
                "alt" => KeyModifiers::ALT,
                "shift" => KeyModifiers::SHIFT,
                _ => return Err(bad()),
            };
        }
        let mut chars = key.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => {
                if let Some(&(_, code)) = NAMED.iter().find(|(n, _)| *n == key) {
                    code
                } else if let Some(n) = key.strip_prefix('f').and_then(|n| n.parse::<u8>().ok())
                    && (1..=12).contains(&n)
                {
                    KeyCode::F(n)
                } else {
                    return Err(bad());
                }
            }
        };
        Ok(Chord::new(code, mods))
    }
}

impl fmt::Display for Chord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (m, name) in [
            (KeyModifiers::CONTROL, "ctrl+"),
            (KeyModifiers::ALT, "alt+"),
            (KeyModifiers::SHIFT, "shift+"),
        ] {
            if self.mods.contains(m) {
                f.write_str(name)?;
            }
        }
        if let Some((name, _)) = NAMED.iter().find(|(_, c)| *c == self.code) {
            return f.write_str(name);
        }
        match self.code {
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keys::{NORMAL, PROMPT};

    #[test]
    fn binding_strings_parse() {
        let cases = [
            ("q", KeyCode::Char('q'), KeyModifiers::NONE),
            ("ctrl+c", KeyCode::Char('c'), KeyModifiers::CONTROL),
            (
                "ctrl+alt+x",
                KeyCode::Char('x'),
                KeyModifiers::CONTROL | KeyModifiers::ALT,
            ),
            ("shift+G", KeyCode::Char('G'), KeyModifiers::NONE),
            ("+", KeyCode::Char('+'), KeyModifiers::NONE),
            ("ctrl++", KeyCode::Char('+'), KeyModifiers::CONTROL),
            ("pgdn", KeyCode::PageDown, KeyModifiers::NONE),
            ("space", KeyCode::Char(' '), KeyModifiers::NONE),
            ("f12", KeyCode::F(12), KeyModifiers::NONE),
            ("shift+tab", KeyCode::Tab, KeyModifiers::SHIFT),
        ];
        for (s, code, mods) in cases {
            assert_eq!(s.parse::<Chord>(), Ok(Chord { code, mods }), "{s}");
        }
        for bad in ["", "ctrl+", "hyper+x", "f13", "f0", "pageup2", "ctrl+xx"] {
            assert_eq!(bad.parse::<Chord>(), Err(BadChord(bad.into())), "{bad}");
        }
    }

    #[test]
    fn display_round_trips() {
        for (s, _) in NORMAL.iter().chain(PROMPT) {
            let chord: Chord = s.parse().unwrap();
            assert_eq!(chord.to_string().parse::<Chord>().unwrap(), chord, "{s}");
        }
    }
}

//! Errors in a TOML file (the config file, a theme file) as one line naming the file, the
//! line and the key: `config.toml:3: interval: invalid duration 'x': ...`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A bad setting in a TOML file. Exit code 2, like every bad input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlError {
    pub path: PathBuf,
    /// 1-based; `None` when the file could not be read.
    pub line: Option<usize>,
    /// The dotted key (`keys.quit`), when the error is about one.
    pub key: Option<String>,
    pub message: String,
}

impl std::error::Error for TomlError {}

impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl TomlError {
    /// An error about the value (or key) at `span` of `text`.
    pub fn at(
        path: &Path,
        text: &str,
        span: Range<usize>,
        key: &str,
        message: impl fmt::Display,
    ) -> TomlError {
        TomlError {
            path: path.to_path_buf(),
            line: Some(line_of(text, span.start)),
            key: Some(key.to_string()),
            message: message.to_string(),
        }
    }

    /// The file could not be read.
    pub fn unreadable(path: &Path, e: &std::io::Error) -> TomlError {
        TomlError {
            path: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        }
    }

    /// A syntax or type error from the `toml` crate, in one line. The key is the one the
    /// parser was in; for an unknown key, that key itself.
    pub fn from_toml(path: &Path, text: &str, e: &toml::de::Error) -> TomlError {
        let line = e.span().map(|s| line_of(text, s.start));
        let mut bare = e.clone();
        bare.set_input(None);
        let rendered = bare.to_string();
        let mut key = rendered
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("in `")?.strip_suffix('`'))
            .map(str::to_string);
        let message = e.message().trim().replace('\n', " ");
        if let Some(unknown) = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        {
            key = Some(match key {
                Some(parent) => format!("{parent}.{unknown}"),
                None => unknown.to_string(),
            });
        }
        if key.is_none()
            && let Some(line) = line
        {
            key = key_on_line(text, line);
        }
        TomlError {
            path: path.to_path_buf(),
            line,
            key,
            message,
        }
    }
}

/// The 1-based line of byte `offset`.
#[expect(clippy::naive_bytecount, reason = "config files are small")]
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The key assigned on `line` (1-based), with its table: `keys.quit` for `quit = "x"`
/// under `[keys]`.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let this = lines.get(line.checked_sub(1)?)?;
    let (key, _) = this.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('#') || key.starts_with('[') {
        return None;
    }
    let table = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && !l.starts_with("[[")).then(|| l.trim_matches(['[', ']']).trim())
    });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_keys() {
        let text = "a = 1\n\n[keys]\nquit = \"x\"\n";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, text.find("quit").unwrap()), 4);
        assert_eq!(key_on_line(text, 4).as_deref(), Some("keys.quit"));
        assert_eq!(key_on_line(text, 1).as_deref(), Some("a"));
        assert_eq!(key_on_line(text, 2), None);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let text = "a = 1\nb = = 2\n";
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        let e = TomlError::from_toml(Path::new("c.toml"), text, &e);
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().starts_with("c.toml:2: "), "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}

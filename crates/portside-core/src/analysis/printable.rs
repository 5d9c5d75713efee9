//! Text from other processes and from the user, made safe to print on a terminal.
//!
//! Process names, command lines, user and service names come from other users: a process
//! may name itself `"\x1b]2;PWN\x07\x1b[2J"` to retitle and clear the terminal of whoever
//! lists it. Every text writer passes such strings through [`printable`], which shows
//! control characters as visible escapes instead of sending them. Bad input echoed in an
//! error message goes through [`quoted`]: escaped, and cut to a readable length.

use std::borrow::Cow;
use std::fmt::Write as _;

/// How many characters of a bad value an error message quotes.
pub const QUOTE_MAX: usize = 80;

/// Whether `c` must not reach a terminal raw: C0 and C1 controls, DEL, and the Unicode
/// bidirectional and zero-width formatting characters that reorder or hide text.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `s` with every unsafe character shown as an escape (`\x1b`, `\n`, `\u{202e}`); borrowed
/// when there is none (the common case costs one scan).
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 && is_unsafe(c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// `s` in single quotes for an error message: escaped, and at most [`QUOTE_MAX`]
/// characters of it, then `…` and how long it was.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(QUOTE_MAX * 2) + 2);
    out.push('\'');
    let mut chars = s.chars();
    for c in chars.by_ref().take(QUOTE_MAX) {
        push_escaped(&mut out, c);
    }
    out.push('\'');
    let rest = chars.count();
    if rest > 0 {
        let _ = write!(out, "… ({} characters)", QUOTE_MAX + rest);
    }
    out
}

/// One line of a message for a terminal: unsafe characters escaped, and every quoted part
/// (`'...'`) longer than [`QUOTE_MAX`] characters cut, as [`quoted`] does. For messages
/// rendered by code we do not own (clap's), which may quote the user's input whole.
pub fn message_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(1024));
    let mut rest = line;
    while let Some(open) = rest.find('\'') {
        out.push_str(&printable(&rest[..open]));
        let after = &rest[open + 1..];
        // A quoted part ends at a quote followed by a space, punctuation or the end.
        let close = after.match_indices('\'').map(|(i, _)| i).find(|&i| {
            after[i + 1..]
                .chars()
                .next()
                .is_none_or(|c| matches!(c, ' ' | ':' | ',' | ';' | ')' | '.'))
        });
        if let Some(close) = close {
            out.push_str(&quoted(&after[..close]));
            rest = &after[close + 1..];
        } else {
            out.push('\'');
            rest = after;
        }
    }
    out.push_str(&printable(rest));
    out
}

/// A CSV cell that spreadsheets will not run: escaped like [`printable`], and a cell that
/// starts like a formula (`=`, `+`, `-`, `@`) gets a leading `'`, as OWASP recommends.
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let text = printable(s);
    if text.starts_with(['=', '+', '-', '@']) {
        Cow::Owned(format!("'{text}"))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(printable("nginx"), "nginx");
        assert!(matches!(printable("nginx"), Cow::Borrowed(_)));
        assert_eq!(
            printable("\x1b]2;PWN\x07\x1b[2J"),
            "\\x1b]2;PWN\\x07\\x1b[2J"
        );
        assert_eq!(printable("a\nb\tc\rd\x7f"), "a\\nb\\tc\\rd\\x7f");
        // C1 CSI (U+009B) acts like ESC [ on many terminals; bidi override reorders text.
        assert_eq!(printable("x\u{9b}2J"), "x\\u{9b}2J");
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        // Other non-ASCII text is kept.
        assert_eq!(printable("café 日本"), "café 日本");
    }

    #[test]
    fn quotes_are_capped_and_escaped() {
        assert_eq!(quoted("abc"), "'abc'");
        assert_eq!(quoted("a\nb"), "'a\\nb'");
        let long = "x".repeat(100_000);
        let q = quoted(&long);
        assert!(
            q.starts_with(&format!("'{}'", "x".repeat(QUOTE_MAX))),
            "{q}"
        );
        assert!(q.ends_with("… (100000 characters)"), "{q}");
        assert!(q.chars().count() < QUOTE_MAX + 40);
    }

    #[test]
    fn message_lines_cut_long_quotes() {
        let long = "y".repeat(5000);
        let line = format!("invalid value '{long}' for '--interval <D>': bad '{long}'");
        let out = message_line(&line);
        assert!(out.len() < 400, "{out}");
        assert!(out.contains("for '--interval <D>': bad '"), "{out}");
        assert_eq!(out.matches("(5000 characters)").count(), 2, "{out}");
        assert_eq!(message_line("a\nb 'c\x1b'"), "a\\nb 'c\\x1b'");
        assert_eq!(message_line("it's"), "it's");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        for (cell, want) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "\\tx"),
            ("nginx", "nginx"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(cell), want, "{cell:?}");
        }
    }
}

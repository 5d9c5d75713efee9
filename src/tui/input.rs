//! A one-line text editor for the `/` prompt; the cursor counts characters, not bytes.

/// The text being typed and the cursor position in characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    text: String,
    cursor: usize,
}

impl LineInput {
    /// The longest text the prompt takes: far more than any filter anyone types, and a
    /// bound on what a runaway paste costs to parse and draw on every key.
    pub const MAX_CHARS: usize = 1024;

    /// Starts with `text` and the cursor at its end.
    pub fn new(text: &str) -> LineInput {
        LineInput {
            text: text.to_string(),
            cursor: text.chars().count(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Cursor position in characters from the start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(b, _)| b)
    }

    /// Inserts `c` at the cursor; `false` (and nothing inserted) at [`Self::MAX_CHARS`].
    pub fn insert(&mut self, c: char) -> bool {
        if self.text.chars().count() >= Self::MAX_CHARS {
            return false;
        }
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
        true
    }

    /// Inserts as much of `s` at the cursor as fits under [`Self::MAX_CHARS`]; returns how
    /// many characters went in.
    pub fn insert_str(&mut self, s: &str) -> usize {
        let room = Self::MAX_CHARS.saturating_sub(self.text.chars().count());
        let end = s.char_indices().nth(room).map_or(s.len(), |(b, _)| b);
        let taken = &s[..end];
        let at = self.byte_at(self.cursor);
        self.text.insert_str(at, taken);
        let n = taken.chars().count();
        self.cursor += n;
        n
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.text.chars().count() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.text.chars().count());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.text.chars().count();
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_at_the_cursor() {
        let mut input = LineInput::new("port:80");
        assert_eq!(input.cursor(), 7);
        input.insert('8');
        assert_eq!(input.text(), "port:808");
        input.home();
        input.insert('!');
        assert_eq!(input.text(), "!port:808");
        input.delete();
        assert_eq!(input.text(), "!ort:808");
        input.backspace();
        assert_eq!(input.text(), "ort:808");
        input.backspace();
        assert_eq!((input.text(), input.cursor()), ("ort:808", 0));
        input.end();
        input.left();
        input.backspace();
        assert_eq!(input.text(), "ort:88");
        input.right();
        input.right();
        input.delete();
        assert_eq!((input.text(), input.cursor()), ("ort:88", 6));
        input.clear();
        assert_eq!((input.text(), input.cursor()), ("", 0));
    }

    #[test]
    fn input_is_capped() {
        let mut input = LineInput::new("port:");
        let long = "8".repeat(5000);
        assert_eq!(input.insert_str(&long), LineInput::MAX_CHARS - 5);
        assert_eq!(input.text().chars().count(), LineInput::MAX_CHARS);
        assert_eq!(input.cursor(), LineInput::MAX_CHARS);
        assert!(!input.insert('9'));
        input.home();
        input.delete();
        assert!(input.insert('é'));
        assert_eq!(input.insert_str("ab"), 0);
        assert_eq!(input.cursor(), 1);
    }

    #[test]
    fn multibyte_characters_move_as_one() {
        let mut input = LineInput::new("é");
        input.insert('ü');
        assert_eq!(input.text(), "éü");
        input.left();
        input.backspace();
        assert_eq!((input.text(), input.cursor()), ("ü", 0));
    }
}

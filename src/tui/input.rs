//! A one-line text editor for the `/` prompt; the cursor counts characters, not bytes.

/// The text being typed and the cursor position in characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    text: String,
    cursor: usize,
}

impl LineInput {
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

    pub fn insert(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
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
    fn multibyte_characters_move_as_one() {
        let mut input = LineInput::new("é");
        input.insert('ü');
        assert_eq!(input.text(), "éü");
        input.left();
        input.backspace();
        assert_eq!((input.text(), input.cursor()), ("ü", 0));
    }
}

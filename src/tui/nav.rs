//! Selection and scroll position of one table. Rendering builds rows from `offset` only.

/// The selected row and the first visible row of a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Nav {
    pub selected: usize,
    pub offset: usize,
}

impl Nav {
    /// Moves the selection by `delta` rows, staying inside `len`.
    pub fn move_by(&mut self, delta: isize, len: usize, page: usize) {
        let target = self.selected.saturating_add_signed(delta);
        self.select(target, len, page);
    }

    /// Selects row `index` (clamped) and scrolls so it is visible.
    pub fn select(&mut self, index: usize, len: usize, page: usize) {
        self.selected = index;
        self.clamp(len, page);
    }

    /// Keeps the selection inside `len` and visible in a window of `page` rows, and the
    /// window as full as the rows allow (no empty space below the last row when scrolled).
    pub fn clamp(&mut self, len: usize, page: usize) {
        let page = page.max(1);
        self.selected = self.selected.min(len.saturating_sub(1));
        if self.selected < self.offset {
            self.offset = self.selected;
        }
        if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        self.offset = self.offset.min(len.saturating_sub(page));
    }

    /// The visible index range for a window of `page` rows.
    pub fn window(&self, len: usize, page: usize) -> std::ops::Range<usize> {
        let start = self.offset.min(len);
        start..(start + page).min(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_and_scrolls() {
        let mut nav = Nav::default();
        nav.move_by(1, 100, 10);
        assert_eq!(
            nav,
            Nav {
                selected: 1,
                offset: 0
            }
        );
        nav.move_by(10, 100, 10);
        assert_eq!(
            nav,
            Nav {
                selected: 11,
                offset: 2
            }
        );
        nav.move_by(-5, 100, 10);
        assert_eq!(
            nav,
            Nav {
                selected: 6,
                offset: 2
            }
        );
        nav.move_by(-100, 100, 10);
        assert_eq!(
            nav,
            Nav {
                selected: 0,
                offset: 0
            }
        );
        nav.move_by(1000, 100, 10);
        assert_eq!(
            nav,
            Nav {
                selected: 99,
                offset: 90
            }
        );
        assert_eq!(nav.window(100, 10), 90..100);
    }

    #[test]
    fn shrinking_lists_and_pages_clamp() {
        let mut nav = Nav {
            selected: 99,
            offset: 90,
        };
        nav.clamp(5, 10);
        assert_eq!(
            nav,
            Nav {
                selected: 4,
                offset: 0
            }
        );
        nav.clamp(0, 10);
        assert_eq!(
            nav,
            Nav {
                selected: 0,
                offset: 0
            }
        );
        assert_eq!(nav.window(0, 10), 0..0);
        let mut nav = Nav {
            selected: 50,
            offset: 45,
        };
        nav.clamp(100, 3);
        assert_eq!(
            nav,
            Nav {
                selected: 50,
                offset: 48
            }
        );
        nav.clamp(100, 0);
        assert_eq!(
            nav,
            Nav {
                selected: 50,
                offset: 50
            }
        );
    }
}

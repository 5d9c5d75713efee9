//! Screen regions, computed the same way for drawing and for mouse clicks.

use ratatui::layout::Rect;

/// The smallest screen the UI draws on; below it, "terminal too small".
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regions {
    /// Host line, state counts, then the status lines (sample error, not-root note, alert).
    pub header: Rect,
    /// The table's title: view name, counts, sort.
    pub title: Rect,
    /// Column labels.
    pub columns: Rect,
    /// Table rows: exactly one screen line per row.
    pub rows: Rect,
    /// Key hints and the filter, or the `/` prompt (with its error, up to two lines, above).
    pub footer: Rect,
}

impl Regions {
    /// Title, column labels and rows together: where a panel draws.
    pub fn body(&self) -> Rect {
        Rect {
            height: self.footer.y - self.title.y,
            ..self.title
        }
    }
}

/// Header lines before the status lines.
const HEADER_BASE: u16 = 2;
/// Status lines shown at most.
pub const MAX_STATUS: u16 = 3;

/// Splits `area` for up to three status lines and a footer of one to three lines; `None`
/// when it is smaller than 80x24.
pub fn regions(area: Rect, status_lines: u16, footer_lines: u16) -> Option<Regions> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let header_h = HEADER_BASE + status_lines.min(MAX_STATUS);
    let footer_h = footer_lines.clamp(1, 3);
    let line = |y: u16, height: u16| Rect::new(area.x, y, area.width, height);
    let body_y = area.y + header_h;
    let footer_y = area.bottom() - footer_h;
    Some(Regions {
        header: line(area.y, header_h),
        title: line(body_y, 1),
        columns: line(body_y + 1, 1),
        rows: line(body_y + 2, footer_y - (body_y + 2)),
        footer: line(footer_y, footer_h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_minimum_screen() {
        let r = regions(Rect::new(0, 0, 80, 24), 2, 2).unwrap();
        assert_eq!(r.header, Rect::new(0, 0, 80, 4));
        assert_eq!(r.title.y, 4);
        assert_eq!(r.columns.y, 5);
        assert_eq!(r.rows, Rect::new(0, 6, 80, 16));
        assert_eq!(r.footer, Rect::new(0, 22, 80, 2));
        assert_eq!(r.body(), Rect::new(0, 4, 80, 18));
        let r = regions(Rect::new(0, 0, 120, 40), 0, 1).unwrap();
        assert_eq!(r.rows, Rect::new(0, 4, 120, 35));
        let r = regions(Rect::new(0, 0, 80, 24), 9, 3).unwrap();
        assert_eq!(r.header.height, 5, "three status lines at most");
        assert_eq!(r.rows.height, 14);
    }

    #[test]
    fn too_small_is_none() {
        for (w, h) in [(79, 24), (80, 23), (1, 1), (0, 0)] {
            assert_eq!(regions(Rect::new(0, 0, w, h), 0, 1), None);
        }
    }
}

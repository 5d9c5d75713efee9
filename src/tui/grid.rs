//! A minimal table drawer shared by the three views: columns laid out once per frame, then
//! each visible row written straight into the buffer. Only the rows on screen are ever
//! formatted, whatever the length of the list.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::tui::theme::Theme;

/// How a cell's text sits in its column, and which end is cut when it does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
    /// Left-aligned, but cut at the start: an address keeps its port.
    LeftKeepEnd,
}

/// A column: label, width and alignment; `sorted` is `Some(descending)` on the sort column.
#[derive(Debug, Clone)]
pub struct Column {
    pub label: &'static str,
    pub width: Constraint,
    pub align: Align,
    pub style: Style,
    pub sorted: Option<bool>,
}

impl Column {
    pub fn new(label: &'static str, width: Constraint, align: Align) -> Column {
        Column {
            label,
            width,
            align,
            style: Style::new(),
            sorted: None,
        }
    }

    pub fn style(mut self, style: Style) -> Column {
        self.style = style;
        self
    }
}

/// One cell's text and style.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub text: String,
    pub style: Style,
}

impl Cell {
    pub fn new(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            text: text.into(),
            style,
        }
    }
}

/// Column positions for a table `width` wide, one space between columns.
pub fn layout(columns: &[Column], width: u16) -> Vec<Rect> {
    let area = Rect::new(0, 0, width, 1);
    Layout::horizontal(columns.iter().map(|c| c.width))
        .spacing(1)
        .split(area)
        .to_vec()
}

/// Writes the column labels on `area`'s line, with ▲/▼ on the sort column.
pub fn draw_header(buf: &mut Buffer, area: Rect, columns: &[Column], xs: &[Rect], theme: Theme) {
    buf.set_style(area, theme.column_header());
    for (col, x) in columns.iter().zip(xs) {
        let label = match col.sorted {
            Some(true) => format!("{}▼", col.label),
            Some(false) => format!("{}▲", col.label),
            None => col.label.to_string(),
        };
        let style = theme.column_header().patch(col.style);
        put(buf, area.x + x.x, area.y, x.width, &label, col.align, style);
    }
}

/// Writes one row on `area`'s line; the selected row is highlighted across the width.
pub fn draw_row(
    buf: &mut Buffer,
    area: Rect,
    columns: &[Column],
    xs: &[Rect],
    cells: &[Cell],
    selected: bool,
    theme: Theme,
) {
    for ((col, x), cell) in columns.iter().zip(xs).zip(cells) {
        put(
            buf,
            area.x + x.x,
            area.y,
            x.width,
            &cell.text,
            col.align,
            cell.style,
        );
    }
    if selected {
        buf.set_style(area, theme.selected());
    }
}

/// Writes `text` in a `width`-wide slot, aligned and cut with `…` when too long.
fn put(buf: &mut Buffer, x: u16, y: u16, width: u16, text: &str, align: Align, style: Style) {
    if width == 0 {
        return;
    }
    let w = usize::from(width);
    let len = Span::raw(text).width();
    let fitted;
    let shown = if len <= w {
        text
    } else {
        fitted = cut(text, w, align == Align::LeftKeepEnd);
        &fitted
    };
    let shown_w = Span::raw(shown).width().min(w) as u16;
    let x = match align {
        Align::Right => x + (width - shown_w),
        Align::Left | Align::LeftKeepEnd => x,
    };
    buf.set_stringn(x, y, shown, w, style);
}

/// Cuts `text` to `w` columns with an ellipsis at the end, or at the start.
fn cut(text: &str, w: usize, keep_end: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let keep = w.saturating_sub(1).min(chars.len());
    let mut out = String::with_capacity(w * 2);
    if keep_end {
        out.push('…');
        out.extend(&chars[chars.len() - keep..]);
    } else {
        out.extend(&chars[..keep]);
        out.push('…');
    }
    out
}

/// A dim message in the middle of an empty table.
pub fn draw_empty(buf: &mut Buffer, rows: Rect, message: &str, theme: Theme) {
    if rows.height == 0 {
        return;
    }
    let line = Line::styled(message, theme.dim()).centered();
    buf.set_line(rows.x, rows.y + rows.height / 3, &line, rows.width);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_align_and_cut() {
        let cols = [
            Column::new("A", Constraint::Length(4), Align::Left),
            Column::new("N", Constraint::Length(5), Align::Right),
            Column::new("ADDR", Constraint::Length(6), Align::LeftKeepEnd),
        ];
        let xs = layout(&cols, 20);
        let mut buf = Buffer::empty(Rect::new(0, 0, 20, 2));
        let theme = Theme::new(false);
        draw_header(&mut buf, Rect::new(0, 0, 20, 1), &cols, &xs, theme);
        let cells = [
            Cell::new("abcdef", Style::new()),
            Cell::new("42", Style::new()),
            Cell::new("10.0.0.1:443", Style::new()),
        ];
        draw_row(
            &mut buf,
            Rect::new(0, 1, 20, 1),
            &cols,
            &xs,
            &cells,
            false,
            theme,
        );
        let line: String = (0..20).map(|x| buf[(x, 1)].symbol().to_string()).collect();
        assert_eq!(line, "abc…    42 …1:443   ");
        let header: String = (0..20).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert_eq!(header, "A        N ADDR     ");
    }

    #[test]
    fn zero_width_columns_are_skipped() {
        let cols = [Column::new("A", Constraint::Length(3), Align::Right)];
        let mut buf = Buffer::empty(Rect::new(0, 0, 1, 1));
        draw_row(
            &mut buf,
            Rect::new(0, 0, 1, 1),
            &cols,
            &[Rect::new(0, 0, 0, 1)],
            &[Cell::new("x", Style::new())],
            true,
            Theme::new(true),
        );
        assert_eq!(buf[(0, 0)].symbol(), " ");
    }
}

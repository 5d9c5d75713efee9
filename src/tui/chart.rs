//! Text charts that fit in a cell: one-line sparklines, fill bars, trend deltas, and the
//! series bucketing behind the panels' multi-line sparklines.

use ratatui::style::Style;

use crate::tui::format;
use crate::tui::theme::Theme;

/// Bar heights in eighths; a zero value is blank.
const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Partial cells of a fill bar, in eighths.
const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/// The last `width` values as a sparkline exactly `width` wide, the newest on the right
/// (blank on the left while the history is shorter). Scaled between the smallest and the
/// largest value shown, over at least half the largest, so noise on a large count stays
/// flat; a flat series is a flat low line. Zero is blank, any other value shows.
pub fn spark(values: impl DoubleEndedIterator<Item = u32>, width: usize) -> String {
    let recent = last(values, width);
    let max = recent.iter().copied().max().map_or(0, u64::from);
    let min = recent.iter().copied().min().map_or(0, u64::from);
    let range = (max - min).max(max / 2).max(1);
    let low = max.saturating_sub(range);
    draw(&recent, width, |v| {
        if min == max {
            1
        } else {
            1 + (v - low.min(v)) * 7 / range
        }
    })
}

/// [`spark`] on a fixed scale from 0 to `max` (an accept queue against its backlog).
pub fn spark_to(values: impl DoubleEndedIterator<Item = u32>, width: usize, max: u32) -> String {
    let recent = last(values, width);
    let max = u64::from(max.max(1));
    draw(&recent, width, |v| (v * 8).div_ceil(max))
}

/// The last `width` values, oldest first.
fn last(values: impl DoubleEndedIterator<Item = u32>, width: usize) -> Vec<u32> {
    let mut recent: Vec<u32> = values.rev().take(width).collect();
    recent.reverse();
    recent
}

/// Pads to `width` on the left, then one bar per value at `level(value)` eighths (zero
/// values blank, levels clamped to 1..=8).
fn draw(values: &[u32], width: usize, level: impl Fn(u64) -> u64) -> String {
    let mut out = String::with_capacity(width * 3);
    out.extend(std::iter::repeat_n(' ', width - values.len()));
    for &v in values {
        let l = if v == 0 {
            0
        } else {
            level(u64::from(v)).clamp(1, 8)
        };
        out.push(LEVELS[usize::try_from(l).unwrap_or(8)]);
    }
    out
}

/// A bar `width` cells wide filled to `fraction` (clamped to 0..=1), in eighths of a cell;
/// the empty part is `░` so the bar reads without color.
pub fn bar(fraction: f64, width: usize) -> String {
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    let eighths = (fraction * (width * 8) as f64).round() as usize;
    let (full, part) = (eighths / 8, eighths % 8);
    let mut out = String::with_capacity(width * 3);
    out.extend(std::iter::repeat_n('█', full));
    if full < width {
        if part > 0 {
            out.push(PARTS[part]);
        } else {
            out.push('░');
        }
        out.extend(std::iter::repeat_n('░', width - full - 1));
    }
    out
}

/// How full something is: fine, getting there, or about to run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Critical,
}

impl Level {
    /// The level of `percent` against a warning and a critical threshold.
    pub fn of(percent: f64, warn: f64, critical: f64) -> Level {
        if percent >= critical {
            Level::Critical
        } else if percent >= warn {
            Level::Warn
        } else {
            Level::Ok
        }
    }

    pub fn style(self, theme: Theme) -> Style {
        match self {
            Level::Ok => theme.good(),
            Level::Warn => theme.warning(),
            Level::Critical => theme.error(),
        }
    }
}

/// A change as `▲12`, `▼3k`, or `·` for none; at most 5 wide.
pub fn delta(d: i64) -> String {
    let n = u32::try_from(d.unsigned_abs()).unwrap_or(u32::MAX);
    match d.signum() {
        1 => format!("▲{}", format::count(n)),
        -1 => format!("▼{}", format::count(n)),
        _ => "·".to_string(),
    }
}

/// The style of a change: growth stands out, no change is dim.
pub fn delta_style(d: i64, theme: Theme) -> Style {
    match d.signum() {
        1 => theme.bold(),
        -1 => Style::new(),
        _ => theme.dim(),
    }
}

/// `values` squeezed into at most `width` bars, newest last: each bar is the largest value
/// of its bucket, so a short spike stays visible however long the series.
pub fn buckets<I>(values: I, width: usize) -> Vec<u64>
where
    I: Iterator<Item = u32> + ExactSizeIterator,
{
    let len = values.len();
    if width == 0 || len == 0 {
        return Vec::new();
    }
    let per = len.div_ceil(width);
    // Buckets are aligned on the newest value: the oldest bucket may be partial.
    let skew = (per - len % per) % per;
    let mut out = Vec::with_capacity(len.div_ceil(per));
    for (i, v) in values.enumerate() {
        let v = u64::from(v);
        if (i + skew).is_multiple_of(per) || out.is_empty() {
            out.push(v);
        } else if let Some(last) = out.last_mut() {
            *last = (*last).max(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparks_scale_between_the_extremes_and_pad_on_the_left() {
        assert_eq!(spark([0, 1, 4, 8].into_iter(), 4), " ▁▄█");
        assert_eq!(spark([8, 8].into_iter(), 4), "  ▁▁", "flat is low");
        assert_eq!(spark([0, 0].into_iter(), 3), "   ");
        // Only the last `width` values count; the smallest is the floor.
        assert_eq!(spark([1000, 1, 100].into_iter(), 2), "▁█");
        assert_eq!(
            spark([900, 1000].into_iter(), 2),
            "▆█",
            "a range of at least max/2"
        );
        assert_eq!(spark(std::iter::empty(), 0), "");
        assert_eq!(spark([u32::MAX, 1].into_iter(), 2), "█▁");
    }

    #[test]
    fn fixed_scale_sparks() {
        assert_eq!(spark_to([0, 1, 64, 128].into_iter(), 4, 128), " ▁▄█");
        assert_eq!(spark_to([3, 3].into_iter(), 2, 4096), "▁▁");
        assert_eq!(
            spark_to([9].into_iter(), 1, 0),
            "█",
            "past the scale is full"
        );
    }

    #[test]
    fn bars_fill_in_eighths() {
        assert_eq!(bar(0.0, 4), "░░░░");
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██░░");
        assert_eq!(bar(0.8125, 4), "███▎");
        assert_eq!(bar(7.0, 3), "███");
        assert_eq!(bar(-1.0, 3), "░░░");
        assert_eq!(bar(f64::NAN, 2), "░░");
        assert_eq!(bar(0.5, 0), "");
        for i in 0..=100 {
            assert_eq!(bar(f64::from(i) / 100.0, 7).chars().count(), 7);
        }
    }

    #[test]
    fn levels_and_deltas() {
        assert_eq!(Level::of(49.9, 50.0, 80.0), Level::Ok);
        assert_eq!(Level::of(50.0, 50.0, 80.0), Level::Warn);
        assert_eq!(Level::of(81.0, 50.0, 80.0), Level::Critical);
        assert_eq!(delta(12), "▲12");
        assert_eq!(delta(-12_345), "▼12.3k");
        assert_eq!(delta(0), "·");
        assert!(delta(i64::MIN).chars().count() <= 6);
    }

    #[test]
    fn buckets_keep_peaks_and_align_on_the_newest() {
        assert_eq!(buckets([1, 2, 3].into_iter(), 5), vec![1, 2, 3]);
        assert_eq!(buckets([1, 9, 3, 4].into_iter(), 2), vec![9, 4]);
        // 5 values in 2 bars of 3: the oldest bar holds only the first 2 values.
        assert_eq!(buckets([7, 1, 2, 3, 4].into_iter(), 2), vec![7, 4]);
        assert!(buckets([1, 2].into_iter(), 0).is_empty());
        assert_eq!(buckets(0..667u32, 80).len(), 75);
    }
}

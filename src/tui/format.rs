//! Text for cells: compact counts, durations, usage; endpoints and owners come from the
//! shared [`vocabulary`](crate::vocabulary).
//! Called only for visible rows, so allocating a short `String` per cell is fine.

use std::time::Duration;

use crate::model::{Process, Snapshot};

/// A count that stays readable in 5 columns: `999`, `9999`, `12.3k`, `123k`, `1.2M`.
pub fn count(n: u32) -> String {
    let n = u64::from(n);
    match n {
        0..=9_999 => n.to_string(),
        10_000..=99_999 => format!("{}.{}k", n / 1000, n % 1000 / 100),
        100_000..=999_999 => format!("{}k", n / 1000),
        1_000_000..=9_999_999 => format!("{}.{}M", n / 1_000_000, n % 1_000_000 / 100_000),
        _ => format!("{}M", n / 1_000_000),
    }
}

pub use crate::analysis::text::thousands;

/// A rate per second in at most 5 columns: `0`, `0.4`, `12.5`, `340`, `12.3k`.
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0".to_string();
    }
    if per_sec < 100.0 {
        let s = format!("{per_sec:.1}");
        return s.strip_suffix(".0").map_or(s.clone(), str::to_string);
    }
    if per_sec < 10_000.0 {
        return format!("{per_sec:.0}");
    }
    count(per_sec.min(f64::from(u32::MAX)) as u32)
}

/// A count of bytes or sockets as a plain number, grouped for readability past 9999.
pub fn usize_count(n: usize) -> String {
    count(u32::try_from(n).unwrap_or(u32::MAX))
}

/// `one` for 1, `many` otherwise.
pub fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// `850ms`, `12s`, `3m05s`, `2h04m`, `3d07h`: two units at most.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// An address as `ss` prints it: the vocabulary's endpoint.
pub use crate::vocabulary::endpoint as addr;

/// CPU and memory summed over the processes at `indexes`: `cpu 12.5% · rss 45.2M`; CPU is
/// left out until a second sample gives a delta. `None` when nothing was measured.
pub fn usage(snapshot: &Snapshot, indexes: &[u32]) -> Option<String> {
    let (mut cpu, mut rss) = (None::<f32>, None::<u64>);
    for &i in indexes {
        let u = snapshot.usage_of(i as usize);
        if let Some(c) = u.cpu_percent {
            cpu = Some(cpu.unwrap_or(0.0) + c);
        }
        if let Some(r) = u.rss_bytes {
            rss = Some(rss.unwrap_or(0) + r);
        }
    }
    let rss = rss.map(|r| format!("rss {}", bytes(r)));
    match (cpu, rss) {
        (Some(c), Some(r)) => Some(format!("cpu {c:.1}% · {r}")),
        (Some(c), None) => Some(format!("cpu {c:.1}%")),
        (None, r) => r,
    }
}

/// Bytes with a binary unit: `512B`, `45.2M`, `1.5G`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

/// The processes of a list of indexes into `snapshot.processes`.
pub fn processes<'a>(
    snapshot: &'a Snapshot,
    indexes: &'a [u32],
) -> impl Iterator<Item = &'a Process> {
    indexes
        .iter()
        .filter_map(|&i| snapshot.processes.get(i as usize).map(|p| &**p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_usage() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(45 * 1024 * 1024 + 200 * 1024), "45.2M");
        assert_eq!(bytes(3 << 30), "3.0G");
        let mut snap = Snapshot::empty();
        assert_eq!(usage(&snap, &[0]), None);
        snap.usage = vec![
            crate::model::ProcessUsage {
                cpu_percent: Some(2.5),
                rss_bytes: Some(10 << 20),
            },
            crate::model::ProcessUsage {
                cpu_percent: Some(1.0),
                rss_bytes: Some(5 << 20),
            },
        ];
        assert_eq!(
            usage(&snap, &[0, 1]).as_deref(),
            Some("cpu 3.5% · rss 15.0M")
        );
        snap.usage[0].cpu_percent = None;
        snap.usage[1].cpu_percent = None;
        assert_eq!(usage(&snap, &[0, 1]).as_deref(), Some("rss 15.0M"));
    }

    #[test]
    fn counts_stay_short() {
        let cases = [
            (0, "0"),
            (9_999, "9999"),
            (12_345, "12.3k"),
            (99_999, "99.9k"),
            (123_456, "123k"),
            (1_234_567, "1.2M"),
            (u32::MAX, "4294M"),
        ];
        for (n, want) in cases {
            assert_eq!(count(n), want, "{n}");
            assert!(count(n).len() <= 5);
        }
        assert_eq!(usize_count(usize::MAX), "4294M");
    }

    #[test]
    fn thousands_and_rates() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(23_004), "23,004");
        assert_eq!(thousands(1_234_567), "1,234,567");
        let cases = [
            (0.0, "0"),
            (-3.0, "0"),
            (f64::NAN, "0"),
            (0.04, "0"),
            (0.44, "0.4"),
            (2.0, "2"),
            (12.46, "12.5"),
            (340.2, "340"),
            (12_345.0, "12.3k"),
            (f64::INFINITY, "0"),
            (1e12, "4294M"),
        ];
        for (r, want) in cases {
            assert_eq!(rate(r), want, "{r}");
        }
    }

    #[test]
    fn durations_use_two_units() {
        let cases = [
            (Duration::from_millis(850), "850ms"),
            (Duration::from_secs(12), "12s"),
            (Duration::from_secs(185), "3m05s"),
            (Duration::from_secs(7440), "2h04m"),
            (Duration::from_secs(3 * 86_400 + 7 * 3600), "3d07h"),
        ];
        for (d, want) in cases {
            assert_eq!(duration(d), want);
        }
    }

    #[test]
    fn addresses_like_ss() {
        let cases = [
            ("127.0.0.1:80", "127.0.0.1:80"),
            ("0.0.0.0:0", "0.0.0.0:*"),
            ("[::1]:443", "[::1]:443"),
            ("[::]:0", "[::]:*"),
            ("[::ffff:127.0.0.1]:22", "[::ffff:127.0.0.1]:22"),
        ];
        for (a, want) in cases {
            assert_eq!(addr(a.parse().unwrap()), want);
        }
    }
}

//! TIME as `replay` accepts it: RFC 3339 (`2026-11-30T03:12:00Z`, `...+02:00`), a local
//! clock time (`03:12`, `03:12:30`: the last such moment at or before the recording's
//! end), or an offset back from the end (`-10m`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Resolves `text` to Unix milliseconds; `end_ms` is the recording's last tick. The error
/// names the bad part.
pub fn resolve(text: &str, end_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    let bad = |why: &str| format!("invalid time '{text}': {why}");
    if let Some(back) = t.strip_prefix('-') {
        let d = humantime::parse_duration(back.trim())
            .map_err(|_| bad("an offset from the end is e.g. -10m, -1h30m, -45s"))?;
        let ms = i64::try_from(d.as_millis()).map_err(|_| bad("offset too large"))?;
        return Ok(end_ms.saturating_sub(ms));
    }
    if t.contains('T') || t.contains(' ') && t.contains('-') {
        return rfc3339(t).ok_or_else(|| {
            bad("expected RFC 3339, e.g. 2026-11-30T03:12:00Z or 2026-11-30T03:12:00+02:00")
        });
    }
    if t.contains(':') {
        return clock(t, end_ms)
            .ok_or_else(|| bad("expected a clock time HH:MM or HH:MM:SS (local time)"));
    }
    Err(bad(
        "expected RFC 3339 (2026-11-30T03:12:00Z), a local clock time (03:12) or an offset from the end (-10m)",
    ))
}

fn to_ms(t: SystemTime) -> Option<i64> {
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// RFC 3339 with `Z` or a numeric offset.
fn rfc3339(t: &str) -> Option<i64> {
    let t = t.replace(' ', "T");
    if t.ends_with(['Z', 'z']) {
        return to_ms(humantime::parse_rfc3339_weak(&t[..t.len() - 1]).ok()?);
    }
    // `+HH:MM` / `-HH:MM` after the time part.
    let split = t.len().checked_sub(6)?;
    let (base, offset) = t.split_at(split);
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset[1..].split_once(':')?;
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    let utc = to_ms(humantime::parse_rfc3339_weak(base).ok()?)?;
    Some(utc - sign * (hours * 3600 + minutes * 60) * 1000)
}

/// `HH:MM[:SS]` in the local time zone: the last such moment at or before `end_ms`.
fn clock(t: &str, end_ms: i64) -> Option<i64> {
    let mut parts = t.split(':');
    let h: i32 = parts.next()?.parse().ok()?;
    let m: i32 = parts.next()?.parse().ok()?;
    let s: i32 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
    if parts.next().is_some()
        || !(0..24).contains(&h)
        || !(0..60).contains(&m)
        || !(0..60).contains(&s)
    {
        return None;
    }
    let end_secs = end_ms.div_euclid(1000);
    // The same clock time on the end's local day, then the day before if that is later.
    for day_back in 0..2 {
        let at = local_on_day_of(end_secs - day_back * 86_400, h, m, s)?;
        if at <= end_secs {
            return Some(at * 1000);
        }
    }
    None
}

/// The Unix time of `h:m:s` local time on the local day holding `unix_s`.
fn local_on_day_of(unix_s: i64, h: i32, m: i32, s: i32) -> Option<i64> {
    let t: libc::time_t = unix_s;
    // SAFETY: `tm` is plain data; localtime_r fills it from `t` or returns null.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&raw const t, &raw mut tm) }.is_null() {
        return None;
    }
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    // SAFETY: `tm` is a valid, initialised struct tm.
    let out = unsafe { libc::mktime(&raw mut tm) };
    (out != -1).then_some(out)
}

/// A duration as the recorder's bounds take it (`7d`, `12h`).
pub fn parse_retention(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "invalid retention '{s}': expected a duration above 0, e.g. 30m, 12h, 7d"
        )),
    }
}

/// A size: `500M`, `2G`, `100MB`, `1GiB`, bytes when bare.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("invalid size '{s}': expected e.g. 100M, 2G, 512K (at least 64K)");
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let number: f64 = t[..digits].parse().map_err(|_| bad())?;
    let unit = match t[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = number * unit as f64;
    if !(65_536.0..=1.0e18).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const END: i64 = 1_764_470_000_000; // 2025-11-30T02:33:20Z

    #[test]
    fn offsets_count_back_from_the_end() {
        assert_eq!(resolve("-10m", END), Ok(END - 600_000));
        assert_eq!(resolve("-1h30m", END), Ok(END - 5_400_000));
        assert!(
            resolve("-tenminutes", END)
                .unwrap_err()
                .contains("'-tenminutes'")
        );
    }

    #[test]
    fn rfc3339_with_zone_or_offset() {
        assert_eq!(resolve("2025-11-30T02:33:20Z", END), Ok(END));
        assert_eq!(resolve("2025-11-30T03:33:20+01:00", END), Ok(END));
        assert_eq!(resolve("2025-11-30T01:33:20-01:00", END), Ok(END));
        assert_eq!(resolve("2025-11-30T02:33:20.5Z", END), Ok(END + 500));
        assert!(resolve("2025-13-30T02:33:20Z", END).is_err());
        assert!(resolve("2025-11-30T02:33:20+25:00", END).is_err());
    }

    #[test]
    fn clock_times_are_the_last_such_moment() {
        let at = resolve("00:00", END).unwrap();
        assert!(at <= END && END - at < 86_400_000, "{at}");
        let at = resolve("23:59:59", END).unwrap();
        assert!(at <= END && END - at < 86_400_000, "{at}");
        for bad in ["24:00", "03:60", "3:1:2:4", "ab:cd"] {
            assert!(resolve(bad, END).unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn garbage_names_itself() {
        let e = resolve("yesterday", END).unwrap_err();
        assert!(e.contains("'yesterday'"), "{e}");
    }

    #[test]
    fn sizes_and_retention() {
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        for bad in ["", "10", "12X", "-1M", "M"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_retention("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_retention("0s").is_err());
        assert!(parse_retention("soon").unwrap_err().contains("'soon'"));
    }
}

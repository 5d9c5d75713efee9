//! `--interval` durations and port values (numbers, ranges, service names) on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portside::cli::{INTERVAL_MAX, INTERVAL_MIN, parse_interval};
use portside_core::analysis::filter::Filter;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse_interval(text) {
        assert!(
            d.is_zero() || (INTERVAL_MIN..=INTERVAL_MAX).contains(&d),
            "{text:?} -> {d:?}"
        );
    } else if let Err(e) = parse_interval(text) {
        assert!(!e.contains('\n') && e.chars().count() < 300, "{e:?}");
    }
    for term in ["port", "lport", "rport"] {
        let _ = Filter::parse_system(&format!("{term}:{text}"));
    }
});

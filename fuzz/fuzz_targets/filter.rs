//! The filter language: any text parses or fails cleanly, and a parsed filter printed back
//! parses to the same filter (the live view shows and re-reads it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portside_core::analysis::filter::Filter;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filter) = Filter::parse(text) {
        let shown = filter.to_string();
        let again = Filter::parse(&shown)
            .unwrap_or_else(|e| panic!("{text:?} printed as {shown:?}, which fails: {e}"));
        assert_eq!(again.to_string(), shown, "round trip of {text:?}");
    }
});

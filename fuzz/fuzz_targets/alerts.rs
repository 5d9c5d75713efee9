//! Alert rules (`--alert`): any text parses or fails cleanly; a parsed rule prints back to
//! a rule that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portside_core::analysis::alerts::{Alert, configure};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(alert) = Alert::parse(text) {
        let shown = alert.to_string();
        let again = Alert::parse(&shown)
            .unwrap_or_else(|e| panic!("{text:?} printed as {shown:?}, which fails: {e}"));
        assert_eq!(again.to_string(), shown);
    }
    let _ = configure(&text.split('\n').collect::<Vec<_>>());
});

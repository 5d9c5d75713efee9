//! `/etc/services` parsing on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portside_core::source::services::parse_services;

fuzz_target!(|data: &[u8]| {
    for name in parse_services(data).values() {
        assert!(!name.is_empty() && !name.contains(char::is_whitespace));
    }
});

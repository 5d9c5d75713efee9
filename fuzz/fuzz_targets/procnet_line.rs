//! The `/proc/net/{tcp,udp}{,6}` line parser on arbitrary text, as each table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portside_core::model::{Family, Proto};
use portside_core::source::procnet::parse_line;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        for proto in [Proto::Tcp, Proto::Udp] {
            for family in [Family::V4, Family::V6] {
                let _ = parse_line(line, proto, family);
            }
        }
    }
});

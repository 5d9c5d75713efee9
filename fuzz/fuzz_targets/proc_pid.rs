//! The `/proc/<pid>` parsers on arbitrary bytes: `stat`, `status`, `cmdline`, fd links.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portside_core::source::owners::parse_socket_link;
use portside_core::source::process::{parse_cmdline, parse_real_uid, parse_stat};

fuzz_target!(|data: &[u8]| {
    if let Some(stat) = parse_stat(data) {
        // `comm` lies between the first '(' and the last ')'.
        assert!(stat.comm.len() < data.len());
    }
    let _ = parse_real_uid(data);
    let _ = parse_cmdline(data);
    if let Some(inode) = parse_socket_link(data) {
        assert!(format!("socket:[{inode}]").len() <= data.len());
    }
});

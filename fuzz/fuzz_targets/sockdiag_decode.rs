//! The sock_diag decoder on arbitrary bytes, cut into datagrams at arbitrary points (a
//! message split across two datagrams must be an error, never a panic or a wrong socket).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portside_core::model::Proto;
use portside_core::source::sockdiag::decode_messages;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let proto = if control & 1 == 0 {
        Proto::Tcp
    } else {
        Proto::Udp
    };
    // Up to three cut points from the next bytes, as the dump loop receives datagrams.
    let cuts = usize::from(control >> 1) % 4;
    let (cut_bytes, mut body) = rest.split_at(cuts.min(rest.len()));
    let mut out = Vec::new();
    for &c in cut_bytes {
        let at = usize::from(c).min(body.len());
        let (datagram, next) = body.split_at(at);
        match decode_messages(datagram, proto, &mut out) {
            Ok(true) | Err(_) => return,
            Ok(false) => body = next,
        }
    }
    let _ = decode_messages(body, proto, &mut out);
});

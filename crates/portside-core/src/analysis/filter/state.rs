//! TCP state names, aliases and `ss` groups of the filter language, as bit masks.

use std::fmt;

use crate::model::TcpState;

/// Bit of `state` in a [`StateMask`].
const fn bit(state: TcpState) -> u16 {
    1 << (state as u16 - 1)
}

/// A set of states as bits indexed by [`TcpState::index`]; 13 states fit in a `u16`.
pub(super) type StateMask = u16;

const SYN_RECV: StateMask = bit(TcpState::SynRecv) | bit(TcpState::NewSynRecv);
const ALL: StateMask = (1 << TcpState::COUNT) - 1;
/// `ss`'s groups (ss.c `SS_CONN`): connected excludes listen, close, time-wait, syn-recv.
const CONNECTED: StateMask =
    ALL & !(bit(TcpState::Listen) | bit(TcpState::Close) | bit(TcpState::TimeWait) | SYN_RECV);
const BUCKET: StateMask = bit(TcpState::TimeWait) | SYN_RECV;

/// State names and aliases, compacted (lower case, no '-' or '_'), with their masks.
/// Request sockets (`NEW_SYN_RECV`) go with `syn-recv`, as the kernel reports them.
const STATES: &[(&str, StateMask)] = &[
    ("established", bit(TcpState::Established)),
    ("estab", bit(TcpState::Established)),
    ("est", bit(TcpState::Established)),
    ("synsent", bit(TcpState::SynSent)),
    ("syns", bit(TcpState::SynSent)),
    ("synrecv", SYN_RECV),
    ("synrcvd", SYN_RECV),
    ("synr", SYN_RECV),
    ("finwait1", bit(TcpState::FinWait1)),
    ("finw1", bit(TcpState::FinWait1)),
    ("fw1", bit(TcpState::FinWait1)),
    ("finwait2", bit(TcpState::FinWait2)),
    ("finw2", bit(TcpState::FinWait2)),
    ("fw2", bit(TcpState::FinWait2)),
    ("timewait", bit(TcpState::TimeWait)),
    ("timew", bit(TcpState::TimeWait)),
    ("tw", bit(TcpState::TimeWait)),
    ("close", bit(TcpState::Close)),
    ("closed", bit(TcpState::Close)),
    ("unconn", bit(TcpState::Close)),
    ("closewait", bit(TcpState::CloseWait)),
    ("closew", bit(TcpState::CloseWait)),
    ("cw", bit(TcpState::CloseWait)),
    ("lastack", bit(TcpState::LastAck)),
    ("lasta", bit(TcpState::LastAck)),
    ("listen", bit(TcpState::Listen)),
    ("closing", bit(TcpState::Closing)),
    ("newsynrecv", bit(TcpState::NewSynRecv)),
    ("boundinactive", bit(TcpState::BoundInactive)),
    ("bound", bit(TcpState::BoundInactive)),
    ("all", ALL),
    ("connected", CONNECTED),
    ("synchronized", CONNECTED & !bit(TcpState::SynSent)),
    ("bucket", BUCKET),
    ("big", ALL & !BUCKET),
];

/// The canonical names the normalized form prints, in kernel order (`syn-recv` covers both).
const CANONICAL: &[(&str, StateMask)] = &[
    ("established", bit(TcpState::Established)),
    ("syn-sent", bit(TcpState::SynSent)),
    ("syn-recv", SYN_RECV),
    ("fin-wait-1", bit(TcpState::FinWait1)),
    ("fin-wait-2", bit(TcpState::FinWait2)),
    ("time-wait", bit(TcpState::TimeWait)),
    ("close", bit(TcpState::Close)),
    ("close-wait", bit(TcpState::CloseWait)),
    ("last-ack", bit(TcpState::LastAck)),
    ("listen", bit(TcpState::Listen)),
    ("closing", bit(TcpState::Closing)),
    ("new-syn-recv", bit(TcpState::NewSynRecv)),
    ("bound-inactive", bit(TcpState::BoundInactive)),
];

/// The names a state-name error lists.
pub(super) const STATE_HELP: &str = "established (est), syn-sent, syn-recv, fin-wait-1, \
    fin-wait-2, time-wait (tw), close (unconn), close-wait (cw), last-ack, listen, closing, \
    bound-inactive; groups: all, connected, synchronized, bucket, big";

/// Look up a state name or alias, case-insensitive, ignoring '-' and '_'.
pub(super) fn state(item: &str) -> Option<StateMask> {
    let mut compact = item.to_ascii_lowercase();
    compact.retain(|c| c != '-' && c != '_');
    STATES
        .iter()
        .find(|(name, _)| *name == compact)
        .map(|&(_, mask)| mask)
}

/// Every state name and alias, for "did you mean" suggestions.
pub(super) fn state_names() -> impl Iterator<Item = &'static str> {
    STATES.iter().map(|(name, _)| *name)
}

/// Whether `state` is in `mask`.
pub(super) fn mask_has(mask: StateMask, state: TcpState) -> bool {
    mask & bit(state) != 0
}

/// Write `mask` as canonical state names joined by ','.
pub(super) fn write_states(f: &mut fmt::Formatter<'_>, mask: StateMask) -> fmt::Result {
    let mut left = mask;
    let mut sep = "";
    for &(name, bits) in CANONICAL {
        if left & bits == bits {
            write!(f, "{sep}{name}")?;
            sep = ",";
            left &= !bits;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_alias() {
        let e = bit(TcpState::Established);
        let cases: &[(&[&str], StateMask)] = &[
            (&["established", "ESTABLISHED", "estab", "Est", "est"], e),
            (&["syn-sent", "SYN_SENT", "synsent"], bit(TcpState::SynSent)),
            (&["syn-recv", "syn_recv", "SYN-RECV", "syn-rcvd"], SYN_RECV),
            (
                &["fin-wait-1", "fin-wait1", "FIN_WAIT1", "fw1"],
                bit(TcpState::FinWait1),
            ),
            (
                &["fin-wait-2", "fin-wait2", "FIN_WAIT2", "fw2"],
                bit(TcpState::FinWait2),
            ),
            (
                &["time-wait", "time_wait", "TIME_WAIT", "tw", "TW"],
                bit(TcpState::TimeWait),
            ),
            (
                &["close", "CLOSE", "unconn", "UNCONN", "closed"],
                bit(TcpState::Close),
            ),
            (
                &["close-wait", "CLOSE_WAIT", "cw"],
                bit(TcpState::CloseWait),
            ),
            (&["last-ack", "LAST_ACK", "lastack"], bit(TcpState::LastAck)),
            (&["listen", "LISTEN"], bit(TcpState::Listen)),
            (&["closing", "CLOSING"], bit(TcpState::Closing)),
            (&["new-syn-recv", "NEW_SYN_RECV"], bit(TcpState::NewSynRecv)),
            (
                &["bound-inactive", "BOUND_INACTIVE", "bound"],
                bit(TcpState::BoundInactive),
            ),
            (&["all"], ALL),
            (&["bucket"], bit(TcpState::TimeWait) | SYN_RECV),
        ];
        for (names, mask) in cases {
            for name in *names {
                assert_eq!(state(name), Some(*mask), "{name}");
            }
        }
        for s in TcpState::ALL {
            assert!(mask_has(ALL, s), "{s:?}");
            // Every kernel name parses back to a mask holding that state.
            let m = state(s.kernel_name(crate::model::Proto::Tcp)).unwrap();
            assert!(mask_has(m, s), "{s:?}");
        }
        assert!(!mask_has(CONNECTED, TcpState::Listen));
        assert!(mask_has(CONNECTED, TcpState::Established));
        assert_eq!(state("timewaitx"), None);
        assert_eq!(state(""), None);
    }
}

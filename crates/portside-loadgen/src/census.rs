//! Counting what the namespace really holds: TCP sockets per state from `ss -tanH`
//! (an independent tool, so the READY line is not our own claim) and the cheap
//! `TIME_WAIT` count from `/proc/net/sockstat` that drives the top-up.

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

/// TCP sockets per state, as `ss` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    pub listen: u32,
    pub established: u32,
    pub time_wait: u32,
    pub close_wait: u32,
    /// Every other state (SYN-SENT, FIN-WAIT-2, LAST-ACK, ...): transients.
    pub other: u32,
}

impl Census {
    /// Count the first column of `ss -tanH` output; blank lines are skipped.
    pub fn parse(ss_output: &str) -> Census {
        let mut c = Census::default();
        for state in ss_output
            .lines()
            .filter_map(|l| l.split_whitespace().next())
        {
            match state {
                "LISTEN" => c.listen += 1,
                "ESTAB" => c.established += 1,
                "TIME-WAIT" => c.time_wait += 1,
                "CLOSE-WAIT" => c.close_wait += 1,
                _ => c.other += 1,
            }
        }
        c
    }

    /// Run `ss -tanH` in the caller's network namespace and count.
    pub fn take() -> io::Result<Census> {
        let out = Command::new("ss")
            .arg("-tanH")
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run `ss` (iproute2): {e}")))?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "`ss -tanH` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(Census::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    pub fn total(&self) -> u32 {
        self.listen + self.established + self.time_wait + self.close_wait + self.other
    }
}

impl fmt::Display for Census {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "listen={} established={} time_wait={} close_wait={} other={} total={}",
            self.listen,
            self.established,
            self.time_wait,
            self.close_wait,
            self.other,
            self.total()
        )
    }
}

/// The `tw` field of the `TCP:` line of a sockstat file (per network namespace).
pub fn parse_sockstat_tw(text: &str) -> Option<u32> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "tw" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// `TIME_WAIT` sockets of the caller's namespace, from `/proc/net/sockstat`. It also counts
/// the short-lived `FIN_WAIT2` timewait entries, which is fine for a top-up.
pub fn sockstat_tw(path: &Path) -> io::Result<u32> {
    let text = fs::read_to_string(path)?;
    parse_sockstat_tw(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no `TCP: ... tw N` in {}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_states_from_ss_lines() {
        let ss = "LISTEN     0      4096       127.0.0.1:443        0.0.0.0:*\n\
                  ESTAB      0      0          127.0.0.1:443    127.1.1.1:40000\n\
                  ESTAB      0      0      127.1.1.1:40000      127.0.0.1:443\n\
                  TIME-WAIT  0      0      127.2.1.1:40001      127.0.0.1:443\n\
                  CLOSE-WAIT 1      0          127.0.0.1:80     127.1.1.2:40002\n\
                  FIN-WAIT-2 0      0      127.1.1.2:40002       127.0.0.1:80\n\
                  \n";
        let c = Census::parse(ss);
        assert_eq!(
            c,
            Census {
                listen: 1,
                established: 2,
                time_wait: 1,
                close_wait: 1,
                other: 1
            }
        );
        assert_eq!(c.total(), 6);
        assert!(
            c.to_string()
                .contains("time_wait=1 close_wait=1 other=1 total=6")
        );
    }

    #[test]
    fn reads_tw_from_sockstat() {
        let text =
            "sockets: used 12\nTCP: inuse 3 orphan 0 tw 517 alloc 9 mem 1\nUDP: inuse 0 mem 0\n";
        assert_eq!(parse_sockstat_tw(text), Some(517));
        assert_eq!(parse_sockstat_tw("TCP: inuse 3 orphan 0\n"), None);
        assert_eq!(parse_sockstat_tw("TCP: inuse 3 tw x\n"), None);
        assert_eq!(parse_sockstat_tw(""), None);
    }
}

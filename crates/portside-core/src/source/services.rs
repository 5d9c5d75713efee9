//! Service names for ports: an embedded IANA table, overridden by `/etc/services`.
//!
//! The IANA table is `crates/portside-core/assets/iana-services.bin`, written by `tools/gen-services.py` from the
//! registry's CSV (layout documented in the script): sorted fixed-size records plus a blob of
//! names. It is validated at compile time and binary-searched in place, so start-up parses
//! nothing and a lookup allocates nothing. A port with several IANA names keeps the first
//! listed (80/tcp is `http`, not `www`). `/etc/services` is read on the first lookup only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::model::Proto;

/// The generated table, embedded in the binary.
const IANA: &[u8] = include_bytes!("../../assets/iana-services.bin");
const HEADER_LEN: usize = 16;
const RECORD_LEN: usize = 8;
/// Number of records; computing it checks the whole table, so a bad asset fails the build.
const IANA_COUNT: usize = validate(IANA);

/// Where the system's services file lives.
const ETC_SERVICES: &str = "/etc/services";

/// Reads a little-endian `u32` at `at` (const: used by the compile-time check).
const fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// Checks the table layout at compile time and returns its record count.
const fn validate(b: &[u8]) -> usize {
    assert!(b.len() >= HEADER_LEN, "service table: truncated header");
    assert!(
        b[0] == b'P' && b[1] == b'S' && b[2] == b'V' && b[3] == b'C' && b[4] == 1,
        "service table: bad magic or version"
    );
    let count = le32(b, 8);
    let names_len = le32(b, 12);
    let names_at = HEADER_LEN + count * RECORD_LEN;
    assert!(b.len() == names_at + names_len, "service table: bad length");
    let mut i = 0;
    let mut prev_key = 0;
    while i < count {
        let r = HEADER_LEN + i * RECORD_LEN;
        let key = (b[r] as usize | (b[r + 1] as usize) << 8) * 2 + b[r + 2] as usize;
        assert!(b[r + 2] <= 1, "service table: bad protocol");
        assert!(
            i == 0 || key > prev_key,
            "service table: records not sorted"
        );
        let (len, off) = (b[r + 3] as usize, le32(b, r + 4));
        assert!(
            len > 0 && off + len <= names_len,
            "service table: name out of range"
        );
        let mut c = 0;
        while c < len {
            assert!(
                b[names_at + off + c].is_ascii(),
                "service table: name not ASCII"
            );
            c += 1;
        }
        prev_key = key;
        i += 1;
    }
    count
}

/// Search key of a port and protocol: the order the table is sorted in.
fn key(port: u16, proto: Proto) -> u32 {
    u32::from(port) * 2
        + match proto {
            Proto::Tcp => 0,
            Proto::Udp => 1,
        }
}

/// The IANA name of `port`/`proto`: a binary search over the embedded records, no allocation.
fn iana_lookup(port: u16, proto: Proto) -> Option<&'static str> {
    let names_at = HEADER_LEN + IANA_COUNT * RECORD_LEN;
    let (records, _) = IANA.get(HEADER_LEN..names_at)?.as_chunks::<RECORD_LEN>();
    let wanted = key(port, proto);
    let i = records
        .binary_search_by_key(&wanted, |r| {
            u32::from(u16::from_le_bytes([r[0], r[1]])) * 2 + u32::from(r[2])
        })
        .ok()?;
    let r = records.get(i)?;
    let start = names_at + u32::from_le_bytes([r[4], r[5], r[6], r[7]]) as usize;
    let name = IANA.get(start..start + usize::from(r[3]))?;
    std::str::from_utf8(name).ok()
}

/// The lowest port IANA names `name` (ASCII case-insensitive), TCP before UDP: a linear scan,
/// only used when a filter names a service (`port:https`).
fn iana_port_of(name: &str) -> Option<u16> {
    let names_at = HEADER_LEN + IANA_COUNT * RECORD_LEN;
    let (records, _) = IANA.get(HEADER_LEN..names_at)?.as_chunks::<RECORD_LEN>();
    records.iter().find_map(|r| {
        let start = names_at + u32::from_le_bytes([r[4], r[5], r[6], r[7]]) as usize;
        let candidate = IANA.get(start..start + usize::from(r[3]))?;
        candidate
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| u16::from_le_bytes([r[0], r[1]]))
    })
}

/// Parses a services file (`name port/proto aliases... # comment`): the first entry for a
/// port/protocol wins, as `getservbyport` does; lines that do not parse are skipped.
pub fn parse_services(text: &[u8]) -> HashMap<u32, Box<str>> {
    let mut map = HashMap::new();
    for line in text.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => continue,
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        map.entry(key(port, proto)).or_insert_with(|| name.into());
    }
    map
}

/// Port/protocol -> service name: the embedded IANA table plus an optional services file.
#[derive(Debug)]
pub struct Services {
    etc_path: Option<PathBuf>,
    /// The services file's entries, read on the first lookup; empty when it cannot be read.
    etc: OnceLock<HashMap<u32, Box<str>>>,
}

impl Services {
    /// Embedded IANA table plus the given services file (None = embedded only).
    pub fn new(etc_services: Option<&Path>) -> Services {
        Services {
            etc_path: etc_services.map(Path::to_path_buf),
            etc: OnceLock::new(),
        }
    }

    /// The services file's entries, read once.
    fn etc(&self) -> &HashMap<u32, Box<str>> {
        self.etc.get_or_init(|| match &self.etc_path {
            // A missing or unreadable file means no overrides, not an error.
            Some(path) => {
                std::fs::read(path).map_or_else(|_| HashMap::new(), |t| parse_services(&t))
            }
            None => HashMap::new(),
        })
    }

    /// The service name of `port`/`proto`: the services file first, then IANA.
    pub fn lookup(&self, port: u16, proto: Proto) -> Option<&str> {
        self.etc()
            .get(&key(port, proto))
            .map(|name| &**name)
            .or_else(|| iana_lookup(port, proto))
    }

    /// The port a service name stands for (`https` -> 443): the services file first, then
    /// IANA; the lowest port wins when a name has several.
    pub fn port_of(&self, name: &str) -> Option<u16> {
        self.etc()
            .iter()
            .filter(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(k, _)| (k / 2) as u16)
            .min()
            .or_else(|| iana_port_of(name))
    }
}

fn global() -> &'static Services {
    static SERVICES: OnceLock<Services> = OnceLock::new();
    SERVICES.get_or_init(|| Services::new(Some(Path::new(ETC_SERVICES))))
}

/// Process-wide table (embedded + /etc/services), built lazily on first call.
pub fn service_name(port: u16, proto: Proto) -> Option<&'static str> {
    global().lookup(port, proto)
}

/// Process-wide reverse lookup: the port of a service name (`ssh` -> 22).
pub fn service_port(name: &str) -> Option<u16> {
    global().port_of(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/services/services")
    }

    #[test]
    fn iana_well_known_names() {
        let s = Services::new(None);
        assert_eq!(s.lookup(22, Proto::Tcp), Some("ssh"));
        assert_eq!(s.lookup(53, Proto::Udp), Some("domain"));
        assert_eq!(s.lookup(443, Proto::Tcp), Some("https"));
        // http, www and www-http share 80: the first listed wins.
        assert_eq!(s.lookup(80, Proto::Tcp), Some("http"));
        // 113/tcp is listed as ident, then auth; 113/udp only as auth.
        assert_eq!(s.lookup(113, Proto::Tcp), Some("ident"));
        assert_eq!(s.lookup(113, Proto::Udp), Some("auth"));
        // The x11 range 6000-6063 names every port in it, ends included.
        assert_eq!(s.lookup(6000, Proto::Tcp), Some("x11"));
        assert_eq!(s.lookup(6063, Proto::Udp), Some("x11"));
        assert_eq!(s.lookup(1, Proto::Tcp), Some("tcpmux"));
    }

    #[test]
    fn names_map_back_to_ports() {
        let s = Services::new(None);
        assert_eq!(s.port_of("https"), Some(443));
        assert_eq!(s.port_of("SSH"), Some(22));
        assert_eq!(s.port_of("no-such-service"), None);
        let with_file = Services::new(Some(&fixture()));
        assert_eq!(with_file.port_of("https"), Some(443));
    }

    #[test]
    fn unassigned_and_nameless_ports_are_none() {
        let s = Services::new(None);
        assert_eq!(s.lookup(81, Proto::Tcp), None);
        assert_eq!(s.lookup(65001, Proto::Udp), None);
        assert_eq!(s.lookup(65535, Proto::Tcp), None);
        // Port 0 is "Reserved" with an empty name.
        assert_eq!(s.lookup(0, Proto::Tcp), None);
    }

    #[test]
    fn services_file_overrides_iana() {
        let s = Services::new(Some(&fixture()));
        assert_eq!(s.lookup(80, Proto::Tcp), Some("web"));
        // Only 80/tcp is overridden; 80/udp still comes from IANA.
        assert_eq!(s.lookup(80, Proto::Udp), Some("http"));
        assert_eq!(s.lookup(22, Proto::Tcp), Some("ssh"));
        assert_eq!(s.lookup(65001, Proto::Udp), Some("portside"));
        assert_eq!(s.lookup(65001, Proto::Tcp), None);
        assert_eq!(s.lookup(8081, Proto::Tcp), Some("trailing"));
        assert_eq!(s.lookup(82, Proto::Udp), Some("after-binary"));
        assert_eq!(s.lookup(443, Proto::Tcp), Some("https"));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let map = parse_services(&std::fs::read(fixture()).unwrap());
        let mut names: Vec<&str> = map.values().map(|n| &**n).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["after-binary", "portside", "ssh", "trailing", "web"]
        );
        // The non-UTF-8 line for 81/tcp is dropped, so IANA's answer (none) stands.
        assert_eq!(Services::new(Some(&fixture())).lookup(81, Proto::Tcp), None);
        assert!(parse_services(b"").is_empty());
        assert!(parse_services(b"\0\0\n/\n//\n# x\nname 1/\nname /udp\n\xff").is_empty());
    }

    #[test]
    fn missing_services_file_means_iana_only() {
        let s = Services::new(Some(Path::new("/nonexistent/portside/services")));
        assert_eq!(s.lookup(443, Proto::Tcp), Some("https"));
        assert_eq!(s.lookup(65001, Proto::Udp), None);
    }

    #[test]
    fn process_wide_table_answers() {
        assert_eq!(service_name(22, Proto::Tcp), Some("ssh"));
        assert_eq!(service_name(65001, Proto::Tcp), None);
    }

    /// Whether a missing prerequisite fails the test (CI) or skips it with a reason.
    fn missing(what: &str) {
        let msg = format!("asset check cannot run: {what}");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }

    #[test]
    fn committed_asset_matches_registry_csv() {
        // The workspace root, two levels above this crate.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let csv = root.join("../shared/data/iana-service-names-port-numbers.csv");
        if !csv.is_file() {
            return missing(&format!("{} is absent", csv.display()));
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("iana-services.bin");
        let output = Command::new("python3")
            .arg(root.join("tools/gen-services.py"))
            .arg(&csv)
            .arg(&out)
            .output();
        match output {
            Ok(o) => assert!(
                o.status.success(),
                "tools/gen-services.py failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => return missing(&format!("cannot run python3: {e}")),
        }
        let fresh = std::fs::read(&out).unwrap();
        assert!(
            fresh == IANA,
            "crates/portside-core/assets/iana-services.bin is stale: run `python3 tools/gen-services.py`"
        );
    }

    #[test]
    #[ignore = "timing report; run with --ignored --nocapture"]
    fn lookup_cost() {
        use std::time::Instant;
        let t = Instant::now();
        let first = service_name(443, Proto::Tcp);
        let first_cost = t.elapsed();
        let s = Services::new(None);
        let t = Instant::now();
        let mut found = 0u32;
        for port in 0..=u16::MAX {
            for proto in Proto::ALL {
                found += u32::from(s.lookup(std::hint::black_box(port), proto).is_some());
            }
        }
        let per = t.elapsed() / (2 * 65536);
        eprintln!("first lookup (reads /etc/services): {first_cost:?}; then {per:?} per lookup");
        assert_eq!(first, Some("https"));
        assert_eq!(found as usize, IANA_COUNT);
    }
}

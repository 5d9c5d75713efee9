//! Process details for socket owners: `/proc/<pid>/{stat,cmdline,status}` read relative to a
//! pinned `/proc/<pid>` directory, and a cache keyed by (pid, start time).
//!
//! Every read goes through a directory fd opened on `/proc/<pid>`: the kernel ties that fd to
//! one process, so if the pid exits and is reused while we read, the reads fail (`ENOENT`)
//! instead of mixing two processes. The start time (`stat` field 22) is the second half of
//! the identity: a cached [`Process`] is reused only for the same (pid, start time).

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};

use crate::model::Process;

pub mod real_user;

/// Longest command line kept (bytes); a pathological argv does not cost megabytes per owner.
const MAX_CMDLINE: u64 = 64 * 1024;

/// Why a process's details could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailError {
    /// The process exited (or its pid now names another process).
    Gone,
    /// The files exist but may not be read (hidepid, LSM).
    Denied,
    /// `stat` did not parse; the process is skipped rather than mislabeled.
    Malformed,
}

impl DetailError {
    /// Classify an I/O error from a `/proc/<pid>` read.
    pub fn from_io(e: &io::Error) -> DetailError {
        match e.raw_os_error() {
            Some(libc::EACCES | libc::EPERM) => DetailError::Denied,
            _ => DetailError::Gone,
        }
    }
}

/// The fields of `/proc/<pid>/stat` the owner join needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatLine<'a> {
    /// `comm`, between the first `(` and the last `)`: it may itself hold spaces and parens.
    pub comm: &'a [u8],
    /// Field 22, clock ticks since boot.
    pub start_time: u64,
    /// Changes with every exec and rename: a hash of `comm` and of where the program's code,
    /// stack and arguments are mapped (fields 26-28 and 48-49, which a new program image
    /// moves; they read 0 for processes we may not trace, leaving `comm` alone).
    pub exec: u64,
}

/// Which process a pid is now, from one read of its `stat`: the start time tells a reused
/// pid, `exec` an exec or rename (see [`StatLine::exec`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Identity {
    pub start_time: u64,
    pub exec: u64,
}

/// Parse `/proc/<pid>/stat`; `None` when it is truncated or garbled.
pub fn parse_stat(line: &[u8]) -> Option<StatLine<'_>> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let comm = &line[open + 1..close];
    // After ") " come fields 3 (state) .. 52; start time is field 22, the 20th of them.
    let rest = line.get(close + 1..)?;
    let mut fields = rest.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let number = |f: &[u8]| -> Option<u64> { std::str::from_utf8(f).ok()?.trim_end().parse().ok() };
    let start_time = number(fields.nth(19)?)?;
    let mut hasher = std::hash::DefaultHasher::new();
    comm.hash(&mut hasher);
    // Fields 26, 27, 28 (code start/end, stack start), then 48, 49 (argv start/end).
    for (i, f) in fields.by_ref().skip(3).take(3).enumerate() {
        (i, number(f).unwrap_or(0)).hash(&mut hasher);
    }
    for (i, f) in fields.skip(19).take(2).enumerate() {
        (i + 3, number(f).unwrap_or(0)).hash(&mut hasher);
    }
    Some(StatLine {
        comm,
        start_time,
        exec: hasher.finish(),
    })
}

/// Join a NUL-separated `/proc/<pid>/cmdline` with spaces (empty for kernel threads).
pub fn parse_cmdline(raw: &[u8]) -> String {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&raw[..end]).replace('\0', " ")
}

/// The real uid: the first number of the `Uid:` line of `/proc/<pid>/status`.
pub fn parse_real_uid(status: &[u8]) -> Option<u32> {
    status
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"Uid:"))
        .and_then(|rest| {
            rest.split(|&b| b == b'\t' || b == b' ')
                .find(|f| !f.is_empty())
        })
        .and_then(|f| std::str::from_utf8(f).ok()?.parse().ok())
}

/// Read a whole small file under `dir` into `buf` (cleared first), at most `limit` bytes.
pub fn read_at(dir: BorrowedFd<'_>, name: &CStr, buf: &mut Vec<u8>, limit: u64) -> io::Result<()> {
    buf.clear();
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    File::from(fd).take(limit).read_to_end(buf)?;
    Ok(())
}

/// Read `stat` under a pinned `/proc/<pid>` dir: the identity and `comm`.
pub fn read_stat(
    pid_dir: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
) -> Result<(Identity, String), DetailError> {
    let stat = read_identity(pid_dir, buf)?;
    Ok((
        stat,
        String::from_utf8_lossy(parse_stat(buf).map_or(&[][..], |s| s.comm)).into_owned(),
    ))
}

/// Read `stat` under a pinned `/proc/<pid>` dir: the identity alone (the per-tick check of
/// an owner that was not re-read); `buf` keeps the line.
pub fn read_identity(pid_dir: BorrowedFd<'_>, buf: &mut Vec<u8>) -> Result<Identity, DetailError> {
    read_at(pid_dir, c"stat", buf, 4096).map_err(|e| DetailError::from_io(&e))?;
    let stat = parse_stat(buf).ok_or(DetailError::Malformed)?;
    Ok(Identity {
        start_time: stat.start_time,
        exec: stat.exec,
    })
}

/// Read the details of the process behind `pid_dir` whose `stat` was already parsed.
/// `fallback_uid` (the owner of its `fd` dir, i.e. the effective uid) is used when `status`
/// cannot be read. The user name is left empty: [`ProcessCache::insert`] fills it.
pub fn read_details(
    pid_dir: BorrowedFd<'_>,
    pid: u32,
    start_time: u64,
    name: String,
    fallback_uid: u32,
    buf: &mut Vec<u8>,
) -> Result<Process, DetailError> {
    // Run by a user (with capabilities or not): only what that user may read.
    let limited = real_user::limited();
    let cmdline = match read_at(pid_dir, c"cmdline", buf, MAX_CMDLINE) {
        _ if limited && !real_user::may_read(pid_dir, c"cmdline") => String::new(),
        Ok(()) => parse_cmdline(buf),
        Err(e) if DetailError::from_io(&e) == DetailError::Gone => return Err(DetailError::Gone),
        Err(_) => String::new(),
    };
    let uid = match read_at(pid_dir, c"status", buf, 16 * 1024) {
        _ if limited && !real_user::may_read(pid_dir, c"status") => real_user::HIDDEN_UID,
        Ok(()) => parse_real_uid(buf).unwrap_or(fallback_uid),
        Err(e) if DetailError::from_io(&e) == DetailError::Gone => return Err(DetailError::Gone),
        Err(_) => fallback_uid,
    };
    Ok(Process {
        pid,
        start_time,
        name,
        cmdline,
        uid,
        user: String::new(),
    })
}

/// Process details by pid, valid for one start time and exec (see [`Identity`]); user names
/// by uid.
#[derive(Debug, Default)]
pub struct ProcessCache {
    by_pid: HashMap<u32, (Arc<Process>, u64)>,
    users: UserNames,
}

impl ProcessCache {
    pub fn new() -> ProcessCache {
        ProcessCache::default()
    }

    /// The cached details of `pid`, only if they belong to the process started at `start_time`.
    pub fn get(&self, pid: u32, start_time: u64) -> Option<&Arc<Process>> {
        self.by_pid
            .get(&pid)
            .map(|(p, _)| p)
            .filter(|p| p.start_time == start_time)
    }

    /// The cached details of `pid`, only if read from the same program image (no exec or
    /// rename since).
    pub fn get_same(&self, pid: u32, id: Identity) -> Option<&Arc<Process>> {
        self.by_pid
            .get(&pid)
            .filter(|(p, exec)| p.start_time == id.start_time && *exec == id.exec)
            .map(|(p, _)| p)
    }

    /// Store freshly read details (replacing any older process with the same pid) and
    /// resolve the user name.
    pub fn insert(&mut self, process: Process) -> Arc<Process> {
        self.insert_with(process, 0)
    }

    /// [`Self::insert`], remembering the exec identity the details were read under.
    pub fn insert_with(&mut self, mut process: Process, exec: u64) -> Arc<Process> {
        if process.uid == real_user::HIDDEN_UID {
            process.user = "?".to_string();
        } else {
            self.users.name(process.uid).clone_into(&mut process.user);
        }
        let process = Arc::new(process);
        self.by_pid
            .insert(process.pid, (Arc::clone(&process), exec));
        process
    }

    /// Forget processes for which `keep(pid, start_time)` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(u32, u64) -> bool) {
        self.by_pid.retain(|&pid, (p, _)| keep(pid, p.start_time));
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }
}

/// uid -> user name, from the system user database (`getpwuid_r`, so NSS users resolve too),
/// cached for the life of the sampler; an unknown uid is shown as its number.
///
/// Not `sysinfo::Users`: it lists only users whose shell is not `/false`, so daemons such as
/// `mysql:...:/bin/false` would show as numbers.
#[derive(Debug, Default)]
pub struct UserNames {
    names: HashMap<u32, String>,
}

impl UserNames {
    pub fn name(&mut self, uid: u32) -> &str {
        self.names
            .entry(uid)
            .or_insert_with(|| lookup_user(uid).unwrap_or_else(|| uid.to_string()))
    }
}

/// The uid of a user name, from the system user database (`getpwnam_r`), for filters
/// such as `user:www-data`.
pub fn uid_of(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    passwd_entry(Key::Name(&name)).map(|(uid, _)| uid)
}

fn lookup_user(uid: u32) -> Option<String> {
    passwd_entry(Key::Uid(uid)).map(|(_, name)| name)
}

#[derive(Clone, Copy)]
enum Key<'a> {
    Uid(u32),
    Name(&'a CStr),
}

/// One `getpwuid_r`/`getpwnam_r` call (so NSS users resolve too), growing the scratch
/// buffer on `ERANGE` (bounded at 1 MiB): the entry's uid and name.
fn passwd_entry(key: Key<'_>) -> Option<(u32, String)> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero `passwd` is a valid value (null pointers, zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf.len()` is the buffer's true size;
        // `name` is NUL-terminated.
        let rc = unsafe {
            match key {
                Key::Uid(uid) => libc::getpwuid_r(
                    uid,
                    &raw mut pwd,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &raw mut result,
                ),
                Key::Name(name) => libc::getpwnam_r(
                    name.as_ptr(),
                    &raw mut pwd,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &raw mut result,
                ),
            }
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Some((pwd.pw_uid, name.to_string_lossy().into_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/proc/stat")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn user_names_and_uids_round_trip() {
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(lookup_user(0).as_deref(), Some("root"));
        assert_eq!(uid_of("no-such-user-portside"), None);
        assert_eq!(uid_of("nul\0byte"), None);
    }

    #[test]
    fn stat_fixtures_parse_or_fail_cleanly() {
        type Case = (&'static str, Option<(&'static [u8], u64)>);
        let cases: [Case; 6] = [
            ("nginx", Some((b"nginx", 4_242_317))),
            ("weird_comm", Some((b"my (weird) proc", 1_234_567))),
            ("spaces_and_paren_tail", Some((b") x ( y", 77))),
            ("kernel_thread", Some((b"kworker/0:1H-kblockd", 115))),
            ("truncated", None),
            ("garbage", None),
        ];
        for (name, want) in cases {
            let raw = fixture(name);
            let got = parse_stat(&raw).map(|s| (s.comm, s.start_time));
            assert_eq!(got, want, "fixture {name}");
        }
    }

    #[test]
    fn stat_edge_cases_never_panic() {
        for line in [
            &b""[..],
            b"(",
            b")",
            b")(",
            b"1 (x)",
            b"1 (x) ",
            b"1 (x) S",
            b"() 1 2 3",
        ] {
            assert_eq!(
                parse_stat(line),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let fields = (3..=52)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let line = format!("9 (a) {fields}\n");
        assert_eq!(parse_stat(line.as_bytes()).map(|s| s.start_time), Some(22));
    }

    #[test]
    fn cmdline_joins_arguments() {
        assert_eq!(
            parse_cmdline(b"nginx: worker process\0\0\0"),
            "nginx: worker process"
        );
        assert_eq!(
            parse_cmdline(b"/usr/bin/python3\0-m\0http.server\0"),
            "/usr/bin/python3 -m http.server"
        );
        assert_eq!(parse_cmdline(b""), "");
        assert_eq!(parse_cmdline(b"a\xffb\0"), "a\u{fffd}b");
    }

    #[test]
    fn real_uid_is_the_first_uid_field() {
        let status = b"Name:\tsshd\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n";
        assert_eq!(parse_real_uid(status), Some(1000));
        assert_eq!(parse_real_uid(b"Name:\tx\n"), None);
        assert_eq!(parse_real_uid(b"Uid:\tbogus\t0\n"), None);
    }

    #[test]
    fn cache_is_keyed_by_pid_and_start_time() {
        let mut cache = ProcessCache::new();
        let p = |start_time, name: &str| Process {
            pid: 42,
            start_time,
            name: name.into(),
            cmdline: String::new(),
            uid: 0,
            user: String::new(),
        };
        let first = cache.insert(p(100, "old"));
        assert_eq!(first.user, "root");
        assert!(cache.get(42, 100).is_some());
        assert!(
            cache.get(42, 101).is_none(),
            "a reused pid must not get the old details"
        );
        cache.insert(p(101, "new"));
        assert_eq!(cache.get(42, 101).map(|p| p.name.as_str()), Some("new"));
        assert!(cache.get(42, 100).is_none());
        cache.retain(|_, start| start != 101);
        assert!(cache.is_empty());
    }

    #[test]
    fn unknown_uid_shows_as_number() {
        let mut users = UserNames::default();
        assert_eq!(users.name(0), "root");
        assert_eq!(users.name(3_999_999_999), "3999999999");
    }

    #[test]
    fn reads_own_process_through_pinned_dir() {
        let dir = rustix::fs::openat(
            rustix::fs::CWD,
            c"/proc/self",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let mut buf = Vec::new();
        let (id, name) = read_stat(std::os::fd::AsFd::as_fd(&dir), &mut buf).unwrap();
        assert!(id.start_time > 0);
        let me = read_details(
            std::os::fd::AsFd::as_fd(&dir),
            std::process::id(),
            id.start_time,
            name,
            7,
            &mut buf,
        )
        .unwrap();
        assert_eq!(me.uid, rustix::process::getuid().as_raw());
        assert!(!me.cmdline.is_empty());
        assert!(!me.name.is_empty() && me.name.len() <= 15, "{}", me.name);
    }
}

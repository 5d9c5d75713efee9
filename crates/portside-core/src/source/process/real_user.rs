//! What a capable binary shows: with `setcap cap_sys_ptrace,cap_dac_read_search+ep`, a
//! non-root user's portside can read every process's fd table (that is what the
//! capabilities are for: which pid holds which socket). It must not also hand that user the
//! command lines (secrets on them), user, memory and CPU of processes the user could not
//! read without the capabilities (e.g. under `hidepid=2`).
//!
//! So when the real uid is not root, each detail file is checked with `access(2)`, which
//! asks with the real uid and, for a non-root real uid, without capabilities: exactly what
//! the invoking user could read themselves. The pid and `comm` name are always shown.

use std::ffi::CStr;
use std::os::fd::BorrowedFd;
use std::sync::OnceLock;

/// The uid recorded for an owner whose `status` the real user may not read.
pub const HIDDEN_UID: u32 = u32::MAX;

/// Whether details are limited to what the real user may read: the real uid is not root.
pub fn limited() -> bool {
    static LIMITED: OnceLock<bool> = OnceLock::new();
    *LIMITED.get_or_init(|| rustix::process::getuid().as_raw() != 0)
}

/// Whether the real user (without capabilities) may read `name` under a pinned pid dir.
pub fn may_read(pid_dir: BorrowedFd<'_>, name: &CStr) -> bool {
    rustix::fs::accessat(
        pid_dir,
        name,
        rustix::fs::Access::READ_OK,
        rustix::fs::AtFlags::empty(),
    )
    .is_ok()
}

/// Whether this process runs with effective capabilities while its real uid is not root
/// (a `setcap` binary run by a user): the case the coverage note explains.
pub fn capable_non_root() -> bool {
    static CAPABLE: OnceLock<bool> = OnceLock::new();
    *CAPABLE.get_or_init(|| {
        limited()
            && std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                    .is_some_and(|caps| caps != 0)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};

    #[test]
    fn own_process_is_readable() {
        let dir = rustix::fs::openat(
            rustix::fs::CWD,
            c"/proc/self",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let dir = std::os::fd::AsFd::as_fd(&dir);
        assert!(may_read(dir, c"cmdline"));
        assert!(!may_read(dir, c"no-such-file"));
        // Tests run as root (CI) or as a user without capabilities.
        assert!(!capable_non_root());
    }
}

//! `/proc` itself: the root dir, the signature of `/proc/<pid>/fd`, fd links and the
//! stack-built relative paths that reach them without allocating.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, RawDir};
use rustix::io::Errno;

/// An open `/proc` (or a fake tree in tests).
#[derive(Debug)]
pub struct ProcRoot {
    fd: OwnedFd,
    /// Real procfs: the size of `/proc/<pid>/fd` is its number of fds (Linux >= 6.2).
    /// On a fake tree it is a byte count, only good for change detection.
    pub exact_counts: bool,
}

/// What `fstat` says about `/proc/<pid>/fd`. Any change means the fd table may have changed.
///
/// On procfs `size` is the fd count and `ino` is new for every process incarnation (a reused
/// pid gets a fresh proc inode), so a reused pid always looks changed. On a plain directory
/// (fake trees) `mtime` changes when an entry is added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FdDirSig {
    pub ino: u64,
    pub size: i64,
    pub mtime: (i64, i64),
    /// Owner of the fd dir: the process's effective uid (root for non-dumpable processes).
    pub uid: u32,
}

impl FdDirSig {
    pub(super) fn of(st: &rustix::fs::Stat) -> FdDirSig {
        FdDirSig {
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec.cast_signed()),
            uid: st.st_uid,
        }
    }

    /// Expected work to scan this dir, in fds (a flat guess where sizes are not counts).
    pub fn cost(&self, exact_counts: bool) -> usize {
        if exact_counts {
            usize::try_from(self.size).unwrap_or(0).max(1)
        } else {
            16
        }
    }
}

/// One open fd; `inode` is the socket inode, 0 when the fd is not a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FdEntry {
    pub fd: u32,
    pub inode: u64,
}

/// A relative path of numbers and literals (`<pid>`, `<pid>/fd`, `<pid>/fd/<n>`) built as a
/// C string on the stack: no allocation per process or fd.
pub(super) struct NumPath {
    buf: [u8; 40],
    len: usize,
}

impl NumPath {
    pub(super) fn new() -> NumPath {
        NumPath {
            buf: [0; 40],
            len: 0,
        }
    }

    pub(super) fn num(self, n: u32) -> NumPath {
        let mut digits = [0u8; 10];
        let mut n = n;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.lit(&digits[i..])
    }

    pub(super) fn lit(mut self, s: &[u8]) -> NumPath {
        // At most 10 + 4 + 10 bytes are ever pushed, well inside the 39 usable.
        let end = (self.len + s.len()).min(self.buf.len() - 1);
        self.buf[self.len..end].copy_from_slice(&s[..end - self.len]);
        self.len = end;
        self
    }

    pub(super) fn as_c_str(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

/// A decimal fd or pid name (`"123"`); `None` for `.`, `..`, `self` and anything else.
pub fn parse_number(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    name.iter().try_fold(0u32, |n, &d| {
        n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// The inode of a `socket:[N]` link target; `None` for anything else.
pub fn parse_socket_link(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

pub(super) fn is_denied(e: Errno) -> bool {
    e == Errno::ACCESS || e == Errno::PERM
}

impl ProcRoot {
    pub fn open(path: &Path) -> io::Result<ProcRoot> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let exact_counts =
            rustix::fs::fstatfs(&fd).is_ok_and(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC);
        Ok(ProcRoot { fd, exact_counts })
    }

    /// Every numeric entry of the root, in directory order.
    pub fn list_pids(&self, buf: &mut [MaybeUninit<u8>], out: &mut Vec<u32>) -> io::Result<()> {
        out.clear();
        rustix::fs::seek(&self.fd, rustix::fs::SeekFrom::Start(0))?;
        let mut dir = RawDir::new(self.fd.as_fd(), buf);
        while let Some(entry) = dir.next() {
            if let Some(pid) = parse_number(entry?.file_name().to_bytes()) {
                out.push(pid);
            }
        }
        Ok(())
    }

    /// `fstatat("<pid>/fd")`: allowed even where the dir itself may not be read.
    pub fn fd_dir_sig(&self, pid: u32) -> Result<FdDirSig, Errno> {
        let path = NumPath::new().num(pid).lit(b"/fd");
        let st = rustix::fs::statat(&self.fd, path.as_c_str(), AtFlags::empty())?;
        Ok(FdDirSig::of(&st))
    }

    /// Open `/proc/<pid>` as a path-only fd: everything read through it belongs to this one
    /// process, even if the pid is reused meanwhile.
    pub(super) fn pin(&self, pid: u32) -> Result<OwnedFd, Errno> {
        rustix::fs::openat(
            &self.fd,
            NumPath::new().num(pid).as_c_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    /// Read one fd link of `pid` (for verifying a mapping): `Ok(None)` when the fd is closed.
    pub fn read_fd(&self, pid: u32, fd: u32) -> Result<Option<u64>, Errno> {
        let path = NumPath::new().num(pid).lit(b"/fd/").num(fd);
        let mut link = [0u8; 64];
        match rustix::fs::readlinkat_raw(&self.fd, path.as_c_str(), &mut link[..]) {
            Ok(len) => Ok(Some(parse_socket_link(&link[..len]).unwrap_or(0))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(
            parse_socket_link(b"socket:[18446744073709551615]"),
            Some(u64::MAX)
        );
        for bad in [
            &b"socket:[]"[..],
            b"socket:[12",
            b"socket:[1a]",
            b"pipe:[5]",
            b"/dev/null",
            b"socket:[99999999999999999999]",
        ] {
            assert_eq!(
                parse_socket_link(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b"4294967295"), Some(u32::MAX));
        for bad in [&b""[..], b".", b"..", b"self", b"4294967296", b"12a"] {
            assert_eq!(parse_number(bad), None);
        }
    }

    #[test]
    fn num_paths() {
        assert_eq!(NumPath::new().num(0).lit(b"/fd").as_c_str(), c"0/fd");
        assert_eq!(
            NumPath::new()
                .num(u32::MAX)
                .lit(b"/fd/")
                .num(u32::MAX)
                .as_c_str(),
            c"4294967295/fd/4294967295"
        );
        assert_eq!(NumPath::new().num(1234).as_c_str(), c"1234");
    }
}

//! The network namespace the load lives in: created with `ip netns add`, loopback up,
//! deleted on drop (also after an error or a signal), stale ones of dead runs removable.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::Command;

/// Prefix of every namespace this tool creates: `portside-bench-<coordinator pid>`.
pub const PREFIX: &str = "portside-bench-";
/// `/proc/<pid>/comm` of a live coordinator (the kernel cuts names at 15 bytes).
const COMM: &str = "portside-loadge";

/// A namespace we created; deleted when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
    deleted: bool,
}

/// Run `ip` with `args`; an error carries the command and what it printed.
fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run `ip` (iproute2): {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Netns {
    /// Create namespace `name` and bring its loopback up.
    pub fn create(name: &str) -> io::Result<Netns> {
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_owned(),
            deleted: false,
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The bind mount that `setns(2)` opens.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Remove the namespace; it dies once its last process has left.
    pub fn delete(&mut self) -> io::Result<()> {
        if self.deleted {
            return Ok(());
        }
        self.deleted = true;
        ip(&["netns", "del", &self.name])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = self.delete() {
            eprintln!("portside-loadgen: warning: {e}");
        }
    }
}

/// The pid in a name of ours (`portside-bench-123` -> 123).
pub fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.parse().ok()
}

/// Delete namespaces left by runs that were killed hard (SIGKILL): ours, whose
/// coordinator pid is gone or is no longer a loadgen. Returns the names removed.
pub fn cleanup_stale() -> io::Result<Vec<String>> {
    let dir = match fs::read_dir("/run/netns") {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        let alive = fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim_end() == COMM);
        if !alive {
            ip(&["netns", "del", &name])?;
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_only_reads_our_names() {
        assert_eq!(owner_pid("portside-bench-4242"), Some(4242));
        assert_eq!(owner_pid("portside-bench-x"), None);
        assert_eq!(owner_pid("other-4242"), None);
    }

    #[test]
    fn our_comm_is_the_truncated_binary_name() {
        assert_eq!(COMM, &"portside-loadgen"[..15]);
    }
}

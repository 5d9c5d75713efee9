//! Which config file to read: `--config FILE` (or `PORTSIDE_CONFIG`), none with
//! `--no-config`, else `$XDG_CONFIG_HOME/portside/config.toml` (`~/.config/...`).
//!
//! Under sudo the environment may still name the invoking user's home (`sudo -E`, or a
//! sudo that keeps `HOME`), and root would then read a file that user can write. So as root
//! under sudo the path comes from root's own passwd entry, and the user's file is read
//! only when given with `--config`; a note says so when that file exists.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChoice {
    /// The file in the config directory, if there is one.
    Default,
    /// This file, which must exist.
    Given(PathBuf),
    /// No file: the defaults and the flags.
    None,
}

/// The file to read, and a note for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file to read; `None` when there is none to read.
    pub path: Option<PathBuf>,
    /// Where `config init` writes (the default path, or the given one).
    pub init_path: Option<PathBuf>,
    /// Said on stderr: which file root reads under sudo, and whose it is not.
    pub note: Option<String>,
}

/// What the location depends on, read from the process (or given by tests).
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub xdg_config_home: Option<OsString>,
    pub home: Option<OsString>,
    pub euid: u32,
    /// `SUDO_UID` and `SUDO_USER`, set by sudo.
    pub sudo_uid: Option<u32>,
    pub sudo_user: Option<String>,
    /// The text of `/etc/passwd`.
    pub passwd: String,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Env {
            xdg_config_home: var("XDG_CONFIG_HOME"),
            home: var("HOME"),
            euid: rustix::process::geteuid().as_raw(),
            sudo_uid: var("SUDO_UID").and_then(|v| v.to_str()?.parse().ok()),
            sudo_user: var("SUDO_USER").and_then(|v| v.into_string().ok()),
            passwd: std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
        }
    }

    /// Root running for another user through sudo.
    fn under_sudo(&self) -> bool {
        self.euid == 0 && self.sudo_uid.is_some_and(|uid| uid != 0)
    }

    /// The home directory of `uid` in the passwd text.
    fn home_of(&self, uid: u32) -> Option<PathBuf> {
        self.passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 6 && fields[2].parse() == Ok(uid) && !fields[5].is_empty())
                .then(|| PathBuf::from(fields[5]))
        })
    }
}

const RELATIVE: &str = "portside/config.toml";

/// The default config file: under sudo, root's own; else the XDG one.
pub fn default_path(env: &Env) -> Option<PathBuf> {
    if env.under_sudo() {
        let home = env.home_of(0).unwrap_or_else(|| PathBuf::from("/root"));
        return Some(home.join(".config").join(RELATIVE));
    }
    let xdg = env
        .xdg_config_home
        .as_ref()
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let dir = xdg.or_else(|| {
        env.home
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| env.home_of(env.euid))
            .map(|h| h.join(".config"))
    })?;
    Some(dir.join(RELATIVE))
}

/// The file to read for `choice`.
pub fn locate(choice: &ConfigChoice, env: &Env, exists: impl Fn(&Path) -> bool) -> Located {
    match choice {
        ConfigChoice::Given(path) => Located {
            path: Some(path.clone()),
            init_path: Some(path.clone()),
            note: None,
        },
        ConfigChoice::None => Located {
            path: None,
            init_path: default_path(env),
            note: None,
        },
        ConfigChoice::Default => {
            let default = default_path(env);
            let path = default.clone().filter(|p| exists(p));
            let note = sudo_note(env, path.as_deref(), &exists);
            Located {
                path,
                init_path: default,
                note,
            }
        }
    }
}

/// Under sudo, when the invoking user has a config file: say it is not read, and which is.
fn sudo_note(env: &Env, chosen: Option<&Path>, exists: &impl Fn(&Path) -> bool) -> Option<String> {
    if !env.under_sudo() {
        return None;
    }
    let uid = env.sudo_uid?;
    let theirs = env.home_of(uid)?.join(".config").join(RELATIVE);
    if !exists(&theirs) {
        return None;
    }
    let invoker = env
        .sudo_user
        .clone()
        .unwrap_or_else(|| format!("uid {uid}"));
    let reading = chosen.map_or_else(
        || "no config file (defaults)".to_string(),
        |p| format!("config file {}", p.display()),
    );
    Some(format!(
        "portside: under sudo, using {reading}; {invoker}'s {} is not read (pass --config {} to use it)",
        theirs.display(),
        theirs.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n";

    fn env(euid: u32, sudo: bool) -> Env {
        Env {
            xdg_config_home: None,
            home: Some("/home/alice".into()),
            euid,
            sudo_uid: sudo.then_some(1000),
            sudo_user: sudo.then(|| "alice".into()),
            passwd: PASSWD.into(),
        }
    }

    #[test]
    fn xdg_then_home() {
        let mut e = env(1000, false);
        assert_eq!(
            default_path(&e),
            Some("/home/alice/.config/portside/config.toml".into())
        );
        e.xdg_config_home = Some("/xdg".into());
        assert_eq!(default_path(&e), Some("/xdg/portside/config.toml".into()));
        e.xdg_config_home = Some("relative".into());
        assert_eq!(
            default_path(&e),
            Some("/home/alice/.config/portside/config.toml".into())
        );
        e.home = None;
        assert_eq!(
            default_path(&e),
            Some("/home/alice/.config/portside/config.toml".into())
        );
    }

    #[test]
    fn root_under_sudo_reads_roots_file_and_says_so() {
        // sudo -E: HOME and XDG_CONFIG_HOME still the user's.
        let mut e = env(0, true);
        e.xdg_config_home = Some("/home/alice/.config".into());
        let all = |_: &Path| true;
        let got = locate(&ConfigChoice::Default, &e, all);
        assert_eq!(got.path, Some("/root/.config/portside/config.toml".into()));
        let note = got.note.unwrap();
        assert!(
            note.contains("using config file /root/.config/portside/config.toml"),
            "{note}"
        );
        assert!(
            note.contains("alice's /home/alice/.config/portside/config.toml is not read"),
            "{note}"
        );

        let nothing = |_: &Path| false;
        let got = locate(&ConfigChoice::Default, &e, nothing);
        assert_eq!((got.path, got.note), (None, None));

        let only_alice = |p: &Path| p.starts_with("/home/alice");
        let got = locate(&ConfigChoice::Default, &e, only_alice);
        assert_eq!(got.path, None);
        assert!(
            got.note
                .unwrap()
                .contains("using no config file (defaults)")
        );

        let asked = PathBuf::from("/home/alice/.config/portside/config.toml");
        let got = locate(&ConfigChoice::Given(asked.clone()), &e, all);
        assert_eq!((got.path, got.note), (Some(asked), None));
    }

    #[test]
    fn plain_root_is_not_under_sudo() {
        let mut e = env(0, false);
        e.home = Some("/root".into());
        let got = locate(&ConfigChoice::Default, &e, |_| true);
        assert_eq!(got.path, Some("/root/.config/portside/config.toml".into()));
        assert_eq!(got.note, None);
        assert_eq!(locate(&ConfigChoice::None, &e, |_| true).path, None);
    }
}

//! A capable binary run by a user shows each owner's pid and name, and only the details
//! that user could read without the capabilities (issue 16, privilege). Root only: it
//! copies the binary, `setcap`s it, and runs it as `nobody` in a private mount namespace
//! whose /proc hides other users' processes (`hidepid=invisible`).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

fn is_root() -> bool {
    rustix_uid() == 0
}

fn rustix_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

#[test]
fn capable_binary_shows_nobody_only_what_nobody_may_read() {
    if !is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "needs root (CI runs as root)"
        );
        eprintln!("SKIPPED: needs root to setcap a copy and run it as nobody");
        return;
    }
    for tool in ["setcap", "setpriv", "unshare"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .status()
                .unwrap()
                .success(),
            "{tool} is missing (.ci/run installs libcap2-bin and util-linux)"
        );
    }
    // A root process with a secret on its command line, listening on loopback.
    let mut secret = Command::new("python3")
        .args([
            "-c",
            "import socket, sys\n\
             s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
             print(s.getsockname()[1], flush=True); sys.stdin.read()",
            "--password=hunter2-harden-test",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(secret.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();

    let dir = tempfile::Builder::new()
        .prefix("portside-harden-cap-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("portside");
    std::fs::copy(env!("CARGO_BIN_EXE_portside"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let setcap = Command::new("setcap")
        .arg("cap_sys_ptrace,cap_dac_read_search+ep")
        .arg(&bin)
        .status()
        .unwrap();
    assert!(setcap.success());

    let run = |hide: bool| {
        let mount = if hide {
            "mount -t proc -o hidepid=invisible proc /proc && "
        } else {
            ""
        };
        let script = format!(
            "{mount}exec setpriv --reuid=65534 --regid=65534 --clear-groups {} --once --format json -t lport:{port}",
            bin.display()
        );
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v, String::from_utf8_lossy(&out.stderr).into_owned())
    };

    let (hidden, note) = run(true);
    let _ = secret.kill();
    let _ = secret.wait();
    let sockets = hidden["sockets"].as_array().unwrap();
    assert_eq!(sockets.len(), 1, "{hidden}");
    let owner = &sockets[0]["processes"][0];
    assert_eq!(
        owner["pid"],
        secret.id(),
        "the pid is what the capability is for"
    );
    assert!(
        owner["name"].as_str().unwrap().starts_with("python"),
        "{owner}"
    );
    let text = hidden.to_string();
    assert!(!text.contains("hunter2"), "the secret leaked: {owner}");
    assert_eq!(owner["cmdline"], "", "{owner}");
    assert_eq!(owner["user"], "?", "{owner}");
    assert!(owner["rss_bytes"].is_null(), "{owner}");
    assert!(
        note.contains("running with capabilities as uid 65534"),
        "{note}"
    );
}

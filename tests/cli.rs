//! The binary's contract: help text, bad input (one line, exit 2), JSON shape.

use std::process::{Command, Output};

fn portside(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portside"))
        .arg("--no-config")
        .env_remove("PORTSIDE_CONFIG")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portside")
}

#[test]
fn help_snapshot() {
    let out = portside(&["--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn bad_input_is_one_line_naming_the_bad_part_with_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--frobnicate"], "'--frobnicate'"),
        (&["--interval", "abc"], "'abc'"),
        (&["--interval", "-1s"], "'-1s'"),
        (&["--count", "0"], "'0'"),
        (&["--count", "many"], "'many'"),
        (&["--format", "xml"], "'xml'"),
        (&["--once", "prot:80"], "'prot:80'"),
        (&["--once", "state:bogus"], "bogus"),
        (&["--once", "port:70000"], "70000"),
        (&["--once", "addr:10.0.0.0/33"], "10.0.0.0/33"),
        (&["--once", "--alert", "time_wait>lots"], "lots"),
        (&["--once", "--alert", "tw_storm>5"], "tw_storm"),
        (&["--once", "--alert", "time_wait>80%"], "time_wait"),
    ];
    for (args, bad) in cases {
        let out = portside(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(bad), "{args:?}: {err} should name {bad}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn once_json_follows_the_contract() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = portside(&["--once", "--format", "json", &format!("lport:{port}")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    assert!(v["duration_ms"].as_f64().unwrap() >= 0.0);
    let sockets = v["sockets"].as_array().unwrap();
    assert_eq!(sockets.len(), 1, "{v}");
    let s = &sockets[0];
    assert_eq!(s["proto"], "tcp");
    assert_eq!(s["family"], "ipv4");
    assert_eq!(s["state"], "LISTEN");
    assert_eq!(s["local_addr"], "127.0.0.1");
    assert_eq!(s["local_port"], port);
    assert_eq!(s["remote_addr"], "0.0.0.0");
    assert_eq!(s["remote_port"], 0);
    assert_eq!(s["recv_q"], 0);
    assert!(s["send_q"].as_u64().unwrap() > 0, "backlog: {s}");
    assert!(s["uid"].is_u64() && s["inode"].as_u64().unwrap() > 0);
    let expected_class = if port < 49152 {
        "registered"
    } else {
        "dynamic"
    };
    assert_eq!(s["port_class"], expected_class);
    assert!(s["service"].is_null() || s["service"].is_string());
    // Other test threads fork children that hold a copy of every fd until they exec: a
    // second holder may show up for an instant, as it would in `ss -p`.
    let procs = s["processes"].as_array().unwrap();
    let me = procs
        .iter()
        .find(|p| p["pid"] == std::process::id())
        .unwrap_or_else(|| panic!("owned by the test process: {s}"));
    assert!(me["name"].is_string() && me["cmdline"].is_string());
    assert!(me["user"].is_string());
    assert!(me["rss_bytes"].as_u64().unwrap() > 0, "{me}");
    assert!(
        me["cpu_percent"].is_null(),
        "no CPU delta in one sample: {me}"
    );
}

#[test]
fn piped_output_without_once_prints_a_table() {
    let out = portside(&["-t", "-l"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let header = text.lines().next().unwrap();
    for col in [
        "Proto", "State", "Recv-Q", "Send-Q", "Local", "Peer", "Service", "Process",
    ] {
        assert!(header.contains(col), "{header}");
    }
}

#[test]
fn streaming_json_prints_count_lines() {
    let out = portside(&[
        "--format",
        "json",
        "--count",
        "3",
        "--interval",
        "0",
        "-t",
        "-l",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["sockets"].is_array());
    }
}

/// Without privilege every socket is still listed with its uid; sockets of other users'
/// processes are marked `permission_denied`, and one stderr line says how to see them.
#[test]
fn unprivileged_run_lists_every_socket_and_says_why_owners_are_missing() {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root: this test must run there"
        );
        eprintln!("SKIPPED: needs root to drop to another user");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portside"));
    cmd.args([
        "--no-config",
        "--once",
        "--format",
        "json",
        &format!("lport:{port}"),
    ]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["privileged"], false);
    let sockets = v["sockets"].as_array().unwrap();
    assert_eq!(sockets.len(), 1, "the root-owned listener is listed: {v}");
    assert_eq!(sockets[0]["uid"], 0);
    assert_eq!(sockets[0]["attribution"], "permission_denied");
    assert!(sockets[0]["processes"].as_array().unwrap().is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("1 of 1 sockets") && err.contains("CAP_SYS_PTRACE") && err.contains("root"),
        "{err}"
    );
}

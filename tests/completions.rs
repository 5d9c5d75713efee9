//! Completion scripts and the man page from the real binary: the bash script is valid and
//! completes `--format ` and state names in an interactive bash (in tmux); the man page
//! renders with `man -l -` without a warning.

#[path = "support/tmux.rs"]
#[expect(dead_code, reason = "the shared harness: these tests use part of it")]
mod tmux;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use tmux::{PROMPT, Tmux, need_tmux};

fn portside(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_portside"))
        .args(args)
        .output()
        .expect("run portside");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `cmd` with `input` on stdin.
fn pipe(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!("{tool} is not installed: cannot run this test");
        eprintln!("{msg}");
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{msg} (CI=true)"
        );
    }
    ok
}

#[test]
fn bash_script_is_valid_and_completes_formats_and_states() {
    let script = portside(&["completions", "bash"]);
    let check = pipe(Command::new("bash").arg("-n"), &script);
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    if !need_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portside.bash");
    std::fs::write(&file, &script).unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_portside"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    // An interactive bash, as a user has it: the script sourced, keys typed, Tab pressed.
    let shell = format!(
        "env -i PATH={bin_dir}:/usr/bin:/bin TERM=xterm-256color PS1='{PROMPT}' \
         bash --norc --noprofile -i"
    );
    let tmux = Tmux::start(&shell);
    tmux.wait_for("the shell", Duration::from_secs(10), |s| {
        s.contains(PROMPT.trim_end())
    });
    tmux.type_text(&format!("source {}; clear", file.display()));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the script sourced", Duration::from_secs(10), |s| {
        !s.contains("source ")
    });
    tmux.type_text("portside --format ");
    tmux.keys(&["Tab", "Tab"]);
    tmux.wait_for("the formats", Duration::from_secs(10), |s| {
        s.contains("csv") && s.contains("json") && s.contains("table")
    });
    tmux.keys(&["C-u"]);
    tmux.type_text("clear");
    tmux.keys(&["Enter"]);
    // One candidate completes in place: `time-w` -> `time-wait`.
    tmux.type_text("portside time-w");
    tmux.keys(&["Tab"]);
    tmux.wait_for("the state name", Duration::from_secs(10), |s| {
        s.contains("portside time-wait")
    });
}

#[test]
fn man_page_renders_without_warnings() {
    if !have("man") {
        return;
    }
    let page = portside(&["man"]);
    assert!(page.starts_with(b".ie") || page.starts_with(b".TH"), "roff");
    let out = pipe(
        Command::new("man")
            .args(["--warnings", "-l", "-"])
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat"),
        &page,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.trim().is_empty(), "warnings: {err}");
    for want in [
        "NAME",
        "SYNOPSIS",
        "--no-config",
        "config.toml",
        "completions",
        "NO_COLOR",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
}

#[test]
fn version_names_the_commit_in_a_checkout() {
    let out = String::from_utf8(portside(&["--version"])).unwrap();
    let in_checkout = Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    assert!(
        out.starts_with(&format!("portside {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    match in_checkout {
        Some(commit) => assert!(out.contains(&format!("(git {commit})")), "{out}"),
        None => assert!(!out.contains("git"), "{out}"),
    }
}

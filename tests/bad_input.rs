//! Bad input that slipped through or was reported badly (issue 16, defect 7): one line,
//! exit 2, the bad part named and quoted at most ~80 characters, control characters shown.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output};

fn portside<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portside"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portside")
}

/// Exit 2, nothing on stdout, one line on stderr; returns it.
fn usage_error<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let out = portside(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    err
}

#[test]
fn intervals_are_zero_or_10ms_to_a_day() {
    for bad in [
        "0.0000001s",
        "0.0000001",
        "5ms",
        "500000y",
        "2days",
        "1e300",
    ] {
        let err = usage_error(&["--once", "--interval", bad]);
        assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        assert!(
            err.contains("10ms to 1 day") || err.contains("too long"),
            "{err}"
        );
    }
    for good in ["0", "10ms", "1day", "24h"] {
        let out = portside(&[
            "--count",
            "1",
            "--interval",
            good,
            "--format",
            "json",
            "-t",
            "lport:1",
        ]);
        assert!(
            out.status.success(),
            "{good}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_newline_in_an_argument_is_shown_not_printed() {
    let err = usage_error(&["--once", "--alert", "a\nb"]);
    assert!(err.contains("a\\nb"), "{err}");
    let err = usage_error(&["--once", "proc:\x1b[2J\nx", "port:x"]);
    assert!(!err.contains('\x1b'), "{err:?}");
}

#[test]
fn a_range_with_three_ends_says_so() {
    let err = usage_error(&["--once", "port:1-2-3"]);
    assert!(err.contains("'1-2-3' is not a range"), "{err}");
    assert!(!err.contains("unknown service"), "{err}");
}

#[test]
fn a_non_utf8_argument_is_named() {
    let bad = OsStr::from_bytes(b"port:\xff\xfe80");
    let err = usage_error(&[OsStr::new("--once"), bad]);
    assert!(err.contains("argument 2"), "{err}");
    assert!(err.contains("port:"), "{err}");
    assert!(err.contains("not valid UTF-8"), "{err}");
}

#[test]
fn a_huge_argument_is_quoted_once_and_short() {
    let huge = "x".repeat(100_000);
    let port = format!("port:{}", "9".repeat(100_000));
    let cases: Vec<Vec<&str>> = vec![
        vec!["--once", &huge],
        vec!["--once", &port],
        vec!["--once", "--interval", &huge],
        vec!["--once", "--count", &huge],
        vec!["--once", "--alert", &huge],
        vec!["--once", "--format", &huge],
        vec![&huge],
    ];
    for args in cases {
        let err = usage_error(&args);
        let head: String = err.chars().take(600).collect();
        assert!(err.len() < 600, "{} bytes: {head}", err.len());
        assert!(err.contains("…"), "{err}");
    }
}

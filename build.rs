//! Puts the git commit into `--version` when building from a checkout. Anything missing
//! (no git, no .git, a source tarball) leaves the plain package version.

use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let full = match git(&["rev-parse", "--short=10", "HEAD"]) {
        Some(commit) => format!("{version} (git {commit})"),
        None => version,
    };
    println!("cargo:rustc-env=PORTSIDE_VERSION={full}");
    // Rebuild when HEAD moves (the files exist only in a checkout; cargo ignores missing ones).
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{head_ref}");
        }
        if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
            println!("cargo:rerun-if-changed={common}/packed-refs");
            if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
                println!("cargo:rerun-if-changed={common}/{head_ref}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

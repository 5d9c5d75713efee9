//! End to end in tmux: a rebound quit key, the help listing it, themes at 16 and 256
//! colours (TERM), and `NO_COLOR` drawing no colour at all (`capture-pane -e`).
//! Needs tmux; without it the tests say why, and fail when CI=true.

#[path = "support/tmux.rs"]
#[expect(dead_code, reason = "the shared harness: these tests use part of it")]
mod tmux;

use std::net::TcpListener;
use std::time::Duration;

use portside::model::TcpState;
use portside::tui::theme::BuiltinTheme;
use ratatui::style::Color;
use tmux::{PROMPT, Tmux, need_tmux};

/// A clean shell with `TERM` and extra environment.
fn shell_with(term: &str, env: &str) -> String {
    format!("env -i PATH=/usr/bin:/bin TERM={term} {env} PS1='{PROMPT}' bash --norc --noprofile")
}

fn capture_escapes(tmux: &Tmux) -> String {
    tmux.run(&["capture-pane", "-p", "-e", "-t", "e2e"])
}

/// Starts `args` in the pane's shell and waits for the live view.
fn start(tmux: &Tmux, args: &str) {
    tmux.wait_for("the shell", Duration::from_secs(10), |s| {
        s.contains(PROMPT.trim_end())
    });
    let bin = env!("CARGO_BIN_EXE_portside");
    tmux.type_text(&format!("{bin} {args}; echo portside-exit=$?"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the first sample", Duration::from_secs(20), |s| {
        s.contains("PROTO") && s.contains("LISTEN") && !s.contains("waiting for the first sample")
    });
}

/// The foreground colour (an ANSI/256 index; `None`: the default) of the first character
/// of `needle` in `capture-pane -e` output, following the SGR sequences before it. Panics
/// when `needle` is not on the screen.
fn fg_at(screen: &str, needle: &str) -> Option<u8> {
    for line in screen.lines() {
        let mut fg: Option<u8> = None;
        let mut rest = line;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("\x1b[") {
                let Some(end) = after.find(|c: char| c.is_ascii_alphabetic()) else {
                    break;
                };
                if after.as_bytes()[end] == b'm' {
                    let params: Vec<u16> = after[..end]
                        .split(';')
                        .map(|p| p.parse().unwrap_or(0))
                        .collect();
                    let mut i = 0;
                    while i < params.len() {
                        match params[i] {
                            0 | 39 => fg = None,
                            n @ 30..=37 => fg = Some((n - 30) as u8),
                            n @ 90..=97 => fg = Some((n - 90 + 8) as u8),
                            38 if params.get(i + 1) == Some(&5) => {
                                fg = params.get(i + 2).map(|&n| n as u8);
                                i += 2;
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                }
                rest = &after[end + 1..];
                continue;
            }
            if rest.starts_with(needle) {
                return fg;
            }
            let c = rest.chars().next().expect("not empty");
            rest = &rest[c.len_utf8()..];
        }
    }
    panic!("{needle} is not on the screen:\n{screen}");
}

/// The 256-colour index of an ANSI colour as tmux reports it.
fn index(color: Color) -> Option<u8> {
    Some(match color {
        Color::Black => 0,
        Color::Red => 1,
        Color::Green => 2,
        Color::Yellow => 3,
        Color::Blue => 4,
        Color::Magenta => 5,
        Color::Cyan => 6,
        Color::Gray => 7,
        Color::DarkGray => 8,
        Color::LightRed => 9,
        Color::LightGreen => 10,
        Color::LightYellow => 11,
        Color::LightBlue => 12,
        Color::LightMagenta => 13,
        Color::LightCyan => 14,
        Color::White => 15,
        Color::Indexed(n) => n,
        _ => return None,
    })
}

/// Any SGR sequence that sets a foreground or background colour.
fn has_colour(screen: &str) -> bool {
    screen.split("\x1b[").skip(1).any(|seq| {
        let Some(end) = seq.find(|c: char| c.is_ascii_alphabetic()) else {
            return false;
        };
        seq.as_bytes()[end] == b'm'
            && seq[..end].split(';').any(|p| {
                matches!(
                    p.parse::<u16>(),
                    Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)
                )
            })
    })
}

#[test]
fn themes_at_16_and_256_colours() {
    if !need_tmux() {
        return;
    }
    let _listener = TcpListener::bind("127.0.0.1:0").unwrap();
    for term in ["xterm", "xterm-256color"] {
        for theme in BuiltinTheme::ALL {
            let tmux = Tmux::start(&shell_with(term, ""));
            start(&tmux, &format!("--no-config --theme {}", theme.name()));
            let screen = capture_escapes(&tmux);
            let want = theme.theme().state(TcpState::Listen).fg.and_then(index);
            let got = fg_at(&screen, "LISTEN");
            assert_eq!(got, want, "{theme} at TERM={term}:\n{screen}");
            assert_eq!(
                has_colour(&screen),
                theme != BuiltinTheme::Monochrome,
                "{theme} at TERM={term}:\n{screen}"
            );
            tmux.keys(&["q"]);
            tmux.wait_for("exit", Duration::from_secs(10), |s| {
                s.contains("portside-exit=0")
            });
        }
    }
}

#[test]
fn no_color_draws_no_colour() {
    if !need_tmux() {
        return;
    }
    let _listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // The same run without NO_COLOR is in colour: the check below can fail.
    let tmux = Tmux::start(&shell_with("xterm-256color", ""));
    start(&tmux, "--no-config");
    assert!(has_colour(&capture_escapes(&tmux)));
    drop(tmux);

    let tmux = Tmux::start(&shell_with("xterm-256color", "NO_COLOR=1"));
    start(&tmux, "--no-config");
    tmux.keys(&["?"]);
    tmux.wait_for("the help", Duration::from_secs(10), |s| {
        s.contains("keys · esc closes")
    });
    let help = capture_escapes(&tmux);
    assert!(!has_colour(&help), "{help}");
    tmux.keys(&["?"]);
    tmux.wait_for("the help to close", Duration::from_secs(10), |s| {
        !s.contains("keys · esc closes")
    });
    tmux.keys(&["Tab"]);
    tmux.wait_for("the connections view", Duration::from_secs(10), |s| {
        s.contains("RECV-Q") || s.contains("Recv-Q")
    });
    let conns = capture_escapes(&tmux);
    assert!(!has_colour(&conns), "{conns}");
    // Bold and reverse stay: the selection is visible without colour.
    assert!(
        conns.split("\x1b[").any(|seq| seq
            .split('m')
            .next()
            .is_some_and(|p| p.split(';').any(|n| n == "7"))),
        "{conns}"
    );
    tmux.keys(&["q"]);
    tmux.wait_for("exit", Duration::from_secs(10), |s| {
        s.contains("portside-exit=0")
    });
}

#[test]
fn a_rebound_quit_key_quits_and_the_help_lists_it() {
    if !need_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[keys]\nquit = \"x\"\nhelp = [\"?\", \"f2\"]\n").unwrap();
    let _listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tmux = Tmux::start(&shell_with("xterm-256color", ""));
    start(&tmux, &format!("--config {}", config.display()));
    // q is no longer bound: the view stays.
    tmux.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(800));
    let screen = tmux.screen();
    assert!(
        screen.contains("PROTO") && !screen.contains("portside-exit"),
        "{screen}"
    );
    // The footer and the help name the user's keys.
    assert!(
        screen.lines().last().unwrap_or("").contains("x quit") || screen.contains("x quit"),
        "{screen}"
    );
    tmux.keys(&["F2"]);
    // Polled until the whole overlay is drawn: a capture can land mid-frame.
    let help = tmux.wait_for(
        "the help with the user's keys",
        Duration::from_secs(10),
        |s| s.contains("keys · esc closes") && s.contains("this help") && s.contains("?, f2"),
    );
    let quit_line = help
        .lines()
        .find(|l| l.contains(" quit "))
        .unwrap_or_default();
    assert!(quit_line.contains(" x "), "{help}");
    // x closes the help (as q did), then quits.
    tmux.keys(&["x"]);
    tmux.wait_for("the help to close", Duration::from_secs(10), |s| {
        !s.contains("keys · esc closes")
    });
    tmux.keys(&["x"]);
    tmux.wait_for("exit", Duration::from_secs(10), |s| {
        s.contains("portside-exit=0")
    });
}

#[test]
fn conflicting_and_quitless_keys_are_refused_before_the_terminal_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    for (text, want) in [
        (
            "[keys]\nquit = \"x\"\nsort = \"x\"\n",
            ":3: keys.sort: key 'x' is bound to both 'quit' and 'sort'",
        ),
        ("[keys]\nquit = []\n", ":2: keys.quit: no key quits"),
    ] {
        let config = dir.path().join("keys.toml");
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portside"))
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("{}{want}", config.display())),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "the terminal was touched");
    }
}

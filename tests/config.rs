//! The config file through the real binary: each setting changes what `--once` prints,
//! flags win over the file, bad files are one line naming file, line and key (exit 2),
//! `config init` / `config show`, and root under sudo not reading the user's file.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn portside(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portside"));
    cmd.args(args)
        .env_remove("PORTSIDE_CONFIG")
        .env_remove("SUDO_UID")
        .env_remove("SUDO_USER")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run portside")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Sockets on loopback: a TCP listener with one connection, a UDP socket, an IPv6 listener,
/// and a listener on a port with a service name (for `numeric`).
struct Sockets {
    tcp: u16,
    udp: u16,
    v6: Option<u16>,
    named: Option<(u16, &'static str)>,
    _keep: (TcpListener, TcpStream, TcpStream, UdpSocket),
    _more: Vec<TcpListener>,
}

fn sockets() -> Sockets {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let (server, _) = listener.accept().unwrap();
    let udp_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = udp_sock.local_addr().unwrap().port();
    let mut more = Vec::new();
    let v6 = TcpListener::bind("[::1]:0").ok().map(|l| {
        let p = l.local_addr().unwrap().port();
        more.push(l);
        p
    });
    let named = [
        (9418, "git"),
        (6379, "redis"),
        (11211, "memcache"),
        (5432, "postgresql"),
    ]
    .into_iter()
    .find_map(|(port, name)| {
        let l = TcpListener::bind(("127.0.0.1", port)).ok()?;
        more.push(l);
        Some((port, name))
    });
    Sockets {
        tcp,
        udp,
        v6,
        named,
        _keep: (listener, client, server, udp_sock),
        _more: more,
    }
}

/// Rows of a `--once` table (header dropped).
fn rows(text: &str) -> Vec<&str> {
    text.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

/// Checks a `--once` output.
type Check = Box<dyn Fn(&str)>;

/// A setting, the arguments to run with, and what the output must show.
#[expect(clippy::too_many_lines, reason = "one table of cases")]
fn setting_cases(s: &Sockets) -> Vec<(String, Vec<String>, Check)> {
    let mine = format!("lport:{},{}", s.tcp, s.udp);
    let ours = format!("port:{},{}", s.tcp, s.udp);
    let tcp = s.tcp;
    let udp = s.udp;
    let mut cases: Vec<(String, Vec<String>, Check)> = vec![
        (
            "format = \"json\"".into(),
            vec![ours.clone()],
            Box::new(|out| {
                let v: serde_json::Value = serde_json::from_str(out).expect("JSON");
                assert!(v["sockets"].as_array().unwrap().len() >= 4, "{out}");
            }),
        ),
        (
            "format = \"csv\"".into(),
            vec![ours.clone()],
            Box::new(|out| assert!(out.lines().next().unwrap().contains(','), "{out}")),
        ),
        (
            "protocols = [\"udp\"]".into(),
            vec![ours.clone()],
            Box::new(move |out| {
                let r = rows(out);
                assert!(
                    !r.is_empty() && r.iter().all(|l| l.starts_with("udp")),
                    "{out}"
                );
                assert!(out.contains(&format!(":{udp}")), "{out}");
            }),
        ),
        (
            "listening = true".into(),
            vec![ours.clone()],
            Box::new(move |out| {
                let r = rows(out);
                assert_eq!(r.len(), 2, "{out}");
                assert!(!out.contains("ESTAB"), "{out}");
            }),
        ),
        (
            format!("filter = \"lport:{tcp}\""),
            vec![],
            Box::new(move |out| {
                let r = rows(out);
                assert_eq!(r.len(), 2, "{out}");
                assert!(
                    r.iter().all(|l| l.contains(&format!("127.0.0.1:{tcp} "))),
                    "{out}"
                );
            }),
        ),
        (
            "owners = false".into(),
            vec![mine.clone()],
            Box::new(|out| {
                let pid = format!("{}/", std::process::id());
                assert!(!out.contains(&pid), "{out}");
            }),
        ),
        (
            "group = true".into(),
            vec![mine.clone()],
            Box::new(|out| {
                let header = out.lines().next().unwrap_or_default();
                assert!(
                    header.starts_with("Proto")
                        && header.contains(" Port ")
                        && header.contains("Total")
                        && out.contains("TIME_WAIT:"),
                    "{out}"
                );
            }),
        ),
        (
            format!("alerts = [\":{tcp} established>=1\"]"),
            vec![mine.clone()],
            Box::new(move |out| {
                assert!(
                    out.contains(&format!("ALERT warning: port {tcp}: ")),
                    "{out}"
                );
            }),
        ),
        (
            "interval = \"700ms\"".into(),
            vec![mine.clone(), "--count".into(), "2".into()],
            Box::new(|out| {
                let times: Vec<std::time::SystemTime> = out
                    .lines()
                    .filter_map(|l| l.strip_prefix("# "))
                    .map(|t| humantime::parse_rfc3339(t.trim()).expect("RFC 3339 time"))
                    .collect();
                assert_eq!(times.len(), 2, "{out}");
                let gap = times[1].duration_since(times[0]).unwrap();
                assert!(gap >= std::time::Duration::from_millis(690), "{gap:?}");
            }),
        ),
    ];
    if let Some(v6) = s.v6 {
        cases.push((
            "families = [\"ipv6\"]".into(),
            vec![format!("lport:{},{v6}", s.tcp)],
            Box::new(move |out| {
                let r = rows(out);
                assert_eq!(r.len(), 1, "{out}");
                assert!(r[0].contains(&format!("[::1]:{v6}")), "{out}");
            }),
        ));
    }
    if let Some((port, name)) = s.named {
        cases.push((
            "numeric = true".into(),
            vec![format!("lport:{port}")],
            Box::new(move |out| {
                assert_eq!(rows(out).len(), 1, "{out}");
                assert!(!out.contains(name), "{out}");
            }),
        ));
    }
    cases
}

#[test]
fn each_setting_changes_what_once_prints() {
    let s = sockets();
    let dir = tempfile::tempdir().unwrap();
    if let Some((port, name)) = s.named {
        // Without the setting the name is there: the `numeric` case is not vacuous.
        let plain = stdout(&portside(
            &["--no-config", "--once", &format!("lport:{port}")],
            &[],
        ));
        assert!(plain.contains(name), "{plain}");
    } else {
        eprintln!("numeric: no port with a service name was free; that case was not run");
    }
    for (text, args, check) in &setting_cases(&s) {
        let path = write(dir.path(), "c.toml", text);
        let mut argv = vec!["--config", path.to_str().unwrap(), "--once"];
        argv.extend(args.iter().map(String::as_str));
        if args.iter().any(|a| a == "--count") {
            argv.retain(|a| *a != "--once");
        }
        let with = stdout(&portside(&argv, &[]));
        check(&with);
        // The same run without the file prints something else.
        let mut bare = argv.clone();
        bare.splice(0..2, ["--no-config"]);
        let without = stdout(&portside(&bare, &[]));
        if !text.starts_with("interval") {
            assert_ne!(with, without, "{text}: no effect");
        }
    }
}

#[test]
fn flags_win_over_the_file() {
    let s = sockets();
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.toml",
        &format!("format = \"json\"\nfilter = \"lport:{}\"\n", s.udp),
    );
    let cfg = path.to_str().unwrap();
    let file = stdout(&portside(&["--config", cfg, "--once"], &[]));
    assert!(
        file.starts_with('{') && file.contains(&format!("\"local_port\":{}", s.udp)),
        "{file}"
    );
    let flag = stdout(&portside(
        &[
            "--config",
            cfg,
            "--once",
            "--format",
            "table",
            &format!("lport:{}", s.tcp),
        ],
        &[],
    ));
    assert!(flag.starts_with("Proto"), "{flag}");
    assert!(
        flag.contains(&format!(":{}", s.tcp)) && !flag.contains(&format!(":{} ", s.udp)),
        "{flag}"
    );
    let show = stdout(&portside(
        &["--config", cfg, "--format", "csv", "config", "show"],
        &[],
    ));
    assert!(
        show.lines()
            .any(|l| l.starts_with("format = \"csv\"") && l.ends_with("# flag --format")),
        "{show}"
    );
    assert!(
        show.lines()
            .any(|l| l.starts_with("filter = ") && l.ends_with("# file, line 2")),
        "{show}"
    );
    assert!(
        show.lines()
            .any(|l| l.starts_with("interval = \"1s\"") && l.ends_with("# default")),
        "{show}"
    );
    // PORTSIDE_CONFIG names the file too; --no-config reads none.
    let env = stdout(&portside(&["--once"], &[("PORTSIDE_CONFIG", cfg)]));
    assert!(env.starts_with('{'), "{env}");
    let none = stdout(&portside(
        &["--once", "--no-config", &format!("lport:{}", s.udp)],
        &[("PORTSIDE_CONFIG", cfg)],
    ));
    assert!(none.starts_with("Proto"), "{none}");
}

#[test]
fn bad_files_are_one_line_with_file_line_and_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "numeric = true\ninterval = \"soon\"\n",
            ":2: interval: invalid duration 'soon'",
        ),
        ("colours = true\n", ":1: colours: unknown field"),
        (
            "[keys]\nquit = \"q\"\nsort = \"q\"\n",
            ":3: keys.sort: key 'q' is bound to both 'quit' and 'sort'",
        ),
        ("[keys]\nquit = []\n", ":2: keys.quit: no key quits"),
        (
            "[keys]\nsortt = \"s\"\n",
            ":2: keys.sortt: unknown action 'sortt'",
        ),
        (
            "[keys]\nsort = \"hyper+s\"\n",
            ":2: keys.sort: bad key binding 'hyper+s'",
        ),
        ("theme = \"sepia\"\n", ":1: theme: unknown theme 'sepia'"),
        ("filter = \"prot:80\"\n", ":1: filter: "),
    ];
    for (text, want) in cases {
        let path = write(dir.path(), "bad.toml", text);
        let p = path.to_str().unwrap();
        for args in [
            &["--config", p, "--once"][..],
            &["--config", p, "config", "show"][..],
        ] {
            let out = portside(args, &[]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{text}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(err.contains(&format!("{p}{want}")), "{text:?}: {err}");
            assert!(out.stdout.is_empty());
        }
    }
    let missing = dir.path().join("missing.toml");
    let out = portside(&["--config", missing.to_str().unwrap(), "--once"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("missing.toml") && err.contains("cannot read"),
        "{err}"
    );
    let out = portside(&["--no-config", "--once", "--theme", "sepia"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--theme: unknown theme 'sepia'"));
}

#[test]
fn config_init_writes_the_defaults_once() {
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().join("xdg");
    let env = [
        ("XDG_CONFIG_HOME", xdg.to_str().unwrap()),
        ("HOME", home.path().to_str().unwrap()),
    ];
    let path = xdg.join("portside/config.toml");
    let out = stdout(&portside(&["config", "init"], &env));
    assert!(out.contains(path.to_str().unwrap()), "{out}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("#interval = \"1s\"") && text.contains("[keys]"),
        "{text}"
    );

    let again = portside(&["config", "init"], &env);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    std::fs::write(&path, "garbage = = =").unwrap();
    stdout(&portside(&["config", "init", "--force"], &env));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    // Read from the XDG directory: show names it and every value is the default.
    let show = stdout(&portside(&["config", "show"], &env));
    assert!(
        show.starts_with(&format!("# config file: {}", path.display())),
        "{show}"
    );
    let defaults = stdout(&portside(&["--no-config", "config", "show"], &env));
    let values = |t: &str| -> Vec<String> {
        t.lines()
            .skip(1)
            .map(|l| l.split(" #").next().unwrap().trim_end().to_string())
            .collect()
    };
    assert_eq!(values(&show), values(&defaults));
    assert!(defaults.starts_with("# config file: none"));
}

#[test]
fn root_under_sudo_does_not_read_the_users_file() {
    if !rustix_is_root() {
        let msg = "not root: cannot check what root reads under sudo";
        eprintln!("{msg}");
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{msg} (CI=true)"
        );
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().join(".config");
    std::fs::create_dir_all(xdg.join("portside")).unwrap();
    write(&xdg.join("portside"), "config.toml", "format = \"json\"\n");
    let env = [
        ("XDG_CONFIG_HOME", xdg.to_str().unwrap()),
        ("HOME", home.path().to_str().unwrap()),
    ];
    // Not under sudo: the file in XDG_CONFIG_HOME is read.
    let show = stdout(&portside(&["config", "show"], &env));
    assert!(
        show.lines().any(|l| l.starts_with("format = \"json\"")),
        "{show}"
    );
    // Under sudo (sudo -E keeps HOME and XDG_CONFIG_HOME): root's own file, not this one.
    let sudo = [
        env[0],
        env[1],
        ("SUDO_UID", "4242"),
        ("SUDO_USER", "nobody-here"),
    ];
    let show = stdout(&portside(&["config", "show"], &sudo));
    assert!(!show.contains(xdg.to_str().unwrap()), "{show}");
    let first = show.lines().next().unwrap();
    assert!(
        first == "# config file: none" || first.contains("/.config/portside/config.toml"),
        "{first}"
    );
    // Asked for with --config, it is read.
    let asked = xdg.join("portside/config.toml");
    let show = stdout(&portside(
        &["--config", asked.to_str().unwrap(), "config", "show"],
        &sudo,
    ));
    assert!(
        show.lines().any(|l| l.starts_with("format = \"json\"")),
        "{show}"
    );
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

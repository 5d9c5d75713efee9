use std::path::Path;
use std::time::Duration;

use super::*;
use crate::tui::keys::{Action, Preset};

fn parse(text: &str) -> Result<FileSettings, TomlError> {
    FileSettings::parse(Path::new("/cfg/c.toml"), text)
}

fn layered(text: &str, flags: &Flags) -> Result<Settings, String> {
    let file = parse(text).map_err(|e| e.to_string())?;
    Settings::layer(Some(&file), flags, false).map_err(|e| e.to_string())
}

/// Settings without their sources, to compare values.
fn values(s: &Settings) -> Settings {
    let mut s = s.clone();
    macro_rules! plain {
        ($($f:ident),*) => { $( s.$f.source = Source::Default; )* };
    }
    plain!(
        interval, format, numeric, owners, group, protocols, families, listening, filter, alerts,
        theme, key_preset
    );
    for (_, k) in &mut s.keys {
        k.source = Source::Default;
    }
    s
}

#[test]
fn init_text_parses_back_to_the_defaults() {
    let text = Settings::default().init_text();
    let as_written = layered(&text, &Flags::default()).unwrap();
    assert_eq!(as_written, Settings::default());
    // With every setting uncommented, the values are still the defaults, each from the file.
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.split(' ').nth(1) == Some("=") => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let all = layered(&uncommented, &Flags::default()).unwrap();
    assert_eq!(values(&all), Settings::default());
    assert!(matches!(all.interval.source, Source::File(_)));
    assert!(
        all.keys
            .iter()
            .all(|(_, k)| matches!(k.source, Source::File(_)))
    );
    assert!(matches!(all.key_preset.source, Source::File(_)));
}

#[test]
fn file_over_default_flag_over_file() {
    let text = "interval = \"2s\"\nformat = \"json\"\nfilter = \"port:22\"\nprotocols = [\"udp\"]\n\
                alerts = [\"time_wait>5\"]\ntheme = \"light\"\n";
    let file_only = layered(text, &Flags::default()).unwrap();
    assert_eq!(file_only.interval.value, Duration::from_secs(2));
    assert_eq!(file_only.interval.source, Source::File(1));
    assert_eq!(file_only.format.value, Format::Json);
    assert_eq!(file_only.filter.value, "port:22");
    assert_eq!(
        file_only.protocols.value,
        Pair {
            first: false,
            second: true
        }
    );
    assert!(
        file_only
            .alerts
            .value
            .iter()
            .any(|a| a.to_string() == "time_wait>5")
    );
    assert!(
        !file_only
            .alerts
            .value
            .iter()
            .any(|a| a.to_string() == "time_wait>20000")
    );
    assert!(!file_only.numeric.value);
    assert_eq!(file_only.numeric.source, Source::Default);

    let flags = Flags {
        interval: Some(Duration::from_millis(500)),
        format: Some(Format::Csv),
        filter: Some("port:80".into()),
        protocols: Some(Pair {
            first: true,
            second: false,
        }),
        alerts: vec![Alert::parse("time_wait>7").unwrap()],
        theme: Some(ThemeChoice::Builtin(BuiltinTheme::HighContrast)),
        numeric: true,
        ..Flags::default()
    };
    let both = layered(text, &flags).unwrap();
    assert_eq!(both.interval.value, Duration::from_millis(500));
    assert_eq!(both.interval.source, Source::Flag("--interval"));
    assert_eq!(both.format.value, Format::Csv);
    assert_eq!(both.filter.value, "port:80");
    assert!(both.protocols.value.first && !both.protocols.value.second);
    let tw: Vec<String> = both
        .alerts
        .value
        .iter()
        .map(ToString::to_string)
        .filter(|a| a.starts_with("time_wait"))
        .collect();
    assert_eq!(tw, ["time_wait>7"]);
    assert_eq!(
        both.theme.value,
        ThemeChoice::Builtin(BuiltinTheme::HighContrast)
    );
    assert!(both.numeric.value);
}

#[test]
fn no_color_gives_way_to_a_chosen_theme() {
    let mono = ThemeChoice::Builtin(BuiltinTheme::Monochrome);
    let s = Settings::layer(None, &Flags::default(), true).unwrap();
    assert_eq!(
        (s.theme.value, s.theme.source),
        (mono, Source::Env("NO_COLOR"))
    );
    let file = parse("theme = \"light\"").unwrap();
    let s = Settings::layer(Some(&file), &Flags::default(), true).unwrap();
    assert_eq!(s.theme.value, ThemeChoice::Builtin(BuiltinTheme::Light));
}

#[test]
fn every_bad_setting_names_file_line_and_key() {
    let cases = [
        (
            "interval = \"fast\"",
            "1: interval: invalid duration 'fast'",
        ),
        ("\ninterval = 5", "2: interval: invalid type: integer"),
        ("format = \"yaml\"", "1: format: unknown format 'yaml'"),
        ("numeric = \"yes\"", "1: numeric: invalid type: string"),
        (
            "protocols = [\"sctp\"]",
            "1: protocols: unknown value 'sctp'",
        ),
        ("families = []", "1: families: empty list"),
        ("filter = \"state:nope\"", "1: filter: "),
        (
            "alerts = [\"time_wait>1\", \"bogus\"]",
            "1: alerts: bad alert 'bogus'",
        ),
        ("theme = \"dark\"", "1: theme: unknown theme 'dark'"),
        ("colour = \"red\"", "1: colour: unknown field `colour`"),
        (
            "[keys]\nquit = \"q\"\nfrobnicate = \"f\"",
            "3: keys.frobnicate: unknown action 'frobnicate'",
        ),
        (
            "[keys]\nsort = \"ctrl+\"",
            "2: keys.sort: bad key binding 'ctrl+'",
        ),
        (
            "[keys]\nsort = [\"s\", 5]",
            "2: keys.sort: expected a key or a list of keys",
        ),
        (
            "[keys]\npreset = \"emacs\"",
            "2: keys.preset: unknown key preset 'emacs'",
        ),
        (
            "[keys]\nsort = \"q\"",
            "2: keys.sort: key 'q' is bound to both 'quit' and 'sort'",
        ),
        ("[keys]\nquit = []", "2: keys.quit: no key quits"),
        (
            "[keys]\npreset = \"vim\"\nhelp = \"h\"",
            "3: keys.help: key 'h' is bound to both 'back' and 'help'",
        ),
        ("interval = ", "1: "),
        ("[keys\n", "1: "),
    ];
    for (text, want) in cases {
        let e = layered(text, &Flags::default()).unwrap_err();
        let want = format!("/cfg/c.toml:{want}");
        assert!(e.starts_with(&want), "{text:?}:\n got {e}\nwant {want}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn keys_lay_over_the_preset() {
    let s = layered(
        "[keys]\npreset = \"vim\"\nquit = [\"x\"]\nsort = \"q\"",
        &Flags::default(),
    )
    .unwrap();
    let b = s.bindings();
    assert_eq!(b.keys(Action::Quit), ["x".parse().unwrap()]);
    assert_eq!(b.keys(Action::CycleSort), ["q".parse().unwrap()]);
    assert!(b.keys(Action::Back).contains(&"h".parse().unwrap()));
    assert_eq!(s.key_preset.value, Preset::Vim);
    let back = &s.keys.iter().find(|(a, _)| *a == Action::Back).unwrap().1;
    assert_eq!(back.source, Source::File(2));
    let quit = &s.keys.iter().find(|(a, _)| *a == Action::Quit).unwrap().1;
    assert_eq!(quit.source, Source::File(3));
}

#[test]
fn theme_files_are_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        "base = \"light\"\n[states]\nlisten = \"208\"\n",
    )
    .unwrap();
    let cfg = dir.path().join("config.toml");
    let file = FileSettings::parse(&cfg, "theme = \"mine.toml\"").unwrap();
    let s = Settings::layer(Some(&file), &Flags::default(), false).unwrap();
    let theme = s.load_theme().unwrap();
    assert_eq!(
        theme.state(crate::model::TcpState::Listen).fg,
        Some(ratatui::style::Color::Indexed(208))
    );
    let file = FileSettings::parse(&cfg, "theme = \"missing.toml\"").unwrap();
    let s = Settings::layer(Some(&file), &Flags::default(), false).unwrap();
    let e = s.load_theme().unwrap_err().to_string();
    assert!(
        e.contains("missing.toml") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn show_says_where_each_value_came_from() {
    let flags = Flags {
        numeric: true,
        ..Flags::default()
    };
    let s = layered("\ninterval = \"3s\"\n[keys]\nquit = \"x\"", &flags).unwrap();
    let text = s.show_text(Some(Path::new("/cfg/c.toml")));
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("{key} in {text}"))
            .to_string()
    };
    assert!(text.starts_with("# config file: /cfg/c.toml\n"));
    assert!(line("interval").ends_with("# file, line 2"), "{text}");
    assert!(line("numeric").ends_with("# flag -n"), "{text}");
    assert!(line("format").ends_with("# default"), "{text}");
    assert!(line("quit").starts_with("quit = [\"x\"]"), "{text}");
    assert!(line("quit").ends_with("# file, line 4"), "{text}");
    // What show prints is a config file too.
    let body: String = text.lines().skip(1).collect::<Vec<_>>().join("\n");
    let again = layered(&body, &Flags::default()).unwrap();
    assert_eq!(values(&again), values(&s));
}

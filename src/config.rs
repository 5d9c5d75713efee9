//! Settings layered once: the defaults, then the config file, then the command line. Each
//! effective value remembers where it came from, for `portside config show`.

pub mod file;
pub mod location;
mod render;

use std::path::PathBuf;
use std::time::Duration;

use crate::analysis::alerts::{self, Alert};
use crate::output::Format;
use crate::toml_error::TomlError;
use crate::tui::keys::{self, Action, BindingError, Bindings, Chord, KeyMap, Preset};
use crate::tui::theme::{BuiltinTheme, Theme};

pub use file::FileSettings;
pub use location::{ConfigChoice, Located};

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    /// The config file, at this line.
    File(usize),
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable (`NO_COLOR`).
    Env(&'static str),
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Setting<T> {
    fn default(value: T) -> Setting<T> {
        Setting {
            value,
            source: Source::Default,
        }
    }

    /// Replaces the value when `over` has one.
    fn layer(&mut self, over: Option<(T, Source)>) {
        if let Some((value, source)) = over {
            *self = Setting { value, source };
        }
    }
}

/// Which protocols or families: both, or one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub first: bool,
    pub second: bool,
}

impl Pair {
    pub const BOTH: Pair = Pair {
        first: true,
        second: true,
    };
}

/// A built-in theme or a theme file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThemeChoice {
    Builtin(BuiltinTheme),
    File(PathBuf),
}

impl ThemeChoice {
    /// A built-in theme's name, or a path to a theme file (with a `/` or ending in `.toml`;
    /// relative to `base`).
    pub fn parse(s: &str, base: &std::path::Path) -> Result<ThemeChoice, String> {
        let toml = std::path::Path::new(s)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if s.contains('/') || toml {
            Ok(ThemeChoice::File(base.join(s)))
        } else {
            s.parse::<BuiltinTheme>().map(ThemeChoice::Builtin)
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ThemeChoice::Builtin(t) => t.name().to_string(),
            ThemeChoice::File(p) => p.display().to_string(),
        }
    }
}

/// The settings a command-line flag can give (`None`: not given).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub interval: Option<Duration>,
    pub format: Option<Format>,
    /// `-n`: only switches names off.
    pub numeric: bool,
    /// `--no-owners`.
    pub no_owners: bool,
    pub group: bool,
    pub protocols: Option<Pair>,
    pub families: Option<Pair>,
    pub listening: bool,
    pub filter: Option<String>,
    pub alerts: Vec<Alert>,
    pub theme: Option<ThemeChoice>,
}

/// Every effective setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub interval: Setting<Duration>,
    pub format: Setting<Format>,
    pub numeric: Setting<bool>,
    pub owners: Setting<bool>,
    pub group: Setting<bool>,
    /// TCP, UDP.
    pub protocols: Setting<Pair>,
    /// IPv4, IPv6.
    pub families: Setting<Pair>,
    pub listening: Setting<bool>,
    pub filter: Setting<String>,
    /// The alert rules in force: the defaults, with the file's and then the flags' replacing
    /// those of the same kind and scope.
    pub alerts: Setting<Vec<Alert>>,
    pub theme: Setting<ThemeChoice>,
    pub key_preset: Setting<Preset>,
    /// The keys of every bindable action.
    pub keys: Vec<(Action, Setting<Vec<Chord>>)>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    File(#[from] TomlError),
    /// A theme given with `--theme` that cannot be read.
    #[error("--theme: {0}")]
    ThemeFlag(TomlError),
}

impl Default for Settings {
    fn default() -> Settings {
        let bindings = Bindings::default();
        Settings {
            interval: Setting::default(Duration::from_secs(1)),
            format: Setting::default(Format::Table),
            numeric: Setting::default(false),
            owners: Setting::default(true),
            group: Setting::default(false),
            protocols: Setting::default(Pair::BOTH),
            families: Setting::default(Pair::BOTH),
            listening: Setting::default(false),
            filter: Setting::default(String::new()),
            alerts: Setting::default(alerts::default_alerts()),
            theme: Setting::default(ThemeChoice::Builtin(BuiltinTheme::Default)),
            key_preset: Setting::default(Preset::Default),
            keys: keys::ACTIONS
                .iter()
                .map(|&(_, a)| (a, Setting::default(bindings.keys(a).to_vec())))
                .collect(),
        }
    }
}

impl Settings {
    /// The defaults, the file's settings over them, the flags over both; `no_color` is
    /// whether `NO_COLOR` asks for no colour (a theme from the file or a flag wins over it,
    /// as <https://no-color.org> asks).
    pub fn layer(
        file: Option<&FileSettings>,
        flags: &Flags,
        no_color: bool,
    ) -> Result<Settings, SettingsError> {
        let mut s = Settings::default();
        if let Some(f) = file {
            let at = |line: usize| Source::File(line);
            s.interval.layer(f.interval.map(|(v, l)| (v, at(l))));
            s.format.layer(f.format.map(|(v, l)| (v, at(l))));
            s.numeric.layer(f.numeric.map(|(v, l)| (v, at(l))));
            s.owners.layer(f.owners.map(|(v, l)| (v, at(l))));
            s.group.layer(f.group.map(|(v, l)| (v, at(l))));
            s.protocols.layer(f.protocols.map(|(v, l)| (v, at(l))));
            s.families.layer(f.families.map(|(v, l)| (v, at(l))));
            s.listening.layer(f.listening.map(|(v, l)| (v, at(l))));
            s.filter.layer(f.filter.clone().map(|(v, l)| (v, at(l))));
            if let Some((rules, line)) = &f.alerts {
                s.alerts = Setting {
                    value: replace_alerts(s.alerts.value, rules),
                    source: at(*line),
                };
            }
            s.theme.layer(f.theme.clone().map(|(v, l)| (v, at(l))));
            s.key_preset.layer(f.key_preset.map(|(v, l)| (v, at(l))));
        }
        s.layer_flags(flags);
        if no_color && s.theme.source == Source::Default {
            s.theme = Setting {
                value: ThemeChoice::Builtin(BuiltinTheme::Monochrome),
                source: Source::Env("NO_COLOR"),
            };
        }
        s.layer_keys(file)?;
        Ok(s)
    }

    fn layer_flags(&mut self, flags: &Flags) {
        let on = |set: bool, name: &'static str| set.then_some((true, Source::Flag(name)));
        self.interval
            .layer(flags.interval.map(|v| (v, Source::Flag("--interval"))));
        self.format
            .layer(flags.format.map(|v| (v, Source::Flag("--format"))));
        self.numeric.layer(on(flags.numeric, "-n"));
        self.owners.layer(
            flags
                .no_owners
                .then_some((false, Source::Flag("--no-owners"))),
        );
        self.group.layer(on(flags.group, "--group"));
        self.protocols
            .layer(flags.protocols.map(|v| (v, Source::Flag("-t/-u"))));
        self.families
            .layer(flags.families.map(|v| (v, Source::Flag("-4/-6"))));
        self.listening.layer(on(flags.listening, "-l"));
        self.filter
            .layer(flags.filter.clone().map(|v| (v, Source::Flag("FILTER"))));
        if !flags.alerts.is_empty() {
            self.alerts = Setting {
                value: replace_alerts(std::mem::take(&mut self.alerts.value), &flags.alerts),
                source: Source::Flag("--alert"),
            };
        }
        self.theme
            .layer(flags.theme.clone().map(|v| (v, Source::Flag("--theme"))));
    }

    /// The preset's keys, then the file's per action; checked for conflicts and for a key
    /// that quits, the error naming the file's line that caused it.
    fn layer_keys(&mut self, file: Option<&FileSettings>) -> Result<(), SettingsError> {
        let mut bindings = Bindings::preset(self.key_preset.value);
        for (action, chords, line) in file.map_or(&[][..], |f| &f.keys[..]) {
            bindings.set(*action, chords.clone());
            if let Some((_, setting)) = self.keys.iter_mut().find(|(a, _)| a == action) {
                setting.source = Source::File(*line);
            }
        }
        for (action, setting) in &mut self.keys {
            setting.value = bindings.keys(*action).to_vec();
            if setting.source == Source::Default && self.key_preset.value != Preset::Default {
                setting.source = self.key_preset.source.clone();
            }
        }
        if let Err(e) = bindings.check() {
            let Some(file) = file else {
                unreachable!("the presets are checked (tested)");
            };
            let culprit = match &e {
                BindingError::Conflict { first, second, .. } => [*second, *first]
                    .into_iter()
                    .find_map(|name| Some((file.key_line(Action::from_name(name)?)?, name))),
                BindingError::NoQuit => file.key_line(Action::Quit).map(|l| (l, "quit")),
                BindingError::UnknownAction(_) => None,
            };
            let (line, key) = match culprit {
                Some((line, name)) => (Some(line), format!("keys.{name}")),
                None => (file.key_preset.map(|(_, l)| l), "keys.preset".into()),
            };
            return Err(TomlError {
                path: file.path.clone(),
                line,
                key: Some(key),
                message: e.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// The key bindings (checked when layered).
    pub fn bindings(&self) -> Bindings {
        let mut bindings = Bindings::preset(self.key_preset.value);
        for (action, setting) in &self.keys {
            bindings.set(*action, setting.value.clone());
        }
        bindings
    }

    pub fn keymap(&self) -> KeyMap {
        KeyMap::new(&self.bindings()).expect("bindings are checked when layered")
    }

    /// The theme's styles; a theme file is read here.
    pub fn load_theme(&self) -> Result<Theme, SettingsError> {
        match &self.theme.value {
            ThemeChoice::Builtin(t) => Ok(t.theme()),
            ThemeChoice::File(path) => {
                Theme::from_file(path).map_err(|e| match self.theme.source {
                    Source::Flag(_) => SettingsError::ThemeFlag(e),
                    _ => SettingsError::File(e),
                })
            }
        }
    }
}

/// `base` with the rules of `over` replacing those of the same kind and scope.
fn replace_alerts(base: Vec<Alert>, over: &[Alert]) -> Vec<Alert> {
    let mut out: Vec<Alert> = base
        .into_iter()
        .filter(|b| !over.iter().any(|o| o.kind == b.kind && o.scope == b.scope))
        .collect();
    out.extend_from_slice(over);
    out
}

#[cfg(test)]
mod tests;

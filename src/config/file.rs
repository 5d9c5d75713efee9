//! The config file: its TOML schema (kebab-case keys, unknown keys refused) and its values
//! checked one by one, each error naming the file, the line and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use serde::Deserialize;
use toml::Spanned;

use crate::analysis::alerts::Alert;
use crate::analysis::filter::Filter;
use crate::config::{Pair, ThemeChoice};
use crate::output::Format;
use crate::toml_error::{TomlError, line_of};
use crate::tui::keys::{Action, BindingError, Chord, Preset};

/// The file as written. Every key is optional: what is left out keeps its default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    interval: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    numeric: Option<Spanned<bool>>,
    owners: Option<Spanned<bool>>,
    group: Option<Spanned<bool>>,
    protocols: Option<Spanned<Vec<Spanned<String>>>>,
    families: Option<Spanned<Vec<Spanned<String>>>>,
    listening: Option<Spanned<bool>>,
    filter: Option<Spanned<String>>,
    alerts: Option<Spanned<Vec<Spanned<String>>>>,
    theme: Option<Spanned<String>>,
    #[serde(default)]
    keys: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

/// The settings a config file gives, each with its line.
#[derive(Debug, Clone, Default)]
pub struct FileSettings {
    pub path: PathBuf,
    pub interval: Option<(Duration, usize)>,
    pub format: Option<(Format, usize)>,
    pub numeric: Option<(bool, usize)>,
    pub owners: Option<(bool, usize)>,
    pub group: Option<(bool, usize)>,
    pub protocols: Option<(Pair, usize)>,
    pub families: Option<(Pair, usize)>,
    pub listening: Option<(bool, usize)>,
    pub filter: Option<(String, usize)>,
    pub alerts: Option<(Vec<Alert>, usize)>,
    pub theme: Option<(ThemeChoice, usize)>,
    pub key_preset: Option<(Preset, usize)>,
    /// `[keys]`: the keys of each action named there.
    pub keys: Vec<(Action, Vec<Chord>, usize)>,
}

impl FileSettings {
    /// Reads and checks the config file at `path`.
    pub fn read(path: &Path) -> Result<FileSettings, TomlError> {
        let text = std::fs::read_to_string(path).map_err(|e| TomlError::unreadable(path, &e))?;
        FileSettings::parse(path, &text)
    }

    /// Checks the text of a config file read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<FileSettings, TomlError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| TomlError::from_toml(path, text, &e))?;
        let p = Parser { path, text };
        let dir = path.parent().unwrap_or(Path::new("."));
        Ok(FileSettings {
            path: path.to_path_buf(),
            interval: p.value(raw.interval, "interval", crate::cli::parse_interval)?,
            format: p.value(raw.format, "format", |s| {
                Format::from_str(s, false)
                    .map_err(|_| format!("unknown format '{s}' (formats: table, json, csv)"))
            })?,
            numeric: p.plain(raw.numeric),
            owners: p.plain(raw.owners),
            group: p.plain(raw.group),
            protocols: p.pair(raw.protocols, "protocols", ["tcp", "udp"])?,
            families: p.pair(raw.families, "families", ["ipv4", "ipv6"])?,
            listening: p.plain(raw.listening),
            filter: p.value(raw.filter, "filter", |s| {
                Filter::parse_system(s)
                    .map(|_| s.to_string())
                    .map_err(|e| e.to_string())
            })?,
            alerts: raw
                .alerts
                .map(|list| {
                    let line = line_of(text, list.span().start);
                    let rules = list
                        .into_inner()
                        .into_iter()
                        .map(|e| {
                            Alert::parse(e.get_ref())
                                .map_err(|err| p.error(e.span(), "alerts", err))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((rules, line))
                })
                .transpose()?,
            theme: p.value(raw.theme, "theme", |s| ThemeChoice::parse(s, dir))?,
            key_preset: p.key_preset(&raw.keys)?,
            keys: p.keys(&raw.keys)?,
        })
    }

    /// The line of `[keys]`'s entry for `action`.
    pub fn key_line(&self, action: Action) -> Option<usize> {
        self.keys
            .iter()
            .find(|(a, _, _)| *a == action)
            .map(|(_, _, l)| *l)
    }
}

struct Parser<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Parser<'_> {
    fn error(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl std::fmt::Display,
    ) -> TomlError {
        TomlError::at(self.path, self.text, span, key, message)
    }

    fn line(&self, span: &std::ops::Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    fn plain<T>(&self, v: Option<Spanned<T>>) -> Option<(T, usize)> {
        v.map(|v| {
            let line = self.line(&v.span());
            (v.into_inner(), line)
        })
    }

    /// A string value checked by `check`.
    fn value<T>(
        &self,
        v: Option<Spanned<String>>,
        key: &str,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<(T, usize)>, TomlError> {
        v.map(|v| {
            let parsed = check(v.get_ref()).map_err(|e| self.error(v.span(), key, e))?;
            Ok((parsed, self.line(&v.span())))
        })
        .transpose()
    }

    /// A non-empty list of the two `names`: which of them are wanted.
    fn pair(
        &self,
        v: Option<Spanned<Vec<Spanned<String>>>>,
        key: &str,
        names: [&str; 2],
    ) -> Result<Option<(Pair, usize)>, TomlError> {
        let Some(v) = v else { return Ok(None) };
        let line = self.line(&v.span());
        if v.get_ref().is_empty() {
            return Err(self.error(
                v.span(),
                key,
                format!("empty list: name {} or {}", names[0], names[1]),
            ));
        }
        let mut pair = Pair {
            first: false,
            second: false,
        };
        for item in v.get_ref() {
            match item.get_ref().as_str() {
                s if s == names[0] => pair.first = true,
                s if s == names[1] => pair.second = true,
                other => {
                    return Err(self.error(
                        item.span(),
                        key,
                        format!(
                            "unknown value '{other}' (values: {}, {})",
                            names[0], names[1]
                        ),
                    ));
                }
            }
        }
        Ok(Some((pair, line)))
    }

    fn key_preset(
        &self,
        keys: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    ) -> Result<Option<(Preset, usize)>, TomlError> {
        let Some((_, v)) = keys.iter().find(|(k, _)| k.get_ref() == "preset") else {
            return Ok(None);
        };
        let preset = match v.get_ref() {
            toml::Value::String(s) => s.parse::<Preset>(),
            other => Err(format!(
                "expected a string (default, vim), found {}",
                other.type_str()
            )),
        }
        .map_err(|e| self.error(v.span(), "keys.preset", e))?;
        Ok(Some((preset, self.line(&v.span()))))
    }

    /// `action = "key"` or `action = ["key", ...]` for each action named in `[keys]`.
    fn keys(
        &self,
        keys: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    ) -> Result<Vec<(Action, Vec<Chord>, usize)>, TomlError> {
        let mut out = Vec::new();
        for (name, value) in keys {
            if name.get_ref() == "preset" {
                continue;
            }
            let key = format!("keys.{}", name.get_ref());
            let action = Action::from_name(name.get_ref()).ok_or_else(|| {
                self.error(
                    name.span(),
                    &key,
                    BindingError::UnknownAction(name.get_ref().clone()),
                )
            })?;
            let strings: Vec<&toml::Value> = match value.get_ref() {
                toml::Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            let chords = strings
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.parse::<Chord>().map_err(|e| {
                        format!("{e}: expected a key like q, G, ctrl+c, alt+x, f1, pgdn, space")
                    }),
                    other => Err(format!(
                        "expected a key or a list of keys, found {}",
                        other.type_str()
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.error(value.span(), &key, e))?;
            out.push((action, chords, self.line(&name.span())));
        }
        Ok(out)
    }
}

//! Settings written as TOML: `config init`'s commented file of the defaults, and
//! `config show`'s effective settings with where each came from.

use std::fmt::Write as _;
use std::path::Path;

use clap::ValueEnum;
use toml::Value;

use crate::config::{Pair, Settings, Source};
use crate::tui::keys::Preset;
use crate::tui::theme::BuiltinTheme;

/// One `key = value` line.
struct Entry {
    key: String,
    value: Value,
    doc: String,
    source: Source,
}

fn pair(p: crate::config::Pair, names: [&str; 2]) -> Value {
    let Pair { first, second } = p;
    Value::Array(
        [(first, names[0]), (second, names[1])]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| Value::String(n.into()))
            .collect(),
    )
}

fn strings<I: IntoIterator<Item = String>>(items: I) -> Value {
    Value::Array(items.into_iter().map(Value::String).collect())
}

impl Settings {
    /// The top-level settings, in file order.
    fn entries(&self) -> Vec<Entry> {
        let e = |key: &str, value: Value, doc: &str, source: &Source| Entry {
            key: key.into(),
            value,
            doc: doc.into(),
            source: source.clone(),
        };
        let themes: Vec<&str> = BuiltinTheme::ALL.iter().map(|t| t.name()).collect();
        vec![
            e(
                "interval",
                Value::String(humantime::format_duration(self.interval.value).to_string()),
                "Time between samples: 500ms, 2s, 1m (--interval).",
                &self.interval.source,
            ),
            e(
                "format",
                Value::String(
                    self.format
                        .value
                        .to_possible_value()
                        .map_or_else(String::new, |v| v.get_name().to_string()),
                ),
                "Printed output: table, json or csv (--format).",
                &self.format.source,
            ),
            e(
                "numeric",
                Value::Boolean(self.numeric.value),
                "Numeric ports, no service names (-n; `n` in the live view).",
                &self.numeric.source,
            ),
            e(
                "owners",
                Value::Boolean(self.owners.value),
                "Look up the processes that own sockets (false: --no-owners).",
                &self.owners.source,
            ),
            e(
                "group",
                Value::Boolean(self.group.value),
                "Print groups per port instead of sockets (--group).",
                &self.group.source,
            ),
            e(
                "protocols",
                pair(self.protocols.value, ["tcp", "udp"]),
                "Protocols to show: tcp, udp (-t, -u).",
                &self.protocols.source,
            ),
            e(
                "families",
                pair(self.families.value, ["ipv4", "ipv6"]),
                "Address families to show: ipv4, ipv6 (-4, -6).",
                &self.families.source,
            ),
            e(
                "listening",
                Value::Boolean(self.listening.value),
                "Listening sockets only (-l).",
                &self.listening.source,
            ),
            e(
                "filter",
                Value::String(self.filter.value.clone()),
                "Filter expression, e.g. \"state:est,tw !port:22\" (the FILTER argument).",
                &self.filter.source,
            ),
            e(
                "alerts",
                strings(self.alerts.value.iter().map(ToString::to_string)),
                "Alert rules (--alert); each replaces the default of its kind and scope.",
                &self.alerts.source,
            ),
            e(
                "theme",
                Value::String(self.theme.value.describe()),
                &format!(
                    "Colours: {}, or a theme file (relative to this file's directory). \
                     NO_COLOR=1 means monochrome unless a theme is set here or with --theme.",
                    themes.join(", ")
                ),
                &self.theme.source,
            ),
        ]
    }

    /// `[keys]`: the preset, then every action's keys.
    fn key_entries(&self) -> Vec<Entry> {
        let presets: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
        let mut out = vec![Entry {
            key: "preset".into(),
            value: Value::String(self.key_preset.value.name().into()),
            doc: format!(
                "Keys to start from: {} (adds h, l, ctrl+d, ctrl+u; arrows and / stay).",
                presets.join(", ")
            ),
            source: self.key_preset.source.clone(),
        }];
        for (action, setting) in &self.keys {
            out.push(Entry {
                key: action.name().unwrap_or("?").into(),
                value: strings(setting.value.iter().map(ToString::to_string)),
                doc: action.describe().into(),
                source: setting.source.clone(),
            });
        }
        out
    }

    /// The commented config file `config init` writes: every setting at its value here
    /// (the defaults, for `init`), commented out so the file pins nothing (a later default,
    /// `NO_COLOR` and the vim preset still apply).
    pub fn init_text(&self) -> String {
        let mut out = String::from(
            "# portside configuration. Every setting is here at its default, commented out:\n\
             # remove the `#` before a setting to change it. Command-line flags override\n\
             # these. See the result with `portside config show`.\n",
        );
        for entry in self.entries() {
            let _ = write!(out, "\n# {}\n#{} = {}\n", entry.doc, entry.key, entry.value);
        }
        out.push_str(
            "\n# Key bindings of the live view: an action's keys replace its defaults.\n\
             # Keys: a character (q, G, ?), space, enter, esc, tab, backtab, backspace, delete,\n\
             # up, down, left, right, home, end, pgup, pgdn, f1-f12, with ctrl+, alt+ or shift+.\n\
             # An empty list unbinds an action; two actions on one key, or no key for quit,\n\
             # are refused.\n[keys]\n",
        );
        for entry in self.key_entries() {
            let _ = writeln!(out, "#{} = {}  # {}", entry.key, entry.value, entry.doc);
        }
        out
    }

    /// The effective settings as TOML, each line saying where its value came from.
    pub fn show_text(&self, file: Option<&Path>) -> String {
        let mut out = match file {
            Some(p) => format!("# config file: {}\n", p.display()),
            None => "# config file: none\n".to_string(),
        };
        let line = |out: &mut String, entry: &Entry| {
            let kv = format!("{} = {}", entry.key, entry.value);
            let from = match &entry.source {
                Source::Default => "default".to_string(),
                Source::File(l) => format!("file, line {l}"),
                Source::Flag(f) => format!("flag {f}"),
                Source::Env(v) => format!("environment {v}"),
            };
            let _ = writeln!(out, "{kv:<40} # {from}");
        };
        for entry in self.entries() {
            line(&mut out, &entry);
        }
        out.push_str("\n[keys]\n");
        for entry in self.key_entries() {
            line(&mut out, &entry);
        }
        out
    }
}

//! Shell completions and the man page, generated from the clap definitions; the FILTER
//! argument and `--theme` offer their words to shells that complete values.

use std::ffi::OsStr;
use std::io::{self, Write};

use clap::builder::{PossibleValue, TypedValueParser, ValueParserFactory};
use clap::{Arg, Command, CommandFactory};

pub use clap_complete::Shell;

use crate::cli::Cli;
use crate::tui::theme::BuiltinTheme;

/// Filter keys, state names and bare words, for completion: `port:`, `state:tw`, `listen`.
pub const FILTER_WORDS: &[&str] = &[
    "port:",
    "lport:",
    "sport:",
    "rport:",
    "dport:",
    "state:",
    "proc:",
    "pid:",
    "user:",
    "addr:",
    "laddr:",
    "raddr:",
    "tcp",
    "udp",
    "v4",
    "v6",
    "established",
    "syn-sent",
    "syn-recv",
    "fin-wait-1",
    "fin-wait-2",
    "time-wait",
    "close",
    "close-wait",
    "last-ack",
    "listen",
    "closing",
    "state:established",
    "state:syn-sent",
    "state:syn-recv",
    "state:fin-wait-1",
    "state:fin-wait-2",
    "state:time-wait",
    "state:close",
    "state:close-wait",
    "state:last-ack",
    "state:listen",
    "state:closing",
];

/// Accepts any string, offers `words` to completion (and hides them from `--help`).
#[derive(Clone)]
pub struct Suggest {
    words: Vec<&'static str>,
}

impl TypedValueParser for Suggest {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.words.iter().map(|w| PossibleValue::new(*w))))
    }
}

impl ValueParserFactory for Suggest {
    type Parser = Suggest;

    fn value_parser() -> Suggest {
        filter_parser()
    }
}

/// The FILTER argument's parser: any word, filter keys and state names suggested.
pub fn filter_parser() -> Suggest {
    Suggest {
        words: FILTER_WORDS.to_vec(),
    }
}

/// `--theme`'s parser: a built-in name suggested, or any path.
pub fn theme_parser() -> Suggest {
    Suggest {
        words: BuiltinTheme::ALL.iter().map(|t| t.name()).collect(),
    }
}

/// The completion script for `shell`.
pub fn write_completions(shell: Shell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "portside", out);
}

/// What the man page says beyond `--help`.
const MAN_DESCRIPTION: &str = "\
On a terminal, portside opens a live view of the host's TCP and UDP sockets, grouped by \
local port and TCP state, with their owners, services, queues and ages. Piped, or with \
--once, it prints one snapshot (like `ss -tanup`); --count N prints N, --interval apart.

Settings are read from $XDG_CONFIG_HOME/portside/config.toml (~/.config/portside/config.toml), \
or the file given with --config or PORTSIDE_CONFIG; --no-config reads none. Flags override \
the file. `portside config init` writes a commented file of every setting at its default; \
`portside config show` prints the effective settings and where each came from. As root \
under sudo, root's own file is read, not the invoking user's, unless given with --config.

The live view's keys can be rebound in the file's [keys] table (preset = \"vim\" adds h, l, \
ctrl+d, ctrl+u); `?` lists the keys in force. Themes: default, light, high-contrast, \
monochrome (also used when NO_COLOR is set), or a theme file.

Exit status: 0 on success, 2 on bad input (flags, filters, config or theme files), 1 on \
other errors, 128+N when ended by signal N.";

/// The man page, in roff.
pub fn write_man(out: &mut dyn Write) -> io::Result<()> {
    clap_mangen::Man::new(Cli::command().long_about(MAN_DESCRIPTION)).render(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::filter::Filter;

    #[test]
    fn every_suggested_filter_word_parses() {
        for &word in FILTER_WORDS {
            let expr = match word.strip_suffix(':') {
                Some("state") => "state:est".to_string(),
                Some("proc") => "proc:nginx".to_string(),
                Some("user") => "user:root".to_string(),
                Some(k) if k.ends_with("addr") => format!("{word}127.0.0.1"),
                Some(_) => format!("{word}80"),
                None => word.to_string(),
            };
            Filter::parse_system(&expr).unwrap_or_else(|e| panic!("{word}: {e}"));
        }
    }

    #[test]
    fn scripts_name_the_formats_and_filter_words() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            write_completions(shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("no-config"), "{shell}");
            // Elvish and PowerShell scripts from clap_complete complete flags, not values;
            // fish's completes flag values but not the FILTER argument.
            if matches!(shell, Shell::Bash | Shell::Zsh | Shell::Fish) {
                assert!(text.contains("json"), "{shell}");
            }
            if matches!(shell, Shell::Bash | Shell::Zsh) {
                assert!(text.contains("time-wait"), "{shell}");
            }
        }
        let mut out = Vec::new();
        write_completions(Shell::Fish, &mut out);
        let fish = String::from_utf8(out).unwrap();
        assert!(fish.contains("high-contrast"), "{fish}");
    }
}

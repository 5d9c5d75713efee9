//! Bindable actions by name, the presets, and the user's bindings laid over them: the keys
//! of each action of the main views, checked for conflicts and for a way to quit.

use std::fmt;
use std::str::FromStr;

use crate::tui::keys::{Action, Chord, NORMAL};

/// Every action of the main views a key can be bound to, by its name in the config file,
/// in the order the help lists them.
pub const ACTIONS: &[(&str, Action)] = &[
    ("quit", Action::Quit),
    ("up", Action::Up),
    ("down", Action::Down),
    ("page-up", Action::PageUp),
    ("page-down", Action::PageDown),
    ("top", Action::Top),
    ("bottom", Action::Bottom),
    ("drill-down", Action::DrillDown),
    ("back", Action::Back),
    ("time-wait-panel", Action::TimeWaitPanel),
    ("listener-panel", Action::ListenerPanel),
    ("switch-view", Action::SwitchView),
    ("sort", Action::CycleSort),
    ("reverse-sort", Action::ReverseSort),
    ("filter", Action::OpenFilter),
    ("clear-filter", Action::ClearFilter),
    ("pause", Action::TogglePause),
    ("numeric", Action::ToggleNumeric),
    ("help", Action::ToggleHelp),
];

impl Action {
    /// The action's name in the config file's `[keys]`; `None` for actions no key is
    /// bound to in the main views (prompt editing, mouse).
    pub fn name(self) -> Option<&'static str> {
        ACTIONS.iter().find(|(_, a)| *a == self).map(|(n, _)| *n)
    }

    /// The bindable action called `name`.
    pub fn from_name(name: &str) -> Option<Action> {
        ACTIONS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }
}

/// A set of bindings to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// Arrows, page keys and the letters in the help (j/k/g/G work too).
    #[default]
    Default,
    /// The defaults plus `h` back, `l` open, `ctrl+d`/`ctrl+u` a page down/up. Arrows and
    /// the `/` prompt work as before.
    Vim,
}

impl Preset {
    pub const ALL: [Preset; 2] = [Preset::Default, Preset::Vim];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Default => "default",
            Preset::Vim => "vim",
        }
    }

    /// Keys the preset adds to the defaults.
    fn extra(self) -> &'static [(&'static str, Action)] {
        match self {
            Preset::Default => &[],
            Preset::Vim => &[
                ("h", Action::Back),
                ("l", Action::DrillDown),
                ("ctrl+d", Action::PageDown),
                ("ctrl+u", Action::PageUp),
            ],
        }
    }
}

impl FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Preset, String> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown key preset '{s}' (presets: default, vim)"))
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a set of bindings cannot be used. The messages name both sides of a conflict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("unknown action '{0}' (actions: {list})", list = action_list())]
    UnknownAction(String),
    #[error("key '{key}' is bound to both '{first}' and '{second}'")]
    Conflict {
        key: String,
        first: &'static str,
        second: &'static str,
    },
    #[error("no key quits: bind at least one key to 'quit'")]
    NoQuit,
}

fn action_list() -> String {
    ACTIONS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The keys of every bindable action, in [`ACTIONS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bindings {
    keys: Vec<(Action, Vec<Chord>)>,
}

impl Bindings {
    /// The default keys plus those of `preset`.
    pub fn preset(preset: Preset) -> Bindings {
        let mut keys: Vec<(Action, Vec<Chord>)> =
            ACTIONS.iter().map(|&(_, a)| (a, Vec::new())).collect();
        for &(key, action) in NORMAL.iter().chain(preset.extra()) {
            let chord: Chord = key.parse().expect("built-in keys parse (tested)");
            if let Some((_, chords)) = keys.iter_mut().find(|(a, _)| *a == action) {
                chords.push(chord);
            }
        }
        Bindings { keys }
    }

    /// Replaces the keys of `action` (an empty list unbinds it).
    pub fn set(&mut self, action: Action, mut chords: Vec<Chord>) {
        chords.dedup();
        if let Some((_, keys)) = self.keys.iter_mut().find(|(a, _)| *a == action) {
            *keys = chords;
        }
    }

    /// The keys of `action`.
    pub fn keys(&self, action: Action) -> &[Chord] {
        self.keys
            .iter()
            .find(|(a, _)| *a == action)
            .map_or(&[], |(_, k)| k.as_slice())
    }

    /// Each key with its action, in listing order.
    pub fn listing(&self) -> Vec<(Chord, Action)> {
        self.keys
            .iter()
            .flat_map(|(a, chords)| chords.iter().map(move |c| (*c, *a)))
            .collect()
    }

    /// Refuses two actions on one key and a set with no key that quits.
    pub fn check(&self) -> Result<(), BindingError> {
        let listing = self.listing();
        for (i, (chord, action)) in listing.iter().enumerate() {
            if let Some((_, other)) = listing[..i].iter().find(|(c, a)| c == chord && a != action) {
                return Err(BindingError::Conflict {
                    key: chord.to_string(),
                    first: other.name().unwrap_or("?"),
                    second: action.name().unwrap_or("?"),
                });
            }
        }
        if self.keys(Action::Quit).is_empty() {
            return Err(BindingError::NoQuit);
        }
        Ok(())
    }
}

impl Default for Bindings {
    fn default() -> Bindings {
        Bindings::preset(Preset::Default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chords(keys: &[&str]) -> Vec<Chord> {
        keys.iter().map(|k| k.parse().unwrap()).collect()
    }

    #[test]
    fn every_default_binding_has_a_named_action() {
        for (key, action) in NORMAL {
            let name = action.name().unwrap_or_else(|| panic!("{key}: unnamed"));
            assert_eq!(Action::from_name(name), Some(*action));
        }
        for preset in Preset::ALL {
            let b = Bindings::preset(preset);
            b.check().unwrap();
            assert_eq!(b.listing().len(), NORMAL.len() + preset.extra().len());
            assert_eq!(preset.name().parse::<Preset>(), Ok(preset));
        }
        assert!("emacs".parse::<Preset>().unwrap_err().contains("'emacs'"));
    }

    #[test]
    fn vim_keeps_arrows_and_the_prompt_key() {
        let vim = Bindings::preset(Preset::Vim);
        assert_eq!(vim.keys(Action::Up), chords(&["up", "k"]).as_slice());
        assert_eq!(vim.keys(Action::OpenFilter), chords(&["/"]).as_slice());
        assert!(vim.keys(Action::Back).contains(&"h".parse().unwrap()));
        assert!(vim.keys(Action::DrillDown).contains(&"l".parse().unwrap()));
    }

    #[test]
    fn user_keys_replace_an_action_and_are_checked() {
        let mut b = Bindings::default();
        b.set(Action::Quit, chords(&["x"]));
        b.check().unwrap();
        assert_eq!(b.keys(Action::Quit), chords(&["x"]).as_slice());

        let mut b = Bindings::default();
        b.set(Action::CycleSort, chords(&["q"]));
        assert_eq!(
            b.check(),
            Err(BindingError::Conflict {
                key: "q".into(),
                first: "quit",
                second: "sort"
            })
        );
        assert_eq!(
            b.check().unwrap_err().to_string(),
            "key 'q' is bound to both 'quit' and 'sort'"
        );

        let mut b = Bindings::default();
        b.set(Action::Quit, Vec::new());
        assert_eq!(b.check(), Err(BindingError::NoQuit));

        let mut b = Bindings::preset(Preset::Vim);
        b.set(Action::ToggleHelp, chords(&["h"]));
        assert!(
            b.check()
                .unwrap_err()
                .to_string()
                .contains("'back' and 'help'")
        );
    }
}

//! Key bindings: tables of chords written as strings (`"ctrl+c"`, `"pgdn"`, `"?"`), parsed
//! once into a map from chord to [`Action`]. The app handles actions in one `match`.

mod bindings;
mod chord;

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub use bindings::{ACTIONS, BindingError, Bindings, Preset};
pub use chord::{BadChord, Chord};

/// Everything a key (or the mouse) can ask the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    DrillDown,
    Back,
    /// Open or close the TIME_WAIT panel.
    TimeWaitPanel,
    /// Open or close the listener panel.
    ListenerPanel,
    SwitchView,
    CycleSort,
    ReverseSort,
    OpenFilter,
    ClearFilter,
    TogglePause,
    ToggleNumeric,
    ToggleHelp,
    CloseHelp,
    PromptAccept,
    PromptCancel,
    PromptBackspace,
    PromptDelete,
    PromptLeft,
    PromptRight,
    PromptHome,
    PromptEnd,
    PromptClear,
    PromptInsert(char),
    ScrollUp,
    ScrollDown,
    /// Select the row shown at this screen line.
    ClickRow(u16),
}

impl Action {
    /// What the action does, for the help overlay and the footer.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Up | Action::Down => "move up / down",
            Action::PageUp | Action::PageDown => "page up / down",
            Action::Top | Action::Bottom => "first / last row",
            Action::DrillDown => "connections of the selected port",
            Action::Back => "back (leaves a panel)",
            Action::TimeWaitPanel | Action::ListenerPanel => {
                "TIME_WAIT / listener panel (again: close)"
            }
            Action::SwitchView => "switch view: ports / connections",
            Action::CycleSort => "sort by the next column",
            Action::ReverseSort => "reverse the sort order",
            Action::OpenFilter => "filter (the command line's language)",
            Action::ClearFilter => "clear the filter",
            Action::TogglePause => "pause / resume the picture",
            Action::ToggleNumeric => "toggle service names",
            Action::ToggleHelp => "this help",
            Action::CloseHelp => "close help",
            Action::PromptAccept => "keep",
            Action::PromptCancel => "cancel",
            Action::PromptBackspace | Action::PromptDelete => "erase",
            Action::PromptLeft | Action::PromptRight | Action::PromptHome | Action::PromptEnd => {
                "move"
            }
            Action::PromptClear => "clear",
            Action::PromptInsert(_) => "type",
            Action::ScrollUp | Action::ScrollDown => "scroll",
            Action::ClickRow(_) => "select",
        }
    }

    /// One word for the footer's key hints.
    pub fn hint(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::DrillDown => "open",
            Action::Back | Action::CloseHelp => "back",
            Action::SwitchView => "view",
            Action::TimeWaitPanel => "time-wait",
            Action::ListenerPanel => "listeners",
            Action::CycleSort => "sort",
            Action::ReverseSort => "reverse",
            Action::OpenFilter => "filter",
            Action::ClearFilter => "clear",
            Action::TogglePause => "pause",
            Action::ToggleNumeric => "names",
            Action::ToggleHelp => "help",
            Action::PromptAccept => "keep",
            Action::PromptCancel => "cancel",
            _ => self.describe(),
        }
    }
}

/// Which table of bindings applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Prompt,
    Help,
}

/// The default bindings of the main views, in the order the help lists them.
pub const NORMAL: &[(&str, Action)] = &[
    ("q", Action::Quit),
    ("ctrl+c", Action::Quit),
    ("up", Action::Up),
    ("k", Action::Up),
    ("down", Action::Down),
    ("j", Action::Down),
    ("pgup", Action::PageUp),
    ("ctrl+b", Action::PageUp),
    ("pgdn", Action::PageDown),
    ("ctrl+f", Action::PageDown),
    ("home", Action::Top),
    ("g", Action::Top),
    ("end", Action::Bottom),
    ("G", Action::Bottom),
    ("enter", Action::DrillDown),
    ("esc", Action::Back),
    ("backspace", Action::Back),
    ("w", Action::TimeWaitPanel),
    ("L", Action::ListenerPanel),
    ("tab", Action::SwitchView),
    ("backtab", Action::SwitchView),
    ("s", Action::CycleSort),
    ("r", Action::ReverseSort),
    ("/", Action::OpenFilter),
    ("c", Action::ClearFilter),
    ("p", Action::TogglePause),
    ("space", Action::TogglePause),
    ("n", Action::ToggleNumeric),
    ("?", Action::ToggleHelp),
    ("f1", Action::ToggleHelp),
];

/// The bindings while the `/` prompt is open; other printable keys are typed, and the quit
/// keys that cannot be typed are added.
pub const PROMPT: &[(&str, Action)] = &[
    ("enter", Action::PromptAccept),
    ("esc", Action::PromptCancel),
    ("backspace", Action::PromptBackspace),
    ("delete", Action::PromptDelete),
    ("left", Action::PromptLeft),
    ("right", Action::PromptRight),
    ("home", Action::PromptHome),
    ("ctrl+a", Action::PromptHome),
    ("end", Action::PromptEnd),
    ("ctrl+e", Action::PromptEnd),
    ("ctrl+u", Action::PromptClear),
];

/// The parsed tables: the main views' bindings (defaults, preset and the user's, already
/// checked by [`Bindings`]) with the prompt's and the help's derived from them.
#[derive(Debug, Clone)]
pub struct KeyMap {
    normal: HashMap<Chord, Action>,
    prompt: HashMap<Chord, Action>,
    help: HashMap<Chord, Action>,
    /// The main views' bindings in the order the help lists them.
    listing: Vec<(Chord, Action)>,
}

impl KeyMap {
    /// The tables for checked bindings. In the prompt, quit keys that cannot be typed
    /// (`ctrl+c`, `f10`) still quit; in the help, the help keys, `esc` and `enter` close
    /// it, and so do quit keys that are plain characters (`q`, as in a pager).
    pub fn new(bindings: &Bindings) -> Result<KeyMap, BindingError> {
        bindings.check()?;
        let listing = bindings.listing();
        let normal: HashMap<Chord, Action> = listing.iter().copied().collect();
        let mut prompt: HashMap<Chord, Action> = PROMPT
            .iter()
            .map(|&(k, a)| (k.parse().expect("built-in prompt keys parse (tested)"), a))
            .collect();
        let mut help = HashMap::new();
        for name in ["esc", "enter"] {
            help.insert(
                name.parse().expect("built-in names parse"),
                Action::CloseHelp,
            );
        }
        for &(chord, action) in &listing {
            match action {
                Action::ToggleHelp => {
                    help.insert(chord, Action::CloseHelp);
                }
                Action::Quit if chord.is_typed() => {
                    help.entry(chord).or_insert(Action::CloseHelp);
                }
                Action::Quit => {
                    help.entry(chord).or_insert(Action::Quit);
                    prompt.entry(chord).or_insert(Action::Quit);
                }
                _ => {}
            }
        }
        Ok(KeyMap {
            normal,
            prompt,
            help,
            listing,
        })
    }

    /// The action of a key press in `mode`. In the prompt, an unbound printable key types.
    pub fn action(&self, mode: Mode, key: KeyEvent) -> Option<Action> {
        let chord = Chord::from_event(key)?;
        let table = match mode {
            Mode::Normal => &self.normal,
            Mode::Prompt => &self.prompt,
            Mode::Help => &self.help,
        };
        table
            .get(&chord)
            .copied()
            .or_else(|| match (mode, chord.code) {
                (Mode::Prompt, KeyCode::Char(c))
                    if !chord
                        .mods
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
                {
                    Some(Action::PromptInsert(c))
                }
                _ => None,
            })
    }

    /// The first key bound to `action` in the main views, for hints like `/ filter`.
    pub fn first_key(&self, action: Action) -> Option<String> {
        self.listing
            .iter()
            .find(|(_, a)| *a == action)
            .map(|(k, _)| k.to_string())
    }

    /// The main views' keys grouped by what they do, in listing order:
    /// `[("q, ctrl+c", "quit"), ("up, k, down, j", "move up / down"), ...]`.
    pub fn keys_by_description(&self) -> Vec<(String, &'static str)> {
        group_by_description(self.listing.iter().map(|(k, a)| (k.to_string(), *a)))
    }

    /// The prompt's keys grouped by what they do (quitting left out).
    pub fn prompt_keys_by_description() -> Vec<(String, &'static str)> {
        group_by_description(
            PROMPT
                .iter()
                .filter(|(_, a)| *a != Action::Quit)
                .map(|&(k, a)| (k.to_string(), a)),
        )
    }
}

impl Default for KeyMap {
    /// The default bindings.
    fn default() -> KeyMap {
        KeyMap::new(&Bindings::default()).expect("the default bindings are checked (tested)")
    }
}

/// Keys grouped by what their actions do, in the order given.
fn group_by_description(
    keys: impl Iterator<Item = (String, Action)>,
) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for (key, action) in keys {
        let what = action.describe();
        if let Some((keys, _)) = out.iter_mut().find(|(_, d)| *d == what) {
            keys.push_str(", ");
            keys.push_str(&key);
        } else {
            out.push((key, what));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn builtin_tables_parse_without_conflicts() {
        for table in [NORMAL, PROMPT] {
            let mut seen = HashMap::new();
            for (s, a) in table {
                let chord: Chord = s.parse().unwrap();
                assert!(seen.insert(chord, *a).is_none(), "{s} bound twice");
            }
        }
    }

    #[test]
    fn events_map_to_actions_by_mode() {
        let map = KeyMap::default();
        let n = KeyModifiers::NONE;
        let cases = [
            (Mode::Normal, key(KeyCode::Char('q'), n), Some(Action::Quit)),
            (
                Mode::Normal,
                key(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Some(Action::Quit),
            ),
            (
                Mode::Normal,
                key(KeyCode::Char('?'), KeyModifiers::SHIFT),
                Some(Action::ToggleHelp),
            ),
            (
                Mode::Normal,
                key(KeyCode::Char('G'), KeyModifiers::SHIFT),
                Some(Action::Bottom),
            ),
            (
                Mode::Normal,
                key(KeyCode::BackTab, KeyModifiers::SHIFT),
                Some(Action::SwitchView),
            ),
            (Mode::Normal, key(KeyCode::Char('x'), n), None),
            (
                Mode::Normal,
                key(KeyCode::Char('w'), n),
                Some(Action::TimeWaitPanel),
            ),
            (
                Mode::Normal,
                key(KeyCode::Char('L'), KeyModifiers::SHIFT),
                Some(Action::ListenerPanel),
            ),
            (Mode::Normal, key(KeyCode::Char('l'), n), None),
            (
                Mode::Prompt,
                key(KeyCode::Char('w'), n),
                Some(Action::PromptInsert('w')),
            ),
            (
                Mode::Prompt,
                key(KeyCode::Char('q'), n),
                Some(Action::PromptInsert('q')),
            ),
            (
                Mode::Prompt,
                key(KeyCode::Char(':'), KeyModifiers::SHIFT),
                Some(Action::PromptInsert(':')),
            ),
            (
                Mode::Prompt,
                key(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Some(Action::Quit),
            ),
            (
                Mode::Prompt,
                key(KeyCode::Char('w'), KeyModifiers::CONTROL),
                None,
            ),
            (
                Mode::Prompt,
                key(KeyCode::Esc, n),
                Some(Action::PromptCancel),
            ),
            (
                Mode::Help,
                key(KeyCode::Char('q'), n),
                Some(Action::CloseHelp),
            ),
            (Mode::Help, key(KeyCode::Char('j'), n), None),
        ];
        for (mode, ev, want) in cases {
            assert_eq!(map.action(mode, ev), want, "{mode:?} {ev:?}");
        }
        let mut release = key(KeyCode::Char('q'), n);
        release.kind = crossterm::event::KeyEventKind::Release;
        assert_eq!(map.action(Mode::Normal, release), None);
    }

    #[test]
    fn keys_grouped_for_help() {
        let map = KeyMap::default();
        let grouped = map.keys_by_description();
        assert_eq!(grouped[0], ("q, ctrl+c".to_string(), "quit"));
        assert_eq!(grouped[1], ("up, k, down, j".to_string(), "move up / down"));
        for (_, a) in NORMAL {
            assert_eq!(
                grouped.iter().filter(|(_, d)| *d == a.describe()).count(),
                1
            );
        }
        assert_eq!(map.first_key(Action::OpenFilter).as_deref(), Some("/"));
        assert_eq!(map.first_key(Action::PromptAccept), None);
    }

    #[test]
    fn rebound_quit_reaches_prompt_and_help() {
        let mut bindings = Bindings::default();
        bindings.set(
            Action::Quit,
            vec!["x".parse().unwrap(), "ctrl+q".parse().unwrap()],
        );
        let map = KeyMap::new(&bindings).unwrap();
        let n = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        let cases = [
            (Mode::Normal, key(KeyCode::Char('x'), n), Some(Action::Quit)),
            (Mode::Normal, key(KeyCode::Char('q'), n), None),
            (Mode::Normal, key(KeyCode::Char('c'), ctrl), None),
            (
                Mode::Normal,
                key(KeyCode::Char('q'), ctrl),
                Some(Action::Quit),
            ),
            (
                Mode::Prompt,
                key(KeyCode::Char('x'), n),
                Some(Action::PromptInsert('x')),
            ),
            (
                Mode::Prompt,
                key(KeyCode::Char('q'), ctrl),
                Some(Action::Quit),
            ),
            (
                Mode::Help,
                key(KeyCode::Char('x'), n),
                Some(Action::CloseHelp),
            ),
            (
                Mode::Help,
                key(KeyCode::Char('q'), ctrl),
                Some(Action::Quit),
            ),
            (Mode::Help, key(KeyCode::Char('q'), n), None),
        ];
        for (mode, ev, want) in cases {
            assert_eq!(map.action(mode, ev), want, "{mode:?} {ev:?}");
        }
        assert_eq!(map.keys_by_description()[0].0, "x, ctrl+q");
    }
}

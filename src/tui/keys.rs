//! Key bindings: tables of chords written as strings (`"ctrl+c"`, `"pgdn"`, `"?"`), parsed
//! once into a map from chord to [`Action`]. The app handles actions in one `match`.

mod chord;

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

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
    /// Group by service (inbound / outbound) or by raw local port.
    ToggleGrouping,
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
            Action::ToggleGrouping => "group by service / by raw local port",
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
            Action::ToggleGrouping => "grouping",
            Action::ToggleHelp => "help",
            Action::PromptAccept => "keep",
            Action::PromptCancel => "cancel",
            _ => self.describe(),
        }
    }
}

/// The first key bound to `action` in `table`, for hints like `/ filter`.
pub fn first_key(table: &[(&'static str, Action)], action: Action) -> Option<&'static str> {
    table.iter().find(|(_, a)| *a == action).map(|(k, _)| *k)
}

/// Which table of bindings applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Prompt,
    Help,
}

/// The bindings of the main views, in the order the help lists them.
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
    ("l", Action::ToggleGrouping),
    ("?", Action::ToggleHelp),
    ("f1", Action::ToggleHelp),
];

/// The bindings while the `/` prompt is open; other printable keys are typed.
pub const PROMPT: &[(&str, Action)] = &[
    ("enter", Action::PromptAccept),
    ("esc", Action::PromptCancel),
    ("ctrl+c", Action::Quit),
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

/// The bindings while the help overlay is shown.
pub const HELP: &[(&str, Action)] = &[
    ("esc", Action::CloseHelp),
    ("?", Action::CloseHelp),
    ("q", Action::CloseHelp),
    ("enter", Action::CloseHelp),
    ("f1", Action::CloseHelp),
    ("ctrl+c", Action::Quit),
];

/// The parsed tables.
#[derive(Debug, Clone)]
pub struct KeyMap {
    normal: HashMap<Chord, Action>,
    prompt: HashMap<Chord, Action>,
    help: HashMap<Chord, Action>,
}

impl KeyMap {
    /// Parses binding tables; the first error names the bad string.
    pub fn from_tables(
        normal: &[(&str, Action)],
        prompt: &[(&str, Action)],
        help: &[(&str, Action)],
    ) -> Result<KeyMap, BadChord> {
        let parse = |table: &[(&str, Action)]| {
            table
                .iter()
                .map(|&(k, a)| Ok((k.parse::<Chord>()?, a)))
                .collect::<Result<HashMap<_, _>, BadChord>>()
        };
        Ok(KeyMap {
            normal: parse(normal)?,
            prompt: parse(prompt)?,
            help: parse(help)?,
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
}

impl Default for KeyMap {
    fn default() -> KeyMap {
        KeyMap::from_tables(NORMAL, PROMPT, HELP).expect("built-in key tables parse (tested)")
    }
}

/// The keys of `table` grouped by what they do, in table order:
/// `[("q, ctrl+c", "quit"), ("up, k, down, j", "move up / down"), ...]`.
pub fn keys_by_description(table: &[(&str, Action)]) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for &(key, action) in table {
        let what = action.describe();
        if let Some((keys, _)) = out.iter_mut().find(|(_, d)| *d == what) {
            keys.push_str(", ");
            keys.push_str(key);
        } else {
            out.push((key.to_string(), what));
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
        for table in [NORMAL, PROMPT, HELP] {
            let mut seen = HashMap::new();
            for (s, a) in table {
                let chord: Chord = s.parse().unwrap();
                assert!(seen.insert(chord, *a).is_none(), "{s} bound twice");
            }
        }
        KeyMap::from_tables(NORMAL, PROMPT, HELP).unwrap();
        assert!(KeyMap::from_tables(&[("nope", Action::Quit)], PROMPT, HELP).is_err());
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
            (
                Mode::Normal,
                key(KeyCode::Char('l'), n),
                Some(Action::ToggleGrouping),
            ),
            (Mode::Normal, key(KeyCode::Char('x'), n), None),
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
        let grouped = keys_by_description(NORMAL);
        assert_eq!(grouped[0], ("q, ctrl+c".to_string(), "quit"));
        assert_eq!(grouped[1], ("up, k, down, j".to_string(), "move up / down"));
        for (_, a) in NORMAL {
            assert_eq!(
                grouped.iter().filter(|(_, d)| *d == a.describe()).count(),
                1
            );
        }
        assert_eq!(first_key(NORMAL, Action::OpenFilter), Some("/"));
        assert_eq!(first_key(HELP, Action::OpenFilter), None);
    }
}

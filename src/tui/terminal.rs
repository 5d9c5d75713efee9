//! Terminal setup and restore: raw mode, alternate screen, mouse capture, bracketed paste.
//! Restored on every way out: normal return, error (`leave` in `run`), panic of the UI
//! thread (hook), and every signal that ends a process by default (`signals`).

pub mod signals;

use std::io::{self, Stdout, stdout};
use std::panic::{self, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, ThreadId};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Whether the terminal is in our mode; makes `restore` idempotent.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The UI thread: a panic there restores the terminal before the message prints.
static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();

type Hook = Arc<dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static>;

/// Switches the terminal to full-screen mode and installs the panic hook.
pub fn enter() -> io::Result<Term> {
    install_panic_hook();
    signals::install_fault_handler();
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let mut out = stdout();
    // Bracketed paste: a paste arrives as one event, not as thousands of keys (crossterm
    // stalls on a multi-kilobyte burst of key input).
    if let Err(e) = execute!(
        out,
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    ) {
        let _ = restore();
        return Err(e);
    }
    Terminal::new(CrosstermBackend::new(out)).inspect_err(|_| {
        let _ = restore();
    })
}

/// Puts the terminal back as the shell expects it. Safe to call more than once.
pub fn restore() -> io::Result<()> {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let raw = disable_raw_mode();
    let screen = execute!(
        stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
    signals::remove_fault_handler();
    raw.and(screen)
}

/// Whether a terminal read or write failed because the terminal went away (its emulator
/// or tmux server died): a hang-up, not a fault of ours.
pub fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
        || matches!(
            e.raw_os_error(),
            Some(libc::EIO | libc::ENXIO | libc::ENOTTY | libc::EBADF | libc::ENODEV)
        )
}

/// Chains a hook in front of the current one: a panic on the UI thread restores the
/// terminal first, so the message lands on a normal screen. Panics on the helper threads
/// are caught there and shown in the UI instead, so the hook keeps them off the screen
/// while it is in raw mode. Installed once per process.
fn install_panic_hook() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let ui = *UI_THREAD.get_or_init(|| thread::current().id());
    INSTALLED.get_or_init(|| {
        let previous: Hook = Arc::from(panic::take_hook());
        panic::set_hook(Box::new(move |info| {
            if thread::current().id() == ui {
                let _ = restore();
                previous(info);
            } else if !ACTIVE.load(Ordering::SeqCst) {
                previous(info);
            }
        }));
    });
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_without_enter_does_nothing() {
        assert!(restore().is_ok());
    }

    #[test]
    fn panic_messages() {
        let caught = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*caught), "boom 1");
        let caught = std::panic::catch_unwind(|| std::panic::panic_any(5u8)).unwrap_err();
        assert_eq!(panic_message(&*caught), "unknown panic");
    }
}

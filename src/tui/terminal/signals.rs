//! Every signal whose default action ends the process, and how each one still leaves the
//! terminal as the shell expects it.
//!
//! - Asynchronous ones (`kill -USR1`, a hang-up, a CPU limit) are forwarded to the UI
//!   thread as events ([`FORWARDED`]), which quits and restores the terminal on the normal
//!   path; portside then exits with 128 + the signal.
//! - Faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP) cannot be forwarded:
//!   the faulting thread must not continue. A one-shot handler ([`install_fault_handler`])
//!   restores the terminal with async-signal-safe calls only (`tcsetattr`, `write`) and
//!   re-raises the signal with its default action, so the exit status and any core dump
//!   stay the kernel's.
//! - SIGKILL (and SIGSTOP) cannot be caught by any program: after `kill -9` run `reset`.

use std::sync::OnceLock;

use libc::{
    SIGALRM, SIGHUP, SIGINT, SIGIO, SIGPROF, SIGPWR, SIGQUIT, SIGSTKFLT, SIGTERM, SIGUSR1, SIGUSR2,
    SIGVTALRM, SIGXCPU, SIGXFSZ,
};

/// Signals that end a process by default and that the UI turns into a clean exit.
/// (SIGPIPE is ignored by every Rust program; a write to a closed pipe is an error.)
pub const FORWARDED: [i32; 14] = [
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU,
    SIGXFSZ, SIGIO, SIGPWR, SIGSTKFLT,
];

/// The fatal signals to forward: [`FORWARDED`] and the real-time signals the C library
/// leaves to programs (`SIGRTMIN..=SIGRTMAX`), which also end a process by default.
pub fn forwarded() -> Vec<i32> {
    let mut all = FORWARDED.to_vec();
    all.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    all
}

/// Fault signals: handled once, in the handler itself, then re-raised.
const FAULTS: [i32; 7] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
    libc::SIGSYS,
    libc::SIGTRAP,
];

/// What the fault handler writes: mouse reporting and bracketed paste off, the normal
/// screen back, the cursor shown (the sequences crossterm's `Disable*`/`Leave*` send).
const RESTORE: &[u8] =
    b"\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?2004l\x1b[?1049l\x1b[?25h";

/// The terminal modes from before raw mode, for the fault handler (set once, read only).
static COOKED: OnceLock<libc::termios> = OnceLock::new();

/// Remembers the cooked terminal modes of stdin (call before entering raw mode) and
/// installs the fault handler. Safe to call more than once.
pub fn install_fault_handler() {
    // SAFETY: tcgetattr writes into the zeroed struct we own; fd 0 may not be a tty, in
    // which case it fails and nothing is stored.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &raw mut t) == 0 {
            let _ = COOKED.set(t);
        }
    }
    for sig in FAULTS {
        // SAFETY: the handler only calls async-signal-safe functions; SA_RESETHAND puts the
        // default action back before it runs, so the re-raise ends the process.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_NODEFER;
            libc::sigemptyset(&raw mut action.sa_mask);
            libc::sigaction(sig, &raw const action, std::ptr::null_mut());
        }
    }
}

/// Puts the default action of the fault signals back (after the terminal is restored).
pub fn remove_fault_handler() {
    for sig in FAULTS {
        // SAFETY: resetting a disposition to SIG_DFL has no preconditions.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

extern "C" fn on_fault(sig: libc::c_int) {
    // SAFETY: tcsetattr, write and raise are async-signal-safe; COOKED is only read.
    unsafe {
        if let Some(t) = COOKED.get() {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, t);
        }
        libc::write(libc::STDOUT_FILENO, RESTORE.as_ptr().cast(), RESTORE.len());
        libc::raise(sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_fatal_signal_is_covered() {
        // signal(7): the signals whose default action is Term or Core.
        let all = forwarded();
        for sig in 1..=libc::SIGRTMAX() {
            let fatal = !matches!(
                sig,
                libc::SIGCHLD
                    | libc::SIGCONT
                    | libc::SIGSTOP
                    | libc::SIGTSTP
                    | libc::SIGTTIN
                    | libc::SIGTTOU
                    | libc::SIGURG
                    | libc::SIGWINCH
                    | libc::SIGKILL
                    | libc::SIGPIPE
            ) && !(32..libc::SIGRTMIN()).contains(&sig);
            if fatal {
                assert!(
                    all.contains(&sig) || FAULTS.contains(&sig),
                    "signal {sig} ends the process by default but is not handled"
                );
            }
        }
    }
}

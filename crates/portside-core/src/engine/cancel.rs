//! A cancellation token threads sleep on: `cancel()` wakes every sleeper at once, so
//! quitting never waits for an interval to run out.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

type Waker = Box<dyn Fn() + Send>;

#[derive(Default)]
struct Inner {
    cancelled: Mutex<bool>,
    cond: Condvar,
    /// Called once on `cancel()`: wakes threads that block on something else (a channel).
    wakers: Mutex<Vec<Waker>>,
}

/// Shared by clones: cancelling one cancels all.
#[derive(Clone, Default)]
pub struct Cancel(Arc<Inner>);

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Cancel").field(&self.is_cancelled()).finish()
    }
}

impl Cancel {
    pub fn cancel(&self) {
        *self
            .0
            .cancelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.0.cond.notify_all();
        let wakers =
            std::mem::take(&mut *self.0.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for wake in wakers {
            wake();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        *self
            .0
            .cancelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `d` or until cancelled; returns whether it was cancelled.
    pub fn sleep(&self, d: Duration) -> bool {
        let guard = self
            .0
            .cancelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .0
            .cond
            .wait_timeout_while(guard, d, |cancelled| !*cancelled)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }

    /// Runs `wake` when cancelled (at once if already cancelled): for a thread that waits
    /// on a channel rather than on [`Cancel::sleep`].
    pub fn on_cancel(&self, wake: impl Fn() + Send + 'static) {
        let mut wakers = self.0.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_cancelled() {
            drop(wakers);
            wake();
        } else {
            wakers.push(Box::new(wake));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Instant;

    #[test]
    fn cancel_wakes_a_long_sleep_at_once() {
        let cancel = Cancel::default();
        let sleeper = {
            let cancel = cancel.clone();
            thread::spawn(move || {
                let t = Instant::now();
                (cancel.sleep(Duration::from_secs(30)), t.elapsed())
            })
        };
        thread::sleep(Duration::from_millis(20));
        cancel.cancel();
        let (cancelled, took) = sleeper.join().unwrap();
        assert!(cancelled);
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(cancel.sleep(Duration::from_secs(30)));
    }

    #[test]
    fn sleep_without_cancel_times_out() {
        let cancel = Cancel::default();
        assert!(!cancel.sleep(Duration::from_millis(10)));
        assert!(!cancel.is_cancelled());
    }

    #[test]
    fn wakers_run_on_cancel_or_at_once_when_already_cancelled() {
        let cancel = Cancel::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let early = tx.clone();
        cancel.on_cancel(move || early.send(1).unwrap());
        assert!(rx.try_recv().is_err());
        cancel.cancel();
        assert_eq!(rx.try_recv(), Ok(1));
        cancel.on_cancel(move || tx.send(2).unwrap());
        assert_eq!(rx.try_recv(), Ok(2));
    }
}

//! The last tick's encoded metrics, shared by the ticker (writer) and the HTTP workers.
//! A scrape clones an `Arc` under a read lock held for nanoseconds: it never waits for a
//! socket dump, and concurrent scrapes share one copy of the bytes.

use std::sync::{Arc, PoisonError, RwLock};

#[derive(Debug, Default)]
pub struct Published {
    body: RwLock<Arc<Vec<u8>>>,
}

impl Published {
    pub fn new(body: Vec<u8>) -> Published {
        Published {
            body: RwLock::new(Arc::new(body)),
        }
    }

    /// The body every scrape gets until the next tick.
    pub fn body(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.body.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn publish(&self, body: Vec<u8>) {
        *self.body.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(body);
    }
}

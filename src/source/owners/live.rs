//! Real /proc tests.

//! Fake tree tests.

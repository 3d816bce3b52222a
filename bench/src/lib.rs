//! What the peer servers of the bench share: their flags, how they listen,
//! and the JSON answers the runner parses.
//!
//! The runner itself lives in `src/bin/bench/`; this library holds only what
//! more than one server binary needs.

pub mod peer;
pub mod raw;

//! Helpers shared by the simulator's integration tests.
//!
//! Kept in a directory module so cargo does not build it as a test of its own.

pub mod harness;
pub mod recording;

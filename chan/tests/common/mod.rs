//! Harness shared by chan's test binaries (channels, select, sync): the workspace's test
//! harness (`testkit`: scenarios at maxprocs 1, 2 and 4, or only at `GORT_MAXPROCS` when that
//! is set, under one lock per test binary, each run bounded in time), re-exported, with chan's
//! own notion of an expected panic.
#![allow(dead_code)] // not every binary uses every helper

pub use testkit::*;

/// Silences the default panic message of panics a test provokes on purpose (those whose
/// message starts with `sync:` or `expected:`, or an `Expected` payload), keeping the others.
pub fn quiet_expected_panics() {
    testkit::quiet_expected_panics_and(&["sync:"]);
}

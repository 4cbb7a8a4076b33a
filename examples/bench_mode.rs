//! Shared by the benchmark examples (`#[path = "bench_mode.rs"] mod bench_mode;`): runs the
//! example in migrate mode when `GORT_BENCH_MIGRATE=1`, so `benches/modes_side_by_side.sh`
//! can measure the default (thread-affine) mode and Go's migration side by side.

/// Enables migration if `GORT_BENCH_MIGRATE=1`; returns the mode's name for the output line.
/// Call before the runtime starts.
pub fn init() -> &'static str {
    if std::env::var("GORT_BENCH_MIGRATE").is_ok_and(|v| v == "1") {
        // SAFETY: the benchmark programs keep nothing thread-bound across a blocking call.
        unsafe { gort::enable_migration() }.expect("migrate mode before the runtime starts");
        "migrate"
    } else {
        "affine"
    }
}

//! The trace's clock: the CPU's time-stamp counter where the kernel trusts it, else `Instant`.
//!
//! A clock read is most of what recording an event costs: `Instant::now` (the vDSO's
//! `clock_gettime`) took about 30 ns on the machine `docs/BENCHMARKS.md` measured, `rdtsc`
//! 10. The counter is used only on x86_64 and only if the kernel's clocksource is `tsc`,
//! which Linux selects only for a counter that is invariant and synchronised across CPUs, so
//! stamps from different threads compare. An `lfence` before `rdtsc` keeps the read from
//! running ahead of the loads before it (an unpark must not be stamped after the run it
//! causes). Ticks become nanoseconds when a session stops, by the ratio of ticks to `Instant`
//! time between its start and its stop ([`Calibration`]).

use std::time::Instant;

use crate::loom::std_only::OnceLock;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the trace epoch, from `Instant`.
pub(crate) fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// True if stamps are time-stamp-counter ticks (decided once per process).
pub(crate) fn uses_tsc() -> bool {
    static TSC: OnceLock<bool> = OnceLock::new();
    *TSC.get_or_init(|| {
        cfg!(target_arch = "x86_64")
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
    })
}

/// An event's stamp: counter ticks if [`uses_tsc`], else nanoseconds since the epoch.
#[inline]
pub(crate) fn stamp(tsc: bool) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if tsc {
        // SAFETY: `lfence` and `rdtsc` exist on every x86_64 CPU and touch no memory.
        return unsafe {
            std::arch::x86_64::_mm_lfence();
            std::arch::x86_64::_rdtsc()
        };
    }
    let _ = tsc;
    now_ns()
}

/// A session's two readings of both clocks, to turn stamps into nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Calibration {
    pub(crate) tsc: bool,
    pub(crate) start_stamp: u64,
    pub(crate) start_ns: u64,
    pub(crate) end_stamp: u64,
    pub(crate) end_ns: u64,
}

impl Calibration {
    /// Reads both clocks at a session's start.
    pub(crate) fn start() -> Calibration {
        let tsc = uses_tsc();
        Calibration {
            tsc,
            start_stamp: stamp(tsc),
            start_ns: now_ns(),
            end_stamp: 0,
            end_ns: 0,
        }
    }

    /// Reads both clocks at its stop.
    pub(crate) fn stop(&mut self) {
        self.end_ns = now_ns();
        self.end_stamp = stamp(self.tsc);
    }

    /// `stamp` in nanoseconds since the epoch.
    pub(crate) fn to_ns(self, stamp: u64) -> u64 {
        if !self.tsc {
            return stamp;
        }
        let ticks = self.end_stamp.saturating_sub(self.start_stamp).max(1) as f64;
        let ns_per_tick = self.end_ns.saturating_sub(self.start_ns) as f64 / ticks;
        let since = stamp.saturating_sub(self.start_stamp) as f64 * ns_per_tick;
        self.start_ns + since as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_become_nanoseconds_between_start_and_stop() {
        let mut c = Calibration::start();
        let mid = stamp(c.tsc);
        std::thread::sleep(std::time::Duration::from_millis(2));
        c.stop();
        let (a, m, b) = (c.to_ns(c.start_stamp), c.to_ns(mid), c.to_ns(c.end_stamp));
        assert!(a <= m && m <= b, "{a} {m} {b}");
        assert!(b - a >= 2_000_000, "{}", b - a);
    }
}

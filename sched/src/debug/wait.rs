//! Why a goroutine is parked, and since when: one word per goroutine (`Header::wait`), stored
//! by the goroutine itself as it parks and read by the goroutine dump (`dump.rs`).
//!
//! The word packs the reason (8 bits), a detail such as a file descriptor (24 bits, stored plus
//! one so that 0 means none) and the park time in milliseconds of the runtime's coarse clock
//! (32 bits: 49 days, after which it wraps and the dump's durations are modulo that).
//!
//! The clock is sysmon's (`coarse_millis`): sysmon stores the time (`tick_coarse_clock`) after
//! every sleep, and so does whoever wakes it from its idle sleep (`sysmon::p_taken`, before a
//! goroutine can run again); so a park costs a relaxed load and a relaxed store, no clock read,
//! and the stamp is late by at most one sysmon round (10 ms at most). Without sysmon
//! (`GORT_SYSMON=off`) the clock is never stored and parks read the kernel's coarse clock
//! (`now_millis`, a few instructions in the vDSO).
//!
//! Invariant: only the goroutine itself writes its word, on its own stack, before it switches
//! out; a reader that finds the goroutine PARKED (park state, acquire) reads the word of that
//! park, or of a later one.

use crate::loom::std_only::AtomicU64;
use crate::loom::Ordering;

/// What a parked goroutine waits for, as the goroutine dump shows it (Go's `waitReason`).
///
/// gort's own blocking operations say which they are; [`park`](crate::park) by itself is
/// [`WaitReason::Park`].
///
/// ```
/// use sched::debug::WaitReason;
/// assert_eq!(WaitReason::ChanReceive.to_string(), "chan receive");
/// assert_eq!(WaitReason::IoRead.to_string(), "IO wait (read)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(u8)]
pub enum WaitReason {
    /// `park()` called directly (user code, or a primitive that does not say).
    Park = 1,
    /// A channel receive.
    ChanReceive,
    /// A channel send.
    ChanSend,
    /// A `select!` with at least one case.
    Select,
    /// A `select!` with no cases: forever.
    SelectNoCases,
    /// `Mutex::lock` (and `RwMutex` writers, `Once`).
    Mutex,
    /// `RwMutex::read`.
    RwMutexRead,
    /// `WaitGroup::wait`.
    WaitGroup,
    /// `Cond::wait`.
    Cond,
    /// `Semaphore::acquire`.
    Semaphore,
    /// Waiting for a socket to become readable (the detail is its descriptor).
    IoRead,
    /// Waiting for a socket to become writable (the detail is its descriptor).
    IoWrite,
    /// `time::sleep`.
    Sleep,
    /// A timed `park_timeout` (or a primitive's timed wait that does not say).
    Timer,
    /// `JoinHandle::join`.
    Join,
    /// A call running in the blocking pool (`blocking`).
    Blocking,
}

impl WaitReason {
    const ALL: [WaitReason; 16] = [
        WaitReason::Park,
        WaitReason::ChanReceive,
        WaitReason::ChanSend,
        WaitReason::Select,
        WaitReason::SelectNoCases,
        WaitReason::Mutex,
        WaitReason::RwMutexRead,
        WaitReason::WaitGroup,
        WaitReason::Cond,
        WaitReason::Semaphore,
        WaitReason::IoRead,
        WaitReason::IoWrite,
        WaitReason::Sleep,
        WaitReason::Timer,
        WaitReason::Join,
        WaitReason::Blocking,
    ];

    fn from_u8(v: u8) -> Option<WaitReason> {
        WaitReason::ALL.get(usize::from(v).checked_sub(1)?).copied()
    }

    /// Go's words for it where Go has some (`chan receive`, `select`, `IO wait`, `sleep`).
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Park => "park",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::ChanSend => "chan send",
            WaitReason::Select => "select",
            WaitReason::SelectNoCases => "select (no cases)",
            WaitReason::Mutex => "sync.Mutex.Lock",
            WaitReason::RwMutexRead => "sync.RWMutex.RLock",
            WaitReason::WaitGroup => "sync.WaitGroup.Wait",
            WaitReason::Cond => "sync.Cond.Wait",
            WaitReason::Semaphore => "semacquire",
            WaitReason::IoRead => "IO wait (read)",
            WaitReason::IoWrite => "IO wait (write)",
            WaitReason::Sleep => "sleep",
            WaitReason::Timer => "timed park",
            WaitReason::Join => "join",
            WaitReason::Blocking => "blocking call",
        }
    }
}

impl std::fmt::Display for WaitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The largest detail that fits (descriptors above it are shown without a number).
const MAX_DETAIL: u64 = (1 << 24) - 2;

/// Packs a wait for `Header::wait`, stamped with the coarse clock.
#[inline]
pub(crate) fn pack(reason: WaitReason, detail: Option<u64>) -> u64 {
    let detail = detail.filter(|d| *d <= MAX_DETAIL).map_or(0, |d| d + 1);
    (reason as u64) << 56 | detail << 32 | u64::from(coarse_millis())
}

/// A wait word taken apart: the reason (None if the goroutine never parked), the detail, and
/// how long ago it was stamped.
pub(crate) fn unpack(word: u64) -> (Option<WaitReason>, Option<u64>, std::time::Duration) {
    let reason = WaitReason::from_u8((word >> 56) as u8);
    let detail = ((word >> 32) & 0xff_ffff).checked_sub(1);
    let then = word as u32;
    let ago = now_millis().wrapping_sub(then);
    (
        reason,
        detail,
        std::time::Duration::from_millis(u64::from(ago)),
    )
}

/// Milliseconds on the kernel's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`: a read of the
/// vDSO's last tick, no TSC read, resolution one scheduler tick, 1 to 4 ms), wrapping at 2^32.
#[cfg(target_os = "linux")]
#[inline]
pub(crate) fn now_millis() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC_COARSE exists on every Linux gort
    // runs on (2.6.32+), and the call cannot fail with a valid clock and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000) as u32
}

/// Milliseconds since the first call (no coarse clock off Linux: std's monotonic clock).
#[cfg(not(target_os = "linux"))]
pub(crate) fn now_millis() -> u32 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u32
}

/// The last time sysmon stored, in milliseconds plus one; 0 until it first does.
static COARSE: AtomicU64 = AtomicU64::new(0);

/// The time for a park's stamp: sysmon's last reading, or the kernel's coarse clock if sysmon
/// never stored one (it is off).
#[inline]
pub(crate) fn coarse_millis() -> u32 {
    match COARSE.load(Ordering::Relaxed) {
        0 => now_millis(),
        t => (t - 1) as u32,
    }
}

/// Stores the time for `coarse_millis`: sysmon after each sleep, and its waker.
pub(crate) fn tick_coarse_clock() {
    COARSE.store(u64::from(now_millis()) + 1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        for r in WaitReason::ALL {
            let (reason, detail, ago) = unpack(pack(r, Some(7)));
            assert_eq!((reason, detail), (Some(r), Some(7)));
            assert!(ago < std::time::Duration::from_secs(60));
        }
        assert_eq!(unpack(pack(WaitReason::IoRead, None)).1, None);
        assert_eq!(unpack(pack(WaitReason::IoRead, Some(1 << 30))).1, None);
        assert_eq!(unpack(0).0, None, "never parked");
    }
}

//! Stack-overflow reports for goroutines.
//!
//! Length: about 415 lines of code (the handler must be async-signal-safe, so it formats its
//! report by hand) and 175 of tests.
//!
//! A goroutine that overflows its stack runs into the guard page below it (see `stack.rs`) and
//! the kernel raises SIGSEGV (SIGBUS on some systems). Without help the process dies with a bare
//! "Segmentation fault". This module turns that into
//!
//! ```text
//! goroutine 17 (worker-3) stack overflow: its stack is 256 KiB; raise it with gort::Builder::stack_size or the GORT_STACK_SIZE environment variable
//! ```
//!
//! followed by `abort()`.
//!
//! # How
//!
//! * [`install_overflow_handler`] (once per process) installs [`on_fault`] for SIGSEGV and SIGBUS
//!   with `SA_SIGINFO | SA_ONSTACK`, keeping the previous action of each to chain to.
//! * [`thread_init`] (once per worker thread) makes sure the thread has an alternate signal
//!   stack: the handler cannot run on the goroutine stack that just overflowed. Threads started by
//!   `std` usually have one already (std's own overflow handler sets it up); otherwise we map one.
//! * The scheduler calls [`set_current`] whenever a thread switches into a goroutine (with a
//!   [`Current`]: the goroutine's header and how to read its guard range, id, name and stack
//!   size from it, which the handler does only when a signal comes) and back out (`None`). It
//!   is two stores into a thread-local `Cell`.
//! * On a fault, the handler compares the faulting address with the current goroutine's guard
//!   range. Inside it: write the report to stderr with raw `write(2)` and `abort()`. Anything
//!   else is not ours: call the previous handler, or, if there was none (`SIG_DFL`/`SIG_IGN`),
//!   restore `SIG_DFL` and return, so the faulting instruction re-executes and the kernel kills
//!   the process the ordinary way (core dump included).
//!
//! # Async-signal safety
//!
//! The handler allocates nothing, takes no lock and calls only `write`, `sigaction` and `abort`
//! (all async-signal-safe). It formats into a buffer on the (alternate) stack. It reads:
//!
//! * `CURRENT`, a `const`-initialised thread-local whose type has no destructor (and, through
//!   its `describe`, the current goroutine's header, alive while it is current): on targets with
//!   native TLS (all of gort's unix targets) std stores it as a plain `#[thread_local]` static,
//!   with no lazy initialisation and no destructor registration, so reading it is one TLS load
//!   and cannot fail, even during thread teardown. ([`thread_init`] touches it once so that a
//!   dynamically loaded copy of this library has its TLS block allocated before any fault.) The
//!   fault is synchronous (raised by the goroutine's own instructions), so it never interrupts
//!   [`set_current`] half-way through its stores; the preemption signal, which is not, reads
//!   `CURRENT` only when it interrupted a goroutine's own code (`preempt.rs`), and
//!   `set_current` runs on the thread's stack.
//! * `PREVIOUS`, pointers to leaked, never-modified copies of the previous actions, published with
//!   release/acquire. A fault in the instant between installing the handler and publishing the
//!   previous action is treated as if the previous action were `SIG_DFL`.
//!
//! Chaining calls the previous handler directly, from ours: it runs with our signal mask and on
//! our (alternate) stack, and its `SA_RESETHAND`/`SA_NODEFER` flags are not re-applied. Handlers
//! that install themselves first and chain the same way (std's own overflow handler, sanitizers,
//! JIT runtimes) work with that.

use crate::loom::std_only::{compiler_fence, AtomicPtr, Once};
use crate::loom::Ordering;
use std::cell::Cell;
use std::io;
use std::mem;
use std::ptr;

use libc::{c_int, c_void, siginfo_t};

use crate::stack::{human_size, page_size};

/// The signals a guard-page hit can raise: SIGSEGV on Linux, SIGBUS on macOS and some BSDs.
const SIGNALS: [c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Smallest alternate signal stack [`thread_init`] maps (also at least 4 x `SIGSTKSZ`).
const MIN_ALTSTACK: usize = 64 << 10;

/// Longest goroutine name printed; longer names are cut (the report must fit `REPORT_CAP`).
const MAX_NAME: usize = 128;

/// Bytes of the report buffer: the fixed text (~130 bytes), two numbers and `MAX_NAME`.
const REPORT_CAP: usize = 512;

/// The action that was installed before ours, per entry of `SIGNALS`; null until published.
/// Each non-null pointer comes from `Box::into_raw` and is never freed or written again.
static PREVIOUS: [AtomicPtr<libc::sigaction>; 2] = [const { AtomicPtr::new(ptr::null_mut()) }; 2];

/// The goroutine running on this thread, as far as overflow reports are concerned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GuardInfo {
    /// One past the highest address of the goroutine stack's guard (its lowest usable
    /// address); the guard is `stack::guard_bytes()` below it.
    pub guard_hi: usize,
    /// The goroutine's id, as printed in the report.
    pub goroutine_id: u64,
    /// The goroutine's name (any bytes; empty: no name). See [`set_current`] for how long it
    /// must stay readable.
    pub name_ptr: *const u8,
    /// Length of the name in bytes.
    pub name_len: usize,
    /// Usable size of the goroutine's stack in bytes, as printed in the report.
    pub stack_size: usize,
}

/// How a signal handler learns about the goroutine this thread runs: `describe(data)`,
/// called only when a signal needs it (a fault in a guard page, a preemption request copying
/// the name), so that switching a goroutine in stores two words instead of a `GuardInfo`.
#[derive(Clone, Copy)]
pub(crate) struct Current {
    describe: unsafe fn(*const ()) -> GuardInfo,
    data: *const (),
}

impl Current {
    /// # Safety
    ///
    /// For as long as this stays current on a thread (until its next [`set_current`]),
    /// `describe(data)` must be async-signal-safe (no lock, no allocation) and sound to call,
    /// and the name in the `GuardInfo` it returns readable.
    pub(crate) unsafe fn new(
        describe: unsafe fn(*const ()) -> GuardInfo,
        data: *const (),
    ) -> Current {
        Current { describe, data }
    }

    fn info(self) -> GuardInfo {
        // SAFETY: `new`'s contract, for as long as this is current, which it is: it was read
        // from `CURRENT`.
        unsafe { (self.describe)(self.data) }
    }
}

thread_local! {
    /// The goroutine this thread is running, if any. `const`-initialised and without destructor:
    /// see "Async-signal safety" above.
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };

    /// This thread's own stack `[lo, hi)` ([`on_thread_stack`]); `const`, no destructor.
    static THREAD_STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };

    /// The alternate signal stack [`thread_init`] mapped for this thread, if it had to.
    static ALTSTACK: Cell<Option<AltStack>> = const { Cell::new(None) };
}

/// Records which goroutine this thread runs: `Some` when switching into it, `None` when back out.
///
/// # Safety
///
/// `Current::new`'s contract holds until the next `set_current` on this thread: the signal
/// handlers call `describe` at any moment in between.
#[inline]
pub(crate) unsafe fn set_current(current: Option<Current>) {
    CURRENT.set(current);
    // The store must not sink past the switch into the goroutine, whose faults read it.
    compiler_fence(Ordering::SeqCst);
}

/// The goroutine this thread runs, as `set_current` recorded it. Async-signal-safe.
pub(crate) fn current_guard_info() -> Option<GuardInfo> {
    CURRENT.get().map(Current::info)
}

/// True if `sp` lies in this thread's own stack (recorded by [`thread_init`]): a signal
/// interrupted the scheduler (Go's g0), not a goroutine, whose stacks are mapped elsewhere
/// (`stack.rs`). Async-signal-safe: one TLS load (module docs). False if the bounds are unknown.
pub(crate) fn on_thread_stack(sp: usize) -> bool {
    let (lo, hi) = THREAD_STACK.get();
    lo <= sp && sp < hi
}

/// Records the calling thread's stack bounds for [`on_thread_stack`].
fn record_thread_stack() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: all-zero is a valid `pthread_attr_t` to be filled by `pthread_getattr_np`.
        let mut attr: libc::pthread_attr_t = unsafe { mem::zeroed() };
        // SAFETY: `pthread_self()` is this live thread; `attr` is destroyed below.
        if unsafe { libc::pthread_getattr_np(libc::pthread_self(), &mut attr) } != 0 {
            return;
        }
        let mut addr: *mut c_void = ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: `attr` was initialised above; the out pointers are valid.
        let rc = unsafe { libc::pthread_attr_getstack(&attr, &mut addr, &mut size) };
        // SAFETY: initialised above, destroyed once.
        unsafe { libc::pthread_attr_destroy(&mut attr) };
        if rc == 0 {
            THREAD_STACK.set((addr as usize, addr as usize + size));
        }
    }
}

/// Installs the SIGSEGV and SIGBUS handler that reports goroutine stack overflows. Idempotent.
pub(crate) fn install_overflow_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // The handler reads the guard's size; computed here, outside it.
        crate::stack::guard_bytes();
        for (&sig, previous) in SIGNALS.iter().zip(&PREVIOUS) {
            install(sig, previous);
        }
    });
}

/// Gives the calling thread an alternate signal stack if it has none. Call once at the start of
/// each runtime worker thread. A stack mapped here belongs to the thread: a thread-local
/// destructor disables and unmaps it when the thread exits.
pub(crate) fn thread_init() {
    record_thread_stack();
    if altstack_enabled() {
        return;
    }
    // Touch CURRENT now, so that a lazily allocated TLS block (a dlopen'ed library's, with
    // glibc) is allocated here and never inside the signal handler.
    let _ = CURRENT.try_with(|current| std::hint::black_box(current.get()));
    let alt = match AltStack::map() {
        Ok(alt) => alt,
        Err(err) => {
            crate::config::contain("a tracing subscriber", || {
                tracing::warn!(
                    "cannot map an alternate signal stack ({err}): a goroutine stack overflow \
                     on this thread will kill the process without a report"
                )
            });
            return;
        }
    };
    alt.enable();
    // If the thread-locals are already gone, the closure is dropped unrun and with it `alt`,
    // which disables and unmaps the stack again.
    let _ = ALTSTACK.try_with(move |cell| cell.set(Some(alt)));
}

type SigInfoHandler = extern "C" fn(c_int, *mut siginfo_t, *mut c_void);
type PlainHandler = extern "C" fn(c_int);

/// Installs [`on_fault`] for `sig` and publishes the action it replaces in `previous`.
fn install(sig: c_int, previous: &AtomicPtr<libc::sigaction>) {
    let mut action = empty_action();
    action.sa_sigaction = on_fault as SigInfoHandler as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    let mut old = empty_action();
    // SAFETY: both pointers are to valid `sigaction` values; `on_fault` has the `SA_SIGINFO`
    // signature and is async-signal-safe.
    let rc = unsafe { libc::sigaction(sig, &action, &mut old) };
    assert_eq!(rc, 0, "sigaction({sig}): {}", io::Error::last_os_error());
    previous.store(Box::into_raw(Box::new(old)), Ordering::Release);
}

/// A `sigaction` with `SIG_DFL`, no flags and an empty mask.
fn empty_action() -> libc::sigaction {
    // SAFETY: `sigaction` is a plain C struct for which all-zero bytes are a valid value.
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = libc::SIG_DFL;
    // SAFETY: `sa_mask` is a valid, writable `sigset_t`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    action
}

/// The SIGSEGV/SIGBUS handler: report a guard-page hit of the current goroutine, chain the rest.
extern "C" fn on_fault(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    if let Some(guard) = overflowed_guard(info) {
        report_overflow(&guard);
    }
    // SAFETY: these are exactly the arguments the kernel passed to this handler.
    unsafe { chain(sig, info, ctx) }
}

/// The current goroutine's `GuardInfo` if `info` is a kernel-raised fault inside its guard.
fn overflowed_guard(info: *mut siginfo_t) -> Option<GuardInfo> {
    // SAFETY: for an `SA_SIGINFO` handler the kernel passes a valid `siginfo_t`.
    let info = unsafe { info.as_ref() }?;
    // si_code > 0: raised by the kernel for a fault, not sent by kill(2) or raise(3), so
    // `si_addr` is meaningful.
    if info.si_code <= 0 {
        return None;
    }
    // SAFETY: for a kernel-raised SIGSEGV or SIGBUS, `si_addr` is the member that is set.
    let addr = unsafe { info.si_addr() } as usize;
    let guard = CURRENT.try_with(Cell::get).ok().flatten()?.info();
    // `guard_bytes` is a static's load: `install_overflow_handler` computed it.
    (guard.guard_hi - crate::stack::guard_bytes()..guard.guard_hi)
        .contains(&addr)
        .then_some(guard)
}

/// Writes the overflow report for `guard` to stderr and aborts.
fn report_overflow(guard: &GuardInfo) -> ! {
    let name: &[u8] = if guard.name_len == 0 || guard.name_ptr.is_null() {
        &[]
    } else {
        // SAFETY: `Current::new`'s contract: the name is readable while `guard`'s goroutine
        // is current, which it is (the handler aborts below, still on it).
        unsafe { std::slice::from_raw_parts(guard.name_ptr, guard.name_len.min(MAX_NAME)) }
    };
    let mut buf = [0u8; REPORT_CAP];
    let len = format_report(&mut buf, guard.goroutine_id, name, guard.stack_size);
    write_stderr(&buf[..len]);
    // SAFETY: abort is async-signal-safe and has no preconditions.
    unsafe { libc::abort() }
}

/// Formats the report into `buf` without allocating; returns its length.
fn format_report(buf: &mut [u8], id: u64, name: &[u8], stack_size: usize) -> usize {
    let mut out = Cursor { buf, len: 0 };
    out.push(b"goroutine ");
    out.push_u64(id);
    if !name.is_empty() {
        out.push(b" (");
        out.push(name);
        out.push(b")");
    }
    out.push(b" stack overflow: its stack is ");
    let (n, unit) = human_size(stack_size);
    out.push_u64(n as u64);
    out.push(b" ");
    out.push(unit.as_bytes());
    out.push(b"; raise it with gort::Builder::stack_size or the GORT_STACK_SIZE environment ");
    out.push(b"variable\n");
    out.len
}

/// An allocation-free writer into a byte buffer; output past its end is dropped.
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Cursor<'_> {
    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn push_u64(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// Writes all of `bytes` to fd 2 with raw `write(2)`, retrying on EINTR and short writes.
fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid buffer of `bytes.len()` bytes; write(2) is async-signal-safe.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(n) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(_) if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Passes a fault that is not a goroutine overflow on to the action installed before ours.
///
/// # Safety
///
/// `sig`, `info` and `ctx` must be the arguments the kernel passed to [`on_fault`].
unsafe fn chain(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    let Some(prev) = previous_action(sig) else {
        return reset_to_default(sig);
    };
    let handler = prev.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        return reset_to_default(sig);
    }
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an action with `SA_SIGINFO` holds a three-argument handler; a handler is a
        // function pointer stored as an integer (`sighandler_t`).
        let f = unsafe { mem::transmute::<*const (), SigInfoHandler>(handler as *const ()) };
        f(sig, info, ctx);
    } else {
        // SAFETY: an action without `SA_SIGINFO` holds a one-argument handler, stored as above.
        let f = unsafe { mem::transmute::<*const (), PlainHandler>(handler as *const ()) };
        f(sig);
    }
}

/// The action installed before ours for `sig`, once published.
fn previous_action(sig: c_int) -> Option<&'static libc::sigaction> {
    let i = SIGNALS.iter().position(|&s| s == sig)?;
    let p = PREVIOUS[i].load(Ordering::Acquire);
    // SAFETY: non-null pointers in `PREVIOUS` come from `Box::into_raw` and are never freed or
    // written through (see `PREVIOUS`); the acquire load pairs with the release store in
    // `install`.
    unsafe { p.as_ref() }
}

/// Restores the default action for `sig`; returning from the handler then re-executes the
/// faulting instruction and the kernel kills the process as if we had never been installed.
fn reset_to_default(sig: c_int) {
    let action = empty_action();
    // SAFETY: `action` is a valid `sigaction`; sigaction(2) is async-signal-safe.
    unsafe { libc::sigaction(sig, &action, ptr::null_mut()) };
}

/// Whether the calling thread has an enabled alternate signal stack.
fn altstack_enabled() -> bool {
    current_altstack().ss_flags & libc::SS_DISABLE == 0
}

/// The calling thread's alternate signal stack settings.
fn current_altstack() -> libc::stack_t {
    // SAFETY: `stack_t` is a plain C struct for which all-zero bytes are a valid value.
    let mut old: libc::stack_t = unsafe { mem::zeroed() };
    // SAFETY: a null new stack only queries; `old` is a valid out pointer.
    let rc = unsafe { libc::sigaltstack(ptr::null(), &mut old) };
    debug_assert_eq!(rc, 0, "sigaltstack: {}", io::Error::last_os_error());
    old
}

/// An alternate signal stack mapped by [`thread_init`]: `[guard page | stack]`.
struct AltStack {
    /// The whole mapping, guard included.
    map: *mut c_void,
    map_len: usize,
    /// The usable stack (`ss_sp`, `ss_size`).
    sp: *mut c_void,
    size: usize,
}

impl AltStack {
    /// Maps a stack of max(`MIN_ALTSTACK`, 4 x `SIGSTKSZ`) bytes above a guard page.
    fn map() -> io::Result<AltStack> {
        let page = page_size();
        let size = MIN_ALTSTACK.max(libc::SIGSTKSZ * 4).next_multiple_of(page);
        let map_len = size + page;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: a new anonymous mapping at an address the kernel picks.
        let map = unsafe { libc::mmap(ptr::null_mut(), map_len, prot, flags, -1, 0) };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Built before the guard so that a failure below unmaps it.
        // SAFETY: `map + page` is inside the `map_len > page` bytes just mapped.
        let sp = unsafe { map.cast::<u8>().add(page) }.cast();
        let alt = AltStack {
            map,
            map_len,
            sp,
            size,
        };
        // SAFETY: the first page of our new mapping; nothing references it.
        if unsafe { libc::mprotect(map, page, libc::PROT_NONE) } == 0 {
            Ok(alt)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Makes this the calling thread's alternate signal stack.
    fn enable(&self) {
        let st = libc::stack_t {
            ss_sp: self.sp,
            ss_flags: 0,
            ss_size: self.size,
        };
        // SAFETY: `st` describes readable, writable memory owned by `self`, which stays mapped
        // until `drop` has switched the alternate stack off again.
        let rc = unsafe { libc::sigaltstack(&st, ptr::null_mut()) };
        debug_assert_eq!(rc, 0, "sigaltstack: {}", io::Error::last_os_error());
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let current = current_altstack();
        if current.ss_flags & libc::SS_DISABLE == 0 && current.ss_sp == self.sp {
            let off = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: self.size,
            };
            // SAFETY: switches off our own alternate stack; we are not running on it (this is a
            // thread-local destructor, not a signal handler).
            unsafe { libc::sigaltstack(&off, ptr::null_mut()) };
        }
        // SAFETY: the mapping is ours and no longer the thread's alternate stack.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::tests::{is_child, run_child};
    use crate::stack::{alloc_stack, round_stack_size};
    use std::hint::black_box;
    use std::os::unix::process::ExitStatusExt;

    const REPORT_TAIL: &str =
        "raise it with gort::Builder::stack_size or the GORT_STACK_SIZE environment variable\n";

    fn report(id: u64, name: &str, stack_size: usize) -> String {
        let mut buf = [0u8; REPORT_CAP];
        let len = format_report(&mut buf, id, name.as_bytes(), stack_size);
        String::from_utf8(buf[..len].to_vec()).unwrap()
    }

    #[test]
    fn report_text() {
        assert_eq!(
            report(17, "worker-3", 256 << 10),
            format!("goroutine 17 (worker-3) stack overflow: its stack is 256 KiB; {REPORT_TAIL}")
        );
        assert_eq!(
            report(0, "", 8 << 20),
            format!("goroutine 0 stack overflow: its stack is 8 MiB; {REPORT_TAIL}")
        );
        assert!(report(u64::MAX, "", 1000).starts_with("goroutine 18446744073709551615 stack"));
        assert!(report(1, "", 1000).contains("its stack is 1000 bytes;"));
        let long = "n".repeat(MAX_NAME);
        assert!(report(u64::MAX, &long, usize::MAX).ends_with(REPORT_TAIL));
    }

    /// Switches off the calling thread's alternate signal stack (whoever installed it).
    fn disable_altstack() {
        let off = libc::stack_t {
            ss_sp: ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: libc::SIGSTKSZ, // macOS rejects smaller sizes even when disabling
        };
        // SAFETY: switching the alternate stack off only stops its future use; this runs on the
        // normal stack, not in a handler.
        let rc = unsafe { libc::sigaltstack(&off, ptr::null_mut()) };
        assert_eq!(rc, 0, "sigaltstack: {}", io::Error::last_os_error());
    }

    #[test]
    fn thread_init_maps_an_altstack_once() {
        std::thread::spawn(|| {
            disable_altstack();
            assert!(!altstack_enabled());
            thread_init();
            let first = current_altstack();
            assert_eq!(first.ss_flags & libc::SS_DISABLE, 0);
            assert!(first.ss_size >= MIN_ALTSTACK);
            thread_init();
            assert_eq!(
                current_altstack().ss_sp,
                first.ss_sp,
                "thread_init is idempotent"
            );
        })
        .join()
        .unwrap();
    }

    /// Recurses until the stack overflows; each frame keeps 512 bytes the optimiser must keep.
    #[inline(never)]
    fn recurse(depth: u64) -> u64 {
        let mut frame = [0u8; 512];
        frame[0] = depth as u8;
        black_box(&mut frame);
        if black_box(depth) == u64::MAX {
            return 0;
        }
        recurse(depth + 1) + u64::from(black_box(frame[1]))
    }

    /// A test's `Current::describe`: `data` points at a live `GuardInfo`.
    unsafe fn copy_info(data: *const ()) -> GuardInfo {
        // SAFETY: the caller's `data` is a `GuardInfo` alive while current.
        unsafe { *data.cast::<GuardInfo>() }
    }

    /// Child process: run a goroutine-like coroutine, with `GuardInfo` set, that overflows.
    fn overflow_scenario() {
        install_overflow_handler();
        // Exercise thread_init's own mapping: drop the altstack std gave this thread.
        disable_altstack();
        thread_init();
        let stack = alloc_stack(round_stack_size(64 << 10)).unwrap();
        let (_, guard_hi) = stack.guard_range();
        let name = "overflow-test";
        let info = GuardInfo {
            guard_hi,
            goroutine_id: 7,
            name_ptr: name.as_ptr(),
            name_len: name.len(),
            stack_size: stack.usable_size(),
        };
        let mut co =
            corosensei::Coroutine::with_stack(stack, |_: &corosensei::Yielder<(), ()>, ()| {
                recurse(0)
            });
        // SAFETY: `info` outlives the coroutine's run (the child aborts inside it), and its
        // name is a `&'static str`; `copy_info` only reads it.
        unsafe { set_current(Some(Current::new(copy_info, (&raw const info).cast()))) };
        co.resume(());
        panic!("the recursion returned instead of overflowing");
    }

    #[test]
    fn overflow_is_reported() {
        if is_child() {
            return overflow_scenario();
        }
        let out = run_child(module_path!(), "overflow_is_reported", &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = format!(
            "goroutine 7 (overflow-test) stack overflow: its stack is 64 KiB; {REPORT_TAIL}"
        );
        assert!(stderr.contains(&want), "child stderr: {stderr}");
        assert!(!out.status.success());
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "child stderr: {stderr}"
        );
    }

    /// Child process: with a goroutine current, fault outside its guard.
    fn foreign_fault_scenario() {
        install_overflow_handler();
        thread_init();
        let stack = alloc_stack(round_stack_size(64 << 10)).unwrap();
        let (_, guard_hi) = stack.guard_range();
        let info = GuardInfo {
            guard_hi,
            goroutine_id: 8,
            name_ptr: ptr::null(),
            name_len: 0,
            stack_size: stack.usable_size(),
        };
        // SAFETY: `info` outlives the fault (the child dies of it) and has no name;
        // `copy_info` only reads it.
        unsafe { set_current(Some(Current::new(copy_info, (&raw const info).cast()))) };
        let page = page_size();
        // SAFETY: a new anonymous mapping at an address the kernel picks.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                page,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: deliberately faulting store to our own PROT_NONE page: the kernel raises
        // SIGSEGV before any memory is written.
        unsafe { ptr::write_volatile(p.cast::<u8>(), 1) };
        panic!("the store to a PROT_NONE page did not fault");
    }

    #[test]
    fn other_faults_are_chained() {
        if is_child() {
            return foreign_fault_scenario();
        }
        let out = run_child(module_path!(), "other_faults_are_chained", &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("stack overflow"), "child stderr: {stderr}");
        let sig = out.status.signal();
        assert!(
            sig == Some(libc::SIGSEGV) || sig == Some(libc::SIGBUS),
            "child: {:?}",
            out.status
        );
    }
}

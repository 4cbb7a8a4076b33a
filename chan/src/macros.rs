//! The `select!` macro and the conversions its cases accept.
//!
//! `select!` parses its cases into a list, binds one case object per case (`RecvCase`,
//! `SendCase`: see `select.rs`) in the caller's frame, runs the select protocol over them, and
//! then runs the body of the case that fired with its result bound to the case's pattern.

use crate::channel::{Receiver, Sender};
use crate::select::{RecvCase, SendCase};

/// What a `recv(...)` case accepts: a receiver, a reference to one, or an `Option` of either
/// (`None` is Go's nil channel: the case never fires).
pub trait AsReceiver<T: Send> {
    /// The receiver to select on, if any.
    fn as_receiver(&self) -> Option<&Receiver<T>>;
}

/// What a `send(...)` case accepts: a sender, a reference to one, or an `Option` of either
/// (`None` never fires).
pub trait AsSender<T: Send> {
    /// The sender to select on, if any.
    fn as_sender(&self) -> Option<&Sender<T>>;
}

impl<T: Send> AsReceiver<T> for Receiver<T> {
    fn as_receiver(&self) -> Option<&Receiver<T>> {
        Some(self)
    }
}
impl<T: Send> AsReceiver<T> for &Receiver<T> {
    fn as_receiver(&self) -> Option<&Receiver<T>> {
        Some(self)
    }
}
impl<T: Send> AsReceiver<T> for Option<Receiver<T>> {
    fn as_receiver(&self) -> Option<&Receiver<T>> {
        self.as_ref()
    }
}
impl<T: Send> AsReceiver<T> for Option<&Receiver<T>> {
    fn as_receiver(&self) -> Option<&Receiver<T>> {
        *self
    }
}
impl<T: Send> AsSender<T> for Sender<T> {
    fn as_sender(&self) -> Option<&Sender<T>> {
        Some(self)
    }
}
impl<T: Send> AsSender<T> for &Sender<T> {
    fn as_sender(&self) -> Option<&Sender<T>> {
        Some(self)
    }
}
impl<T: Send> AsSender<T> for Option<Sender<T>> {
    fn as_sender(&self) -> Option<&Sender<T>> {
        self.as_ref()
    }
}
impl<T: Send> AsSender<T> for Option<&Sender<T>> {
    fn as_sender(&self) -> Option<&Sender<T>> {
        *self
    }
}

/// The case object of `recv(src)`.
#[doc(hidden)]
pub fn recv<'a, T: Send, R: AsReceiver<T> + ?Sized>(src: &'a R) -> RecvCase<'a, T> {
    RecvCase::new(src.as_receiver())
}

/// The case object of `send(src, v)`.
#[doc(hidden)]
pub fn send<'a, T: Send, S: AsSender<T> + ?Sized>(src: &'a S, v: T) -> SendCase<'a, T> {
    SendCase::new(src.as_sender(), v)
}

/// Waits on several channel operations and runs the body of the one that completes, like
/// Go's `select`.
///
/// Cases: `recv(rx) -> v => body` (`v: Result<T, RecvError>`, `Err` once `rx` is closed and
/// drained), `send(tx, value) -> res => body` (`res: Result<(), SendError<T>>`), and at most one
/// `default => body`, taken if no other case can proceed at once. Without `default`, blocks
/// (parks) until one case completes; exactly one case fires. When several are ready, each is
/// chosen with equal probability. A `recv`/`send` on `None` (an `Option` of a channel end) or on
/// `Receiver::never()` never fires, like a nil channel in Go. `select! {}` blocks forever.
///
/// ```
/// let (tx1, rx1) = chan::chan::<i32>(1);
/// let (tx2, rx2) = chan::chan::<&str>(1);
/// tx2.send("two").unwrap();
/// let got = chan::select! {
///     recv(rx1) -> v => format!("rx1: {v:?}"),
///     recv(rx2) -> v => format!("rx2: {}", v.unwrap()),
/// };
/// assert_eq!(got, "rx2: two");
///
/// let sent = chan::select! {
///     send(tx1, 5) -> res => res.is_ok(),
///     default => false,
/// };
/// assert!(sent);
/// ```
#[macro_export]
macro_rules! select {
    // Parsing: cases accumulate as `(case src kind (channel) (extra args) pattern => body)`.
    // `case` and `src` are fresh identifiers in each expansion (macro hygiene), so every case
    // gets its own bindings.
    (@parse [$($cases:tt)*] [$($default:tt)*]) => {
        $crate::select!(@emit [$($cases)*] [$($default)*])
    };
    (@parse [$($cases:tt)*] [$($default:tt)*] , $($rest:tt)*) => {
        $crate::select!(@parse [$($cases)*] [$($default)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [$($default:tt)*]
        recv($rx:expr) -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::select!(@parse [$($cases)* (case src recv ($rx) () $res => $body)]
            [$($default)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [$($default:tt)*]
        recv($rx:expr) -> $res:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::select!(@parse [$($cases)* (case src recv ($rx) () $res => { $body })]
            [$($default)*] $($($rest)*)?)
    };
    (@parse [$($cases:tt)*] [$($default:tt)*]
        recv($rx:expr) => $($rest:tt)*) => {
        $crate::select!(@parse [$($cases)*] [$($default)*] recv($rx) -> _ => $($rest)*)
    };
    (@parse [$($cases:tt)*] [$($default:tt)*]
        send($tx:expr, $val:expr) -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::select!(@parse [$($cases)* (case src send ($tx) (, $val) $res => $body)]
            [$($default)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [$($default:tt)*]
        send($tx:expr, $val:expr) -> $res:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::select!(@parse [$($cases)* (case src send ($tx) (, $val) $res => { $body })]
            [$($default)*] $($($rest)*)?)
    };
    (@parse [$($cases:tt)*] [$($default:tt)*]
        send($tx:expr, $val:expr) => $($rest:tt)*) => {
        $crate::select!(@parse [$($cases)*] [$($default)*] send($tx, $val) -> _ => $($rest)*)
    };
    (@parse [$($cases:tt)*] [] default => $body:block $($rest:tt)*) => {
        $crate::select!(@parse [$($cases)*] [$body] $($rest)*)
    };
    (@parse [$($cases:tt)*] [] default => $body:expr $(, $($rest:tt)*)?) => {
        $crate::select!(@parse [$($cases)*] [{ $body }] $($($rest)*)?)
    };
    (@parse $($bad:tt)*) => {
        compile_error!(
            "select!: expected cases `recv(rx) -> v => body`, `send(tx, value) -> res => body` \
             or one `default => body`"
        )
    };

    // Emitting.
    (@emit [] []) => {
        $crate::internal::block_forever()
    };
    (@emit [] [$default:block]) => { $default };
    (@emit [$(($case:ident $src:ident $kind:ident ($chan:expr) ($($extra:tt)*)
        $res:pat => $body:block))+] [$($default:block)?]) => {{
        $(
            let $src = &$chan;
            #[allow(unused_mut)]
            let mut $case = $crate::internal::$kind($src $($extra)*);
        )+
        {
            let mut cases = [$(&mut $case as &mut dyn $crate::internal::Case),+];
            $crate::internal::run_select(
                &mut cases,
                $crate::select!(@has_default $($default)?),
                None,
            );
        }
        $(
            if $case.fired() {
                let $res = $case.take();
                $body
            } else
        )+
        {
            $crate::select!(@otherwise $($default)?)
        }
    }};
    (@has_default) => { false };
    (@has_default $default:block) => { true };
    (@otherwise) => { unreachable!("select! returned without a case") };
    (@otherwise $default:block) => { $default };

    // Entry.
    ($($tokens:tt)*) => {
        $crate::select!(@parse [] [] $($tokens)*)
    };
}

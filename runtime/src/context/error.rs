//! The errors of `gort::context`: why a context was cancelled ([`ContextError`], with Go's
//! messages, and as an `io::Error` for I/O calls), the cause a canceller may give ([`Cause`]),
//! and what [`recv`](super::recv) and [`send`](super::send) return when they do not complete
//! ([`RecvError`], [`SendError`]).

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

/// Why a context was cancelled (Go's `context.Canceled` and `context.DeadlineExceeded`).
///
/// ```
/// use gort::context::ContextError;
/// assert_eq!(ContextError::Canceled.to_string(), "context canceled");
/// assert_eq!(ContextError::DeadlineExceeded.to_string(), "context deadline exceeded");
/// assert!(ContextError::DeadlineExceeded.is_timeout());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// Cancelled by a [`CancelFn`](super::CancelFn) (its own or an ancestor's).
    Canceled,
    /// Its deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl ContextError {
    /// True for `DeadlineExceeded`, as Go's `DeadlineExceeded.Timeout()`.
    pub fn is_timeout(&self) -> bool {
        *self == ContextError::DeadlineExceeded
    }

    pub(super) fn code(self) -> u8 {
        match self {
            ContextError::Canceled => 1,
            ContextError::DeadlineExceeded => 2,
        }
    }

    pub(super) fn from_code(code: u8) -> Option<ContextError> {
        match code {
            1 => Some(ContextError::Canceled),
            2 => Some(ContextError::DeadlineExceeded),
            _ => None,
        }
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextError::Canceled => "context canceled",
            ContextError::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl Error for ContextError {}

impl From<ContextError> for io::Error {
    /// The error of an I/O call whose context was done (such as
    /// [`TcpStream::connect_context`](crate::net::TcpStream::connect_context)): kind
    /// `TimedOut` for `DeadlineExceeded`, `Other` for `Canceled`, with the `ContextError`
    /// inside (`get_ref` and `downcast_ref` give it back).
    ///
    /// ```
    /// use gort::context::ContextError;
    /// let e = std::io::Error::from(ContextError::DeadlineExceeded);
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// let inner = e.get_ref().and_then(|i| i.downcast_ref::<ContextError>());
    /// assert_eq!(inner, Some(&ContextError::DeadlineExceeded));
    /// ```
    fn from(e: ContextError) -> io::Error {
        let kind = match e {
            ContextError::DeadlineExceeded => io::ErrorKind::TimedOut,
            ContextError::Canceled => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// The reason given to [`CancelFn::cancel_with_cause`](super::CancelFn::cancel_with_cause), as Go 1.20's `Cause`.
pub type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// What [`recv`](super::recv) returns instead of a value.
///
/// ```
/// let e = gort::context::RecvError::Done(gort::context::ContextError::Canceled);
/// assert_eq!(e.to_string(), "context canceled");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The channel is closed and drained.
    Closed,
    /// The context was cancelled first.
    Done(ContextError),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("receiving on a closed channel"),
            RecvError::Done(e) => e.fmt(f),
        }
    }
}

impl Error for RecvError {}

/// What [`send`](super::send) returns instead of `Ok`.
///
/// ```
/// use gort::context::{ContextError, SendError};
/// assert_eq!(SendError::Closed(5).to_string(), "sending on a closed channel");
/// assert_eq!(SendError::Done(ContextError::Canceled, 6).to_string(), "context canceled");
/// assert_eq!(SendError::Closed(5).into_value(), 5);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendError<T> {
    /// The channel is closed; the value comes back.
    Closed(T),
    /// The context was done first; the value comes back.
    Done(ContextError, T),
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_value(self) -> T {
        match self {
            SendError::Closed(v) | SendError::Done(_, v) => v,
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::Done(e, _) => f.debug_tuple("Done").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("sending on a closed channel"),
            SendError::Done(e, _) => e.fmt(f),
        }
    }
}

impl<T> Error for SendError<T> {}

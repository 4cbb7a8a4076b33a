//! The errors of `gort::context`: why a context was cancelled ([`ContextError`], with Go's
//! messages), the cause a canceller may give ([`Cause`]), and what [`recv`](super::recv)
//! returns instead of a value ([`RecvError`]).

use std::error::Error;
use std::fmt;
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

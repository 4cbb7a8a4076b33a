//! Go's `http.TimeoutHandler`: bounds a handler's running time.
//!
//! The wrapped handler runs in a goroutine of its own, with a request context that expires
//! after the limit. If it returns in time, its response is the answer. If the limit passes
//! first, the answer is `503 Service Unavailable` with the given message, and the late
//! handler's response is discarded: the goroutine sends it into a channel with room for one
//! that nobody reads any more, so the send never blocks and the response is dropped with the
//! channel. A handler that watches `req.ctx.done()` stops early instead of running to the end
//! for nothing. A panic in the handler is re-raised in the caller if it comes in time (as Go's
//! re-panics), and dropped with the late response otherwise.
//!
//! As in Go, the limit must be shorter than the server's write timeout for the 503 to reach the
//! client: the write deadline is counted from the end of the request head.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use gort::context;

use crate::message::{Request, Response};
use crate::server::Handler;

/// `inner`, bounded to `limit` per request; on expiry the answer is 503 with body `message`.
pub fn timeout_handler(inner: Handler, limit: Duration, message: &'static str) -> Handler {
    Arc::new(move |mut request: Request| {
        let (ctx, _cancel) = context::with_timeout(&request.ctx, limit);
        request.ctx = ctx.clone();
        let (done_tx, done_rx) = gort::chan(1);
        let inner = Arc::clone(&inner);
        gort::go!(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| inner(request)));
            let _ = done_tx.send(outcome); // room for one: never blocks
        });
        gort::select! {
            recv(done_rx) -> outcome => match outcome {
                Ok(Ok(response)) => response,
                Ok(Err(payload)) => panic::resume_unwind(payload),
                // The goroutine never ran (no stack could be had for it).
                Err(_) => Response::text(500, "handler did not start"),
            },
            recv(ctx.done()) -> _ => Response::text(503, message),
        }
        // `_cancel` drops here: the handler's context ends with this exchange, as in Go.
    })
}

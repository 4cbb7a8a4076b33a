//! The demo's routes, each there to exercise part of the server:
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /` | `hello from gort` |
//! | `GET /slow?ms=N` | `slept N ms` after N ms (a timer in a `select!` with the request's context, which the timeout handler cancels) |
//! | `POST /echo` | the request body, with its `Content-Type` |
//! | `/quit` | `shutting down`, and the server shuts down gracefully |
//!
//! Anything else is 404 (405 for a known path with another method). The whole table runs
//! under the timeout handler when a handler timeout is set.

use std::sync::Arc;
use std::time::Duration;

use gort::Sender;

use crate::message::{Request, Response};
use crate::server::Handler;
use crate::timeout_handler::timeout_handler;

/// The routes, under a timeout handler of `handler_timeout` if one is given; `/quit` sends
/// on `quit`.
pub fn app(quit: Sender<()>, handler_timeout: Option<Duration>) -> Handler {
    let routes: Handler = Arc::new(move |request: Request| route(request, &quit));
    match handler_timeout {
        Some(limit) => timeout_handler(routes, limit, "timeout\n"),
        None => routes,
    }
}

fn route(request: Request, quit: &Sender<()>) -> Response {
    match (request.method.as_str(), request.path()) {
        ("GET" | "HEAD", "/") => Response::text(200, "hello from gort\n"),
        ("GET" | "HEAD", "/slow") => slow(&request),
        ("POST" | "PUT", "/echo") => echo(request),
        (_, "/quit") => {
            let _ = quit.try_send(()); // a second /quit finds the first one queued
            Response::text(200, "shutting down\n")
        }
        (_, "/" | "/slow" | "/echo") => Response::text(405, "method not allowed\n"),
        _ => Response::text(404, "not found\n"),
    }
}

/// Sleeps `ms` milliseconds, or less if the request's context ends first (its answer is then
/// discarded by the timeout handler).
fn slow(request: &Request) -> Response {
    let Some(ms) = request.query("ms").and_then(|ms| ms.parse::<u64>().ok()) else {
        return Response::text(400, "want /slow?ms=N\n");
    };
    let timer = gort::time::after(Duration::from_millis(ms));
    gort::select! {
        recv(timer) -> _ => {
            Response::text(200, format!("slept {ms} ms\n"))
        }
        recv(request.ctx.done()) -> _ => Response::text(503, "cancelled\n"),
    }
}

fn echo(request: Request) -> Response {
    let content_type = request
        .header("content-type")
        .unwrap_or("application/octet-stream")
        .to_string();
    Response::bytes(200, &content_type, request.body)
}

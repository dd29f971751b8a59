//! What every part of the bench shares: the error and body types, draining a response
//! body, letting finished connections' tasks run, and the clients' runtime.

use std::error::Error as StdError;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;

pub type BoxError = Box<dyn StdError + Send + Sync>;
pub type Result<T, E = BoxError> = std::result::Result<T, E>;
pub type Body = Empty<Bytes>;

/// Reads a response body to its end; returns its length.
pub async fn drain(mut body: Incoming) -> Result<usize> {
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            n += data.len();
        }
    }
    Ok(n)
}

/// Lets the previous connection's teardown (its hyper task) run outside the next sample.
pub async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// The one current-thread runtime the clients run on.
pub fn current_thread_runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

//! [`ResponseFuture`] for [`ProxyConnect`](super::ProxyConnect).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::Error;
use crate::proxy::Routed;

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<Routed<T>, Error>> + Send>>;

/// Resolves to a [`Routed`] stream once the route exists.
///
/// The dial and the `CONNECT` exchange are one boxed future inside; the
/// type is named so it can change without breaking callers.
pub struct ResponseFuture<T> {
    inner: BoxFuture<T>,
}

impl<T> ResponseFuture<T> {
    pub(crate) fn new(inner: BoxFuture<T>) -> Self {
        ResponseFuture { inner }
    }
}

impl<T> Future for ResponseFuture<T> {
    type Output = Result<Routed<T>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for ResponseFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

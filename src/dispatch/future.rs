//! [`ResponseFuture`] for [`AlpnDispatch`](super::AlpnDispatch), and
//! [`RequestFuture`] for [`HttpConnection`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use hyper::body::Incoming;

use super::HttpConnection;
use crate::error::Error;

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// Resolves to a ready [`HttpConnection`].
///
/// hyper's handshake futures have no names, so this one boxes them; the
/// type is named so it can change without breaking callers.
pub struct ResponseFuture<B> {
    inner: BoxFuture<HttpConnection<B>>,
}

impl<B> ResponseFuture<B> {
    pub(crate) fn new(inner: BoxFuture<HttpConnection<B>>) -> Self {
        ResponseFuture { inner }
    }
}

impl<B> Future for ResponseFuture<B> {
    type Output = Result<HttpConnection<B>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B> fmt::Debug for ResponseFuture<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Resolves to the response of one request on an [`HttpConnection`].
pub struct RequestFuture {
    inner: BoxFuture<Response<Incoming>>,
}

impl RequestFuture {
    pub(crate) fn new(inner: BoxFuture<Response<Incoming>>) -> Self {
        RequestFuture { inner }
    }
}

impl Future for RequestFuture {
    type Output = Result<Response<Incoming>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for RequestFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestFuture").finish_non_exhaustive()
    }
}

use std::fmt;
use std::marker::PhantomData;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::Uri;
use http_body::Body;
use tower_service::Service;

use super::connection::HttpConnection;
use super::exec::Exec;
use super::future::ResponseFuture;
use crate::error::{BoxError, Error, ErrorKind, Phase};
use crate::stage::Negotiated;
use crate::timeout::within;

/// HTTP/2 or HTTP/1.1 by ALPN over a negotiated stream; made by
/// [`AlpnDispatchLayer`](crate::AlpnDispatchLayer).
pub struct AlpnDispatch<S, B> {
    inner: S,
    exec: Exec,
    handshake_timeout: Option<Duration>,
    _body: PhantomData<fn(B)>,
}

impl<S, B> AlpnDispatch<S, B> {
    pub(crate) fn new(inner: S, exec: Exec, handshake_timeout: Option<Duration>) -> Self {
        AlpnDispatch {
            inner,
            exec,
            handshake_timeout,
            _body: PhantomData,
        }
    }

    crate::macros::inner_service_accessors!("TLS service below");
}

impl<S: Clone, B> Clone for AlpnDispatch<S, B> {
    fn clone(&self) -> Self {
        AlpnDispatch::new(
            self.inner.clone(),
            self.exec.clone(),
            self.handshake_timeout,
        )
    }
}

impl<S: fmt::Debug, B> fmt::Debug for AlpnDispatch<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpnDispatch")
            .field("inner", &self.inner)
            .field("exec", &self.exec)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl<S, B> Service<Uri> for AlpnDispatch<S, B>
where
    S: Service<Uri>,
    S::Response: Negotiated,
    <S::Response as Negotiated>::Stream:
        hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = HttpConnection<B>;
    type Error = Error;
    type Future = ResponseFuture<B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_below)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let exec = self.exec.clone();
        let timeout = self.handshake_timeout;
        ResponseFuture::new(async move {
            let negotiated = connecting.await.map_err(Error::from_below)?;
            let (stream, mut info) = negotiated.into_parts();
            let started = Instant::now();
            let handshake = super::connection::handshake(stream, exec, info.is_h2());
            let sender = match within(timeout, Phase::Dispatch, handshake).await {
                Ok(Ok(sender)) => sender,
                Ok(Err(e)) => {
                    let e = Error::new(ErrorKind::Handshake, Some(Phase::Dispatch)).with_source(e);
                    return Err(e.in_context(info.route().proxy(), info.target()));
                }
                Err(e) => return Err(e.in_context(info.route().proxy(), info.target())),
            };
            let elapsed = started.elapsed();
            info.timings.http_handshake = Some(elapsed);
            tracing::debug!(
                parent: &info.span,
                version = if info.is_h2() { "HTTP/2" } else { "HTTP/1.1" },
                elapsed = ?elapsed,
                "HTTP handshake done"
            );
            Ok(HttpConnection::new(sender, info))
        })
    }
}

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use rustls::ClientConfig;
use tower_service::Service;

use super::future::ResponseFuture;
use super::TlsStream;
use crate::error::{BoxError, Error};
use crate::stage::RoutedStream;

/// rustls to the target over a routed stream; made by
/// [`TlsLayer`](crate::TlsLayer).
#[derive(Clone, Debug)]
pub struct TlsConnect<S> {
    inner: S,
    config: Arc<ClientConfig>,
    // The same config offering `http/1.1` alone, for `wss://` targets.
    websocket: Arc<ClientConfig>,
    handshake_timeout: Option<Duration>,
}

impl<S> TlsConnect<S> {
    pub(crate) fn new(
        inner: S,
        config: Arc<ClientConfig>,
        websocket: Arc<ClientConfig>,
        handshake_timeout: Option<Duration>,
    ) -> Self {
        TlsConnect {
            inner,
            config,
            websocket,
            handshake_timeout,
        }
    }

    crate::macros::inner_service_accessors!("routing service below");
}

impl<S> Service<Uri> for TlsConnect<S>
where
    S: Service<Uri>,
    S::Response: RoutedStream,
    <S::Response as RoutedStream>::Stream: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::Error: Into<BoxError>,
{
    type Response = TlsStream<<S::Response as RoutedStream>::Stream>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, <S::Response as RoutedStream>::Stream>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_below)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        // The route below parsed and checked the target; only the scheme
        // is needed here.
        let scheme = dst.scheme_str().unwrap_or_default();
        let wss = scheme.eq_ignore_ascii_case("wss");
        let tls = wss || scheme.eq_ignore_ascii_case("https");
        // RFC 6455 runs over HTTP/1.1: a `wss://` target is offered nothing
        // else (RFC 8441's WebSockets over HTTP/2 are not spoken here).
        let config = if wss { &self.websocket } else { &self.config };
        let fut = self.inner.call(dst);
        ResponseFuture::new(fut, tls, config.clone(), self.handshake_timeout)
    }
}

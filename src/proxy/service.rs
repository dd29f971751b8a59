use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use tower_service::Service;

use super::future::ResponseFuture;
use super::pool::Pool;
use super::{connect, Config, Routed};
use crate::error::{BoxError, Error};
use crate::stage::Transport;

/// Routes connections through a proxy or directly; made by
/// [`ProxyConnectLayer`](crate::ProxyConnectLayer).
#[derive(Clone, Debug)]
pub struct ProxyConnect<S> {
    inner: S,
    config: Arc<Config>,
    pool: Pool,
}

impl<S> ProxyConnect<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>, pool: Pool) -> Self {
        ProxyConnect {
            inner,
            config,
            pool,
        }
    }

    crate::macros::inner_service_accessors!("base connector");
}

impl<S> Service<Uri> for ProxyConnect<S>
where
    S: Service<Uri> + Clone + Send + 'static,
    S::Response: Transport + hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Routed<S::Response>;
    type Error = Error;
    type Future = ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_below)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        // Take the service that poll_ready readied, and leave a clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(connect::connect(
            inner,
            self.config.clone(),
            self.pool.clone(),
            dst,
        ))
    }
}

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::Uri;
use tower_service::Service;
use tracing::Instrument;

use super::future::ResponseFuture;
use super::{http_connect, Config, Proxy, RouteChoice, Routed};
use crate::error::{BoxError, Error, ErrorKind, Phase};
use crate::info::{ConnectionInfo, Route};
use crate::stage::Transport;
use crate::target::{dial_uri, target_of};

/// Routes connections through a proxy or directly; made by
/// [`ProxyConnectLayer`](crate::ProxyConnectLayer).
#[derive(Clone, Debug)]
pub struct ProxyConnect<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> ProxyConnect<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        ProxyConnect { inner, config }
    }

    /// The base connector.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The base connector, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the base connector.
    pub fn into_inner(self) -> S {
        self.inner
    }
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
        self.inner
            .poll_ready(cx)
            .map_err(|e| Error::from_inner(e, ErrorKind::Dial, Phase::Dial).unwrap_or_else(|e| e))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        // Take the service that poll_ready readied, and leave a clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(Box::pin(connect(inner, self.config.clone(), dst)))
    }
}

async fn connect<S>(inner: S, config: Arc<Config>, dst: Uri) -> Result<Routed<S::Response>, Error>
where
    S: Service<Uri>,
    S::Response: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::Error: Into<BoxError>,
{
    let (target, _) = target_of(&dst)?;
    let proxy = match &config.route {
        RouteChoice::Direct => None,
        RouteChoice::Proxy(p) => Some(&**p),
    };
    let span = tracing::debug_span!(
        "tower_tunnel::connect",
        target = %target,
        proxy = proxy.map(|p| tracing::field::display(p.authority())),
    );
    establish(inner, &config, dst_route(proxy, &target), target, proxy)
        .instrument(span)
        .await
}

fn dst_route(proxy: Option<&Proxy>, target: &Authority) -> Uri {
    match proxy {
        Some(p) => p.uri().clone(),
        None => dial_uri(target),
    }
}

async fn establish<S>(
    mut inner: S,
    config: &Config,
    uri: Uri,
    target: Authority,
    proxy: Option<&Proxy>,
) -> Result<Routed<S::Response>, Error>
where
    S: Service<Uri>,
    S::Response: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::Error: Into<BoxError>,
{
    let hop = proxy.map(Proxy::authority);
    let started = Instant::now();
    let dial = inner.call(uri);
    let mut io = within(config.dial_timeout, Phase::Dial, dial)
        .await
        .map_err(|e| e.with_proxy(hop).with_target(&target))?
        .map_err(
            |e| match Error::from_inner(e, ErrorKind::Dial, Phase::Dial) {
                Ok(e) => e.with_proxy(hop).with_target(&target),
                Err(passed_through) => passed_through,
            },
        )?;
    let dialed = started.elapsed();
    tracing::debug!(elapsed = ?dialed, "dialed first hop");

    let Some(proxy) = proxy else {
        let mut info = ConnectionInfo::new(target, Route::Direct);
        info.timings.dial = Some(dialed);
        return Ok(Routed::new(io, info, Vec::new(), 0));
    };

    let connect_started = Instant::now();
    let request = http_connect::encode_request(&target, proxy);
    let exchange = http_connect::exchange(
        &mut io,
        &request,
        config.max_response_bytes,
        proxy.authority(),
        &target,
    );
    let established = within(config.connect_timeout, Phase::ProxyConnect, exchange)
        .await
        .map_err(|e| e.with_proxy(hop).with_target(&target))??;
    let connected = connect_started.elapsed();
    tracing::debug!(elapsed = ?connected, "proxy opened CONNECT tunnel");

    let mut info = ConnectionInfo::new(
        target,
        Route::Tunnel {
            proxy: proxy.authority().clone(),
        },
    );
    info.timings.dial = Some(dialed);
    info.timings.proxy_connect = Some(connected);
    Ok(Routed::new(io, info, established.buf, established.pos))
}

/// Runs `fut` under an optional deadline, failing with a timeout error for
/// `phase`.
pub(crate) async fn within<F: Future>(
    limit: Option<Duration>,
    phase: Phase,
    fut: F,
) -> Result<F::Output, Error> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| Error::timeout(phase, limit)),
        None => Ok(fut.await),
    }
}

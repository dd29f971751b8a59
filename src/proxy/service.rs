use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::Uri;
use tower_service::Service;
use tracing::Instrument;

use super::future::ResponseFuture;
use super::{digest, http_connect, socks, Config, Proxy, ProxyKind, Routed};
use crate::error::{BoxError, Error, ErrorKind, Phase};
use crate::info::{ConnectionInfo, Route};
use crate::stage::Transport;
use crate::target::{bare_host, dial_uri, target_of};

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
    let (target, tls) = target_of(&dst)?;
    let decision = config.proxies.decide(&dst);
    let span = tracing::debug_span!(
        "tower_tunnel::connect",
        target = %target,
        proxy = decision.proxy().map(tracing::field::display),
        rule = %decision.rule(),
        route = tracing::field::Empty,
    );
    let mut hop = Hop {
        inner,
        config: &config,
        target,
    };
    async move {
        let Some(proxy) = decision.into_proxy() else {
            let (io, dialed) = hop.dial(None).await?;
            let mut info = ConnectionInfo::new(hop.target, Route::Direct);
            info.timings.dial = Some(dialed);
            return Ok(established(Routed::new(io, info, Vec::new(), 0)));
        };
        let routed = match proxy.kind() {
            ProxyKind::Socks5 | ProxyKind::Socks5h | ProxyKind::Socks4a => {
                hop.socks(&proxy).await?
            }
            ProxyKind::Http | ProxyKind::Https if !tls && !proxy.is_http_tunneling() => {
                let (io, dialed) = hop.dial(Some(&proxy)).await?;
                let mut info = ConnectionInfo::new(
                    hop.target,
                    Route::Forward {
                        proxy: proxy.authority().clone(),
                    },
                );
                info.timings.dial = Some(dialed);
                Routed::forwarding(io, info, proxy)
            }
            _ => hop.tunnel(&proxy).await?,
        };
        Ok(established(routed))
    }
    .instrument(span)
    .await
}

/// Records the route on the connection's span, and hands the span up the
/// stack so the TLS and HTTP phases report under it.
fn established<T>(mut routed: Routed<T>) -> Routed<T> {
    let span = tracing::Span::current();
    span.record("route", tracing::field::display(routed.info().route()));
    tracing::debug!(route = %routed.info().route(), "route established");
    routed.info_mut().span = span;
    routed
}

/// One connection attempt's state: the base connector and the target.
struct Hop<'a, S> {
    inner: S,
    config: &'a Config,
    target: Authority,
}

impl<S> Hop<'_, S>
where
    S: Service<Uri>,
    S::Response: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::Error: Into<BoxError>,
{
    /// Dials the first hop: `proxy`, or the target itself.
    async fn dial(&mut self, proxy: Option<&Proxy>) -> Result<(S::Response, Duration), Error> {
        let started = Instant::now();
        let hop = proxy.map(Proxy::authority);
        let uri = match proxy {
            Some(p) => p.uri().clone(),
            None => dial_uri(&self.target),
        };
        // `poll_ready` readied `inner` for the first call; a retry (Digest)
        // waits for readiness again.
        std::future::poll_fn(|cx| self.inner.poll_ready(cx))
            .await
            .map_err(|e| self.dial_error(e, proxy))?;
        let dial = self.inner.call(uri);
        let io = within(self.config.dial_timeout, Phase::Dial, dial)
            .await
            .map_err(|e| e.with_proxy(hop).with_target(&self.target))?
            .map_err(|e| self.dial_error(e, proxy))?;
        let dialed = started.elapsed();
        tracing::debug!(elapsed = ?dialed, "dialed first hop");
        Ok((io, dialed))
    }

    fn dial_error(&self, e: S::Error, proxy: Option<&Proxy>) -> Error {
        match Error::from_inner(e, ErrorKind::Dial, Phase::Dial) {
            Ok(e) => {
                let e = e
                    .with_proxy(proxy.map(Proxy::authority))
                    .with_target(&self.target);
                match proxy.map(Proxy::kind) {
                    Some(ProxyKind::Https) => e.with_detail(
                        "an https:// proxy needs ProxyTlsLayer between ProxyConnectLayer and the connector",
                    ),
                    _ => e,
                }
            }
            Err(passed_through) if passed_through.target().is_none() => {
                passed_through.with_target(&self.target)
            }
            Err(passed_through) => passed_through,
        }
    }

    /// An HTTP `CONNECT` tunnel, answering a Digest challenge once.
    async fn tunnel(&mut self, proxy: &Proxy) -> Result<Routed<S::Response>, Error> {
        let (mut io, dialed) = self.dial(Some(proxy)).await?;
        let started = Instant::now();
        let first = self.exchange(&mut io, proxy, None).await;
        let (io, established) = match first {
            Ok(established) => (io, established),
            Err(err) => {
                let Some(authorization) = digest_answer(&err, proxy, &self.target)? else {
                    return Err(err);
                };
                // The 407 may carry a body and the proxy may close: answer
                // on a fresh connection (RFC 7235 lets a client retry).
                drop(io);
                tracing::debug!("answering the proxy's Digest challenge");
                let (mut io, _) = self.dial(Some(proxy)).await?;
                let established = self.exchange(&mut io, proxy, Some(&authorization)).await?;
                (io, established)
            }
        };
        let connected = started.elapsed();
        tracing::debug!(elapsed = ?connected, "proxy opened CONNECT tunnel");
        let mut info = ConnectionInfo::new(
            self.target.clone(),
            Route::Tunnel {
                proxy: proxy.authority().clone(),
            },
        );
        info.timings.dial = Some(dialed);
        info.timings.proxy_connect = Some(connected);
        Ok(Routed::new(io, info, established.buf, established.pos))
    }

    async fn exchange(
        &mut self,
        io: &mut S::Response,
        proxy: &Proxy,
        authorization: Option<&http::HeaderValue>,
    ) -> Result<http_connect::Established, Error> {
        let request = http_connect::encode_request(&self.target, proxy, authorization);
        let exchange = http_connect::exchange(
            io,
            request,
            self.config.max_response_bytes,
            proxy.authority(),
            &self.target,
        );
        within(self.config.connect_timeout, Phase::ProxyConnect, exchange)
            .await
            .map_err(|e| {
                e.with_proxy(Some(proxy.authority()))
                    .with_target(&self.target)
            })?
    }

    /// A SOCKS5 or SOCKS4a tunnel.
    async fn socks(&mut self, proxy: &Proxy) -> Result<Routed<S::Response>, Error> {
        let target_name = self.target.clone();
        let fail = |e: socks::SocksError| socks_error(e, proxy, &target_name);
        let host = bare_host(&self.target);
        let port = self.target.port_u16().unwrap_or(443);
        // socks5:// resolves locally (IP literals need no lookup); the
        // other kinds let the proxy resolve.
        let target = match proxy.kind() {
            ProxyKind::Socks5 => match host.parse::<std::net::IpAddr>() {
                Ok(ip) => socks::TargetAddr::Ip((ip, port).into()),
                Err(_) => socks::TargetAddr::Ip(socks::resolve(host, port).await.map_err(|e| {
                    Error::new(ErrorKind::Dial, Some(Phase::Dial))
                        .with_proxy(Some(proxy.authority()))
                        .with_target(&self.target)
                        .with_detail("could not resolve the target for a socks5:// proxy (socks5h:// lets the proxy resolve)")
                        .with_source(e)
                })?),
            },
            _ => socks::TargetAddr::from_host(host, port).map_err(fail)?,
        };
        let (mut io, dialed) = self.dial(Some(proxy)).await?;
        let started = Instant::now();
        let creds = proxy.credentials();
        let (handshake, route) = match proxy.kind() {
            ProxyKind::Socks4a => (
                futures_util::future::Either::Left(socks::socks4a_handshake(
                    &mut io,
                    target,
                    creds.map(|c| c.user.as_str()),
                )),
                Route::Socks4a {
                    proxy: proxy.authority().clone(),
                },
            ),
            _ => (
                futures_util::future::Either::Right(socks::socks5_handshake(
                    &mut io,
                    target,
                    creds.map(|c| (c.user.as_str(), c.password.as_str())),
                )),
                Route::Socks5 {
                    proxy: proxy.authority().clone(),
                },
            ),
        };
        within(self.config.connect_timeout, Phase::ProxyConnect, handshake)
            .await
            .map_err(|e| {
                e.with_proxy(Some(proxy.authority()))
                    .with_target(&self.target)
            })?
            .map_err(fail)?;
        let mut info = ConnectionInfo::new(self.target.clone(), route);
        info.timings.dial = Some(dialed);
        info.timings.proxy_connect = Some(started.elapsed());
        Ok(Routed::new(io, info, Vec::new(), 0))
    }
}

/// The Digest answer to a 407, when the proxy offers a challenge this
/// client can answer and credentials are set.
fn digest_answer(
    err: &Error,
    proxy: &Proxy,
    target: &Authority,
) -> Result<Option<http::HeaderValue>, Error> {
    let (Some(response), Some(creds)) = (err.proxy_response(), proxy.credentials()) else {
        return Ok(None);
    };
    if err.kind() != ErrorKind::ProxyAuthRequired {
        return Ok(None);
    }
    let challenges: Vec<_> = response
        .challenges()
        .flat_map(digest::parse_challenges)
        .collect();
    let Some(challenge) = digest::choose(&challenges) else {
        return Ok(None);
    };
    let cnonce = digest::new_cnonce().map_err(|e| {
        Error::new(ErrorKind::Io, Some(Phase::ProxyConnect))
            .with_detail(format!("no randomness for the Digest cnonce: {e}"))
    })?;
    digest::authorization(
        &challenge,
        &creds.user,
        &creds.password,
        "CONNECT",
        target.as_str(),
        &cnonce,
        1,
    )
    .map(Some)
    .map_err(|e| {
        Error::new(ErrorKind::ProxyMalformed, Some(Phase::ProxyConnect))
            .with_proxy(Some(proxy.authority()))
            .with_target(target)
            .with_detail("its Digest challenge cannot be answered")
            .with_source(e)
    })
}

/// The short reason of a SOCKS refusal: `host unreachable (reply 0x04)`.
fn socks_reason(e: &socks::SocksError) -> Option<String> {
    e.reply_code()?;
    let text = e.to_string();
    text.split_once(": ").map(|(_, why)| why.to_owned())
}

fn socks_error(e: socks::SocksError, proxy: &Proxy, target: &Authority) -> Error {
    use socks::SocksError as S;
    let kind = match &e {
        S::NoAcceptableMethods | S::AuthRequired => ErrorKind::ProxyAuthRequired,
        S::AuthFailed(_) => ErrorKind::ProxyAuthFailed,
        S::Malformed(_) => ErrorKind::ProxyMalformed,
        S::Closed { received: 0 } => ErrorKind::ProxyClosed,
        S::Closed { .. } => ErrorKind::ProxyTruncated,
        S::InvalidDomain { .. } | S::Socks4Ipv6(_) => ErrorKind::InvalidTarget,
        S::InvalidCredentials => ErrorKind::InvalidProxy,
        S::Io(_) => ErrorKind::Io,
        _ => ErrorKind::ProxyRefused,
    };
    Error::new(kind, Some(Phase::ProxyConnect))
        .with_proxy(Some(proxy.authority()))
        .with_target(target)
        .with_protocol(match proxy.kind() {
            ProxyKind::Socks4a => "SOCKS4a",
            _ => "SOCKS5",
        })
        .with_detail_opt(socks_reason(&e))
        .with_source(e)
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

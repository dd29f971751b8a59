use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::Uri;
use tower_service::Service;
use tracing::Instrument;

use super::future::ResponseFuture;
use super::{digest, h2, http_connect, socks, Config, Http2Mode, Proxy, ProxyKind, Routed};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::error::{BoxError, Error, ErrorKind, Phase, ProxyResponse};
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
    S::Response: Transport + hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
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
            ProxyKind::Https if proxy.http2() != Http2Mode::Never => hop.h2_tunnel(&proxy).await?,
            _ => hop.tunnel(&proxy, None).await?,
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
    S::Response: Transport + hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S::Error: Into<BoxError>,
{
    /// Dials the first hop: `proxy`, or the target itself.
    async fn dial(&mut self, proxy: Option<&Proxy>) -> Result<(S::Response, Duration), Error> {
        // Everything but an HTTP/2 tunnel speaks HTTP/1.1 to the proxy, so
        // an `https://` proxy is offered `http/1.1` alone.
        let uri = match proxy {
            Some(p) if p.kind() == ProxyKind::Https => p.http1_uri(),
            Some(p) => p.uri().clone(),
            None => dial_uri(&self.target),
        };
        self.dial_uri(proxy, uri).await
    }

    /// Dials `uri`, the first hop: `proxy`, or the target itself.
    async fn dial_uri(
        &mut self,
        proxy: Option<&Proxy>,
        uri: Uri,
    ) -> Result<(S::Response, Duration), Error> {
        let started = Instant::now();
        let hop = proxy.map(Proxy::authority);
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
    async fn tunnel(
        &mut self,
        proxy: &Proxy,
        dialed: Option<(S::Response, Duration)>,
    ) -> Result<Routed<S::Response>, Error> {
        let (mut io, dialed) = match dialed {
            Some(dialed) => dialed,
            None => self.dial(Some(proxy)).await?,
        };
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

    /// A `CONNECT` tunnel over HTTP/2 (RFC 9113 §8.5): one stream of a
    /// pooled connection to an `https://` proxy that selected `h2`. A proxy
    /// that did not gets HTTP/1.1 `CONNECT` on the connection just dialed,
    /// unless [`Http2Mode::Required`]. A Digest challenge is answered once,
    /// on a new stream.
    async fn h2_tunnel(&mut self, proxy: &Proxy) -> Result<Routed<S::Response>, Error> {
        let mut authorization = None;
        let mut dialed = None;
        loop {
            let req = h2::connect_request(&self.target, proxy, authorization.as_ref());
            let sent = match self.h2_send(proxy, req).await? {
                H2Send::Sent(sent, fresh) => {
                    dialed = fresh.or(dialed);
                    sent
                }
                H2Send::Http1(io) => return self.tunnel(proxy, Some(io)).await,
            };
            let started = Instant::now();
            match self.h2_exchange(proxy, sent).await {
                Ok((io, lease, stream)) => {
                    let connected = started.elapsed();
                    tracing::debug!(elapsed = ?connected, stream, "proxy opened CONNECT stream");
                    let mut info = ConnectionInfo::new(
                        self.target.clone(),
                        Route::H2Tunnel {
                            proxy: proxy.authority().clone(),
                            stream,
                        },
                    );
                    info.timings.dial = dialed;
                    info.timings.proxy_connect = Some(connected);
                    info.h2_shared = Some(lease.shared());
                    return Ok(Routed::h2(io, lease, info));
                }
                Err(err) => {
                    let answer = match authorization {
                        None => digest_answer(&err, proxy, &self.target)?,
                        Some(_) => None,
                    };
                    match answer {
                        Some(answer) => {
                            tracing::debug!("answering the proxy's Digest challenge");
                            authorization = Some(answer);
                        }
                        None => return Err(err),
                    }
                }
            }
        }
    }

    /// Sends `req` on a pooled HTTP/2 connection to `proxy`, opening one
    /// when none has a free slot.
    async fn h2_send(
        &mut self,
        proxy: &Proxy,
        req: http::Request<http_body_util::Empty<bytes::Bytes>>,
    ) -> Result<H2Send<S::Response>, Error> {
        let pool = proxy.h2_pool();
        let key = proxy.authority();
        let req = match pool.send(key, req) {
            Ok(sent) => return Ok(H2Send::Sent(sent, None)),
            Err(req) => *req,
        };
        // A burst of tunnels waits for one connection to open rather than
        // opening one each; a proxy known to answer without `h2` is
        // dialed at once, as HTTP/1.1 tunnels need a connection each.
        let opener = pool.opener(key);
        let _opening = match pool.is_h1_only(key) && proxy.http2() == Http2Mode::Auto {
            true => None,
            false => Some(opener.lock().await),
        };
        let req = match pool.send(key, req) {
            Ok(sent) => return Ok(H2Send::Sent(sent, None)),
            Err(req) => *req,
        };
        let (io, dialed, is_h2) = self.dial_h2(proxy).await?;
        if !is_h2 {
            if proxy.http2() == Http2Mode::Required {
                return Err(
                    Error::new(ErrorKind::ProxyAlpnMismatch, Some(Phase::ProxyConnect))
                        .with_proxy(Some(key))
                        .with_target(&self.target)
                        .with_detail("its Http2Mode is Required"),
                );
            }
            pool.set_h1_only(key);
            return Ok(H2Send::Http1((io, dialed)));
        }
        let send = self.h2_handshake(proxy, io).await?;
        Ok(H2Send::Sent(pool.insert(key, send, req), Some(dialed)))
    }

    /// Dials `proxy` offering `h2`, and says whether it selected it.
    async fn dial_h2(&mut self, proxy: &Proxy) -> Result<(S::Response, Duration, bool), Error> {
        let (io, dialed) = self.dial_uri(Some(proxy), proxy.uri().clone()).await?;
        let h2 = io.negotiated_h2();
        Ok((io, dialed, h2))
    }

    async fn h2_handshake(
        &mut self,
        proxy: &Proxy,
        io: S::Response,
    ) -> Result<hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>, Error>
    {
        let handshake = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io);
        let (send, conn) = within(self.config.connect_timeout, Phase::ProxyConnect, handshake)
            .await
            .map_err(|e| {
                e.with_proxy(Some(proxy.authority()))
                    .with_target(&self.target)
            })?
            .map_err(|e| {
                Error::new(ErrorKind::Handshake, Some(Phase::ProxyConnect))
                    .with_proxy(Some(proxy.authority()))
                    .with_target(&self.target)
                    .with_detail("HTTP/2 handshake with the proxy")
                    .with_source(e)
            })?;
        let span = tracing::debug_span!("tower_tunnel::h2_proxy", proxy = %proxy.authority());
        tokio::spawn(
            async move {
                match conn.await {
                    Ok(()) => tracing::debug!("HTTP/2 proxy connection closed"),
                    Err(e) => tracing::debug!(error = %e, "HTTP/2 proxy connection failed"),
                }
            }
            .instrument(span),
        );
        Ok(send)
    }

    /// Awaits the proxy's answer on the stream, and the tunnel it opens.
    async fn h2_exchange(
        &mut self,
        proxy: &Proxy,
        sent: h2::Sent,
    ) -> Result<(hyper::upgrade::Upgraded, h2::Lease, u32), Error> {
        let h2::Sent {
            conn,
            stream,
            lease,
            response,
        } = sent;
        let target = &self.target;
        let exchange = async {
            let res = response.await.map_err(|e| {
                // This connection takes no new tunnels; the next one opens
                // a fresh connection.
                proxy.h2_pool().evict(proxy.authority(), conn);
                h2_error(e, proxy, target)
            })?;
            if !res.status().is_success() {
                let kind = if res.status() == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED {
                    ErrorKind::ProxyAuthRequired
                } else {
                    ErrorKind::ProxyRefused
                };
                let (parts, _body) = res.into_parts();
                return Err(Error::new(kind, Some(Phase::ProxyConnect))
                    .with_proxy(Some(proxy.authority()))
                    .with_target(target)
                    .with_response(ProxyResponse {
                        status: parts.status,
                        reason: None,
                        headers: parts.headers,
                    }));
            }
            // RFC 9113 §8.5: after a 2xx, the stream's DATA frames are the
            // tunnel.
            hyper::upgrade::on(res)
                .await
                .map_err(|e| h2_error(e, proxy, target))
        };
        let io = within(self.config.connect_timeout, Phase::ProxyConnect, exchange)
            .await
            .map_err(|e| e.with_proxy(Some(proxy.authority())).with_target(target))??;
        Ok((io, lease, stream))
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

/// Where an HTTP/2 `CONNECT` went.
enum H2Send<T> {
    /// Sent on a pooled connection; the dial time when it was opened for it.
    Sent(h2::Sent, Option<Duration>),
    /// The proxy did not select `h2`: HTTP/1.1 on this connection.
    Http1((T, Duration)),
}

/// A failed HTTP/2 stream or connection to the proxy.
fn h2_error(e: hyper::Error, proxy: &Proxy, target: &Authority) -> Error {
    let (kind, detail) = if e.is_closed() || e.is_canceled() {
        (ErrorKind::ProxyClosed, "its HTTP/2 connection closed")
    } else {
        (
            ErrorKind::Io,
            "the HTTP/2 stream or connection failed (RST_STREAM or GOAWAY)",
        )
    };
    Error::new(kind, Some(Phase::ProxyConnect))
        .with_proxy(Some(proxy.authority()))
        .with_target(target)
        .with_detail(detail)
        .with_source(e)
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

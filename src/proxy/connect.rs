//! One connection attempt: decide the route, dial the first hop, do the
//! proxy's TLS, and run `CONNECT` (HTTP/1.1 or HTTP/2) or SOCKS over it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{HeaderValue, Uri};
use hyper_util::rt::TokioIo;
use tower_service::Service;
use tracing::Instrument;

use super::handshake::Handshake;
use super::optimistic::{Expect, Pending};
use super::optimistic_h2::{H2Pending, Resend};
use super::pool::{self, Lease, Pool};
use super::protocol::http2::{self, H2Stream};
use super::protocol::{http1, socks};
use super::proxy_tls::{ChainIo, FirstHop, ProxyAlpn};
use super::{Config, Routed, Tunnel};
use crate::error::{BoxError, Error, ErrorKind, Phase, ProxyProtocol, ProxyResponse};
use crate::info::{ConnectionInfo, Route, Timings};
use crate::route::{
    is_unreachable, Hop, Http2Mode, Proxy, ProxyKind, SkipReason, Skipped, MAX_CHAIN,
};
use crate::stage::Transport;
use crate::target::{bare_host, dial_uri, target_of};
use crate::timeout::within;

type H2Sender = h2::client::SendRequest<bytes::Bytes>;

/// Flow-control windows of HTTP/2 proxy connections, as hyper's client
/// sets them: 2 MiB a stream, 5 MiB the connection. A tunnel whose reader
/// stops fills its own stream's window and leaves room for the others.
const H2_STREAM_WINDOW: u32 = 2 << 20;
const H2_CONN_WINDOW: u32 = 5 << 20;
/// What one stream may queue for sending before a write waits (hyper's too).
const H2_SEND_BUFFER: usize = 1 << 20;

/// Makes the route to `dst`, as `config` decides it: the decision's hops
/// in order, moving on only while a hop cannot be reached.
pub(super) async fn connect<S>(
    inner: S,
    config: Arc<Config>,
    pool: Pool,
    dst: Uri,
) -> Result<Routed<S::Response>, Error>
where
    S: Service<Uri> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Transport + hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S::Error: Into<BoxError>,
{
    let (target, _) = target_of(&dst)?;
    let decision = config
        .proxies
        .decide_async(&dst)
        .await
        .map_err(|e| e.in_context(None, &target))?;
    let (hops, skipped, rule) = decision.into_parts();
    let span = tracing::debug_span!(
        "tower_tunnel::connect",
        target = %target,
        proxy = hops[0].proxy().map(tracing::field::display),
        rule = %rule,
        route = tracing::field::Empty,
    );
    let mut inner = inner;
    let mut attempt = Attempt {
        inner: &mut inner,
        config: &config,
        pool: &pool,
        target: &target,
        depth: 0,
        tls_target: crate::target::is_tls(&dst),
    };
    async {
        let mut routed = attempt.hops(&dst, &hops, skipped).await?;
        // The span goes up the stack with the info, so the TLS and HTTP
        // phases report under it.
        let span = tracing::Span::current();
        span.record("route", tracing::field::display(routed.info().route()));
        tracing::debug!(route = %routed.info().route(), "route established");
        routed.info_mut().span = span;
        Ok(routed)
    }
    .instrument(span)
    .await
}

/// Adds the hops passed over before `err` to its detail, so an error after
/// failover says what else was tried.
fn with_skipped(err: Error, skipped: &[Skipped]) -> Error {
    let tried: Vec<String> = skipped
        .iter()
        .filter(|s| matches!(s.reason(), SkipReason::Failed { .. }))
        .map(|s| s.hop().to_string())
        .collect();
    if tried.is_empty() {
        return err;
    }
    err.with_detail_suffix(&format!("after {} could not be reached", tried.join(", ")))
}

/// The first hop, dialed (and encrypted, for an `https://` proxy).
struct Dialed<T> {
    io: FirstHop<T>,
    dial: Duration,
    tls: Option<Duration>,
}

impl<T> Dialed<T> {
    fn timings(&self) -> Timings {
        Timings {
            dial: Some(self.dial),
            proxy_tls: self.tls,
            ..Timings::default()
        }
    }
}

/// One connection attempt's state: to the target, or (`depth` > 0) to
/// the next proxy of a chain, through the one before it.
struct Attempt<'a, S> {
    inner: &'a mut S,
    config: &'a Arc<Config>,
    pool: &'a Pool,
    target: &'a Authority,
    depth: usize,
    /// Whether TLS to the target runs over the route, so the first bytes
    /// written to it are a `ClientHello` (optimistic data may carry them).
    tls_target: bool,
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

impl<S> Attempt<'_, S>
where
    S: Service<Uri> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Transport + hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S::Error: Into<BoxError>,
{
    /// Tries `hops` in order, moving to the next only while one cannot be
    /// reached ([`is_unreachable`]); an answer of a proxy's, or the last
    /// hop's failure, is returned. The failover memory learns of each hop
    /// that failed or answered.
    async fn hops(
        &mut self,
        dst: &Uri,
        hops: &[Hop],
        mut skipped: Vec<Skipped>,
    ) -> Result<Routed<S::Response>, Error> {
        let failover = self.config.proxies.failover();
        let mut hops = hops.iter().peekable();
        while let Some(hop) = hops.next() {
            let result = match hop {
                Hop::Direct => self.direct().await,
                Hop::Proxy(proxy) => {
                    self.through(proxy, proxy.forwards(dst))
                        .await
                        .map(|mut routed| {
                            routed.info_mut().proxy = Some(proxy.clone());
                            routed
                        })
                }
            };
            // Every error of the attempt names the proxy and the target,
            // filled in here once.
            let result =
                result.map_err(|e| e.in_context(hop.proxy().map(Proxy::authority), self.target));
            skipped.retain(|s| s.hop() != hop);
            match result {
                Ok(mut routed) => {
                    failover.reached(hop);
                    routed.info_mut().skipped = skipped;
                    return Ok(routed);
                }
                Err(e) if is_unreachable(&e) => {
                    failover.failed(hop, e.kind());
                    if hops.peek().is_none() {
                        return Err(with_skipped(e, &skipped));
                    }
                    tracing::debug!(hop = %hop, error = %e, "hop unreachable; trying the next");
                    let reason = SkipReason::Failed {
                        kind: e.kind(),
                        message: e.to_string(),
                    };
                    // Tried hops first, in the order tried.
                    let tried = skipped
                        .iter()
                        .take_while(|s| matches!(s.reason(), SkipReason::Failed { .. }))
                        .count();
                    skipped.insert(tried, Skipped::new(hop.clone(), reason));
                }
                Err(e) => return Err(with_skipped(e, &skipped)),
            }
        }
        unreachable!("a decision has at least one hop")
    }

    async fn direct(&mut self) -> Result<Routed<S::Response>, Error> {
        let (io, dial) = self.dial(dial_uri(self.target)).await?;
        let mut info = ConnectionInfo::new(self.target.clone(), Route::Direct);
        info.timings.dial = Some(dial);
        Ok(Routed::new(
            Tunnel::hop(FirstHop::Plain(io), Vec::new(), 0),
            info,
        ))
    }

    /// The route through `proxy`: forwarded when `forward` (an `http://`
    /// target through an HTTP proxy), else a tunnel.
    async fn through(
        &mut self,
        proxy: &Proxy,
        forward: bool,
    ) -> Result<Routed<S::Response>, Error> {
        if proxy.kind() == ProxyKind::Https && self.config.proxy_tls.is_none() {
            return Err(Error::new(ErrorKind::ProxyTlsNotConfigured, None));
        }
        match proxy.kind() {
            kind if kind.is_socks() => self.socks(proxy).await,
            _ if forward => {
                let hop = self.first_hop(proxy, ProxyAlpn::Http1).await?;
                let mut info = ConnectionInfo::new(
                    self.target.clone(),
                    Route::Forward {
                        proxy: proxy.authority().clone(),
                    },
                );
                info.timings = hop.timings();
                Ok(Routed::new(Tunnel::hop(hop.io, Vec::new(), 0), info))
            }
            // Through a chain, an https:// proxy gets HTTP/1.1: the pool
            // keeps connections dialed from here only.
            // HTTP/2 has no connection-bound authentication (RFC 9113
            // §8.2.3): NTLM and Negotiate get HTTP/1.1.
            ProxyKind::Https
                if proxy.http2() != Http2Mode::Never
                    && proxy.preproxy().is_none()
                    && !proxy.auth_mode().is_connection_bound() =>
            {
                self.h2_tunnel(proxy).await
            }
            _ => self.tunnel(proxy, None).await,
        }
    }

    /// A tunnel to `to` (the next proxy of a chain) through `outer`.
    fn chain_to<'b>(
        &'b mut self,
        outer: &'b Proxy,
        to: &'b Authority,
    ) -> BoxFuture<'b, Result<Tunnel<S::Response>, Error>> {
        Box::pin(async move {
            if self.depth + 2 > MAX_CHAIN {
                return Err(Error::new(ErrorKind::InvalidProxy, None)
                    .with_detail(format!("a proxy chain holds at most {MAX_CHAIN} proxies")));
            }
            let mut hop = Attempt {
                inner: &mut *self.inner,
                config: self.config,
                pool: self.pool,
                target: to,
                depth: self.depth + 1,
                tls_target: false,
            };
            // Each hop's errors name that hop, and the next proxy as its
            // target.
            let routed = hop
                .through(outer, false)
                .await
                .map_err(|e| e.in_context(Some(outer.authority()), to))?;
            tracing::debug!(route = %routed.info().route(), "reached the next proxy of the chain");
            Ok(routed.into_parts().0)
        })
    }

    /// Dials `uri` with the base connector, and turns Nagle off on the
    /// stream unless configured not to.
    async fn dial(&mut self, uri: Uri) -> Result<(S::Response, Duration), Error> {
        let started = Instant::now();
        // `poll_ready` readied `inner` for the first call; a second dial
        // (a Digest retry) waits for readiness again.
        std::future::poll_fn(|cx| self.inner.poll_ready(cx))
            .await
            .map_err(Error::from_below)?;
        let io = within(self.config.dial_timeout, Phase::Dial, self.inner.call(uri))
            .await?
            .map_err(Error::from_below)?;
        if self.config.nodelay {
            // A socket that closed already fails later with a better error.
            if let Err(e) = io.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        }
        let dialed = started.elapsed();
        tracing::debug!(elapsed = ?dialed, "dialed first hop");
        Ok((io, dialed))
    }

    /// Reaches `proxy`: dialed, or tunnelled through its pre-proxy; with
    /// TLS to it when it is an `https://` proxy, offering `alpn`.
    async fn first_hop(
        &mut self,
        proxy: &Proxy,
        alpn: ProxyAlpn,
    ) -> Result<Dialed<S::Response>, Error> {
        let started = Instant::now();
        let reached = match proxy.preproxy() {
            None => Reached::Dialed(self.dial(dial_uri(proxy.authority())).await?.0),
            Some(outer) => {
                Reached::Chained(Box::new(self.chain_to(outer, proxy.authority()).await?))
            }
        };
        let dial = started.elapsed();
        if proxy.kind() != ProxyKind::Https {
            let io = match reached {
                Reached::Dialed(io) => FirstHop::Plain(io),
                Reached::Chained(io) => FirstHop::Chained(io),
            };
            return Ok(Dialed {
                io,
                dial,
                tls: None,
            });
        }
        let config = self
            .config
            .proxy_tls
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::ProxyTlsNotConfigured, None))?;
        let started = Instant::now();
        let timeout = self.config.proxy_tls_timeout;
        let io = match reached {
            Reached::Dialed(io) => {
                let handshake = config.handshake(io, proxy.authority(), alpn);
                FirstHop::Tls(Box::new(
                    within(timeout, Phase::ProxyTls, handshake).await??,
                ))
            }
            Reached::Chained(io) => {
                let handshake = config.handshake(io, proxy.authority(), ProxyAlpn::Http1);
                FirstHop::Chained(Box::new(
                    within(timeout, Phase::ProxyTls, handshake).await??,
                ))
            }
        };
        let tls = started.elapsed();
        tracing::debug!(elapsed = ?tls, h2 = io.is_h2(), "TLS handshake with the proxy done");
        Ok(Dialed {
            io,
            dial,
            tls: Some(tls),
        })
    }

    /// An HTTP/1.1 `CONNECT` tunnel, authenticated as the proxy's
    /// [`ProxyAuth`](crate::ProxyAuth) mode says: a per-request scheme
    /// (Basic, Digest) answered once on a fresh connection, a
    /// connection-bound one (NTLM, Negotiate) on the same connection, which
    /// is dialed again once if the proxy closes it mid-handshake.
    async fn tunnel(
        &mut self,
        proxy: &Proxy,
        hop: Option<Dialed<S::Response>>,
    ) -> Result<Routed<S::Response>, Error> {
        let mut hop = match hop {
            Some(hop) => hop,
            None => self.first_hop(proxy, ProxyAlpn::Http1).await?,
        };
        let started = Instant::now();
        let mut handshake = Handshake::new(proxy, self.target);
        let mut authorization = handshake.start();
        if self.is_optimistic(proxy) {
            // The request goes with the ClientHello; the answer is read
            // before the ServerHello.
            let request = http1::encode_request(self.target, proxy, authorization.as_ref());
            let expect = Expect::Http1 {
                max_head: self.config.max_response_bytes,
            };
            return Ok(self.optimistic(
                proxy,
                hop,
                request,
                expect,
                route_tunnel(proxy),
                handshake.scheme(),
            ));
        }
        let mut redialed = false;
        // The 407 the next request answers on a kept connection, while a
        // connection-bound handshake goes on.
        let mut pending: Option<http1::Refused> = None;
        // Bounded: NTLM takes three requests, SPNEGO rarely more; a proxy
        // that keeps asking gets its refusal back.
        let mut rounds = 0;
        let established = loop {
            rounds += 1;
            let answer = self
                .exchange(&mut hop.io, proxy, authorization.as_ref())
                .await;
            let refused = match answer {
                Ok(http1::Answer::Established(established)) => break established,
                Ok(http1::Answer::Refused(refused)) => refused,
                // The proxy closed the connection its 407 left open, without
                // saying so.
                Err(e) if e.kind() == ErrorKind::ProxyClosed && pending.is_some() => {
                    let last = pending.take().expect("checked by the guard");
                    if redialed {
                        return Err(last.into_error().with_detail(
                            "the proxy closed the connection in the middle of the handshake, twice",
                        ));
                    }
                    // Once: start over on a new connection.
                    redialed = true;
                    tracing::debug!("the proxy closed mid-handshake; starting over");
                    hop = self.first_hop(proxy, ProxyAlpn::Http1).await?;
                    authorization = handshake.restart();
                    continue;
                }
                Err(e) => return Err(e),
            };
            pending = None;
            if refused.response.status() != http::StatusCode::PROXY_AUTHENTICATION_REQUIRED
                || rounds > MAX_AUTH_ROUNDS
            {
                return Err(refused.into_error());
            }
            let Some(step) = handshake.answer(&refused.response).await? else {
                return Err(refused.into_error());
            };
            if step.same_connection {
                match self.drain(&mut hop.io, &refused).await? {
                    Kept::Yes => pending = Some(refused),
                    // The proxy closes after its 407: once, start over on a
                    // new connection (the handshake is the connection's).
                    Kept::No if !redialed => {
                        redialed = true;
                        tracing::debug!("the proxy closed mid-handshake; starting over");
                        hop = self.first_hop(proxy, ProxyAlpn::Http1).await?;
                        authorization = handshake.restart();
                        continue;
                    }
                    Kept::No => return Err(refused.into_error()),
                }
            } else {
                // The 407 may carry a body and the proxy may close: answer
                // on a fresh connection (RFC 7235 lets a client retry).
                drop(hop);
                hop = self.first_hop(proxy, ProxyAlpn::Http1).await?;
            }
            authorization = Some(step.authorization);
        };
        let connected = started.elapsed();
        tracing::debug!(elapsed = ?connected, auth = handshake.scheme(), "proxy opened CONNECT tunnel");
        let mut info = ConnectionInfo::new(
            self.target.clone(),
            Route::Tunnel {
                proxy: proxy.authority().clone(),
            },
        );
        info.timings = hop.timings();
        info.timings.proxy_connect = Some(connected);
        info.proxy_response = Some(established.response);
        info.proxy_auth = handshake.scheme();
        Ok(Routed::new(Tunnel::hop(hop.io, established.rest, 0), info))
    }

    async fn exchange(
        &mut self,
        io: &mut FirstHop<S::Response>,
        proxy: &Proxy,
        authorization: Option<&HeaderValue>,
    ) -> Result<http1::Answer, Error> {
        let mut request = http1::RequestBuf::new();
        http1::write_request(&mut request, self.target, proxy, authorization);
        let exchange =
            http1::exchange_answer(io, request.as_slice(), self.config.max_response_bytes);
        within(self.config.connect_timeout, Phase::ProxyConnect, exchange).await?
    }

    /// Reads a refusal's body to its end, so its connection can carry the
    /// next step; says whether it can.
    async fn drain(
        &mut self,
        io: &mut FirstHop<S::Response>,
        refused: &http1::Refused,
    ) -> Result<Kept, Error> {
        let buffered = &refused.buf[refused.pos..];
        let drain =
            http1::read_refusal_body(io, &refused.response, buffered, http1::MAX_REFUSAL_BODY);
        match within(self.config.connect_timeout, Phase::ProxyConnect, drain).await? {
            Ok(drained) if !drained.close && drained.leftover.is_empty() => Ok(Kept::Yes),
            Ok(_) | Err(http1::BodyError::NotDelimited) => Ok(Kept::No),
            Err(http1::BodyError::Truncated | http1::BodyError::Io(_)) => Ok(Kept::No),
            Err(e) => Err(e.into_error()),
        }
    }

    /// A `CONNECT` tunnel over HTTP/2 (RFC 9113 §8.5): one stream of a
    /// pooled connection to an `https://` proxy that selected `h2`. A proxy
    /// that did not gets HTTP/1.1 `CONNECT` on the connection just dialed,
    /// unless [`Http2Mode::Required`]. A Digest challenge is answered once,
    /// on a new stream. A stream the proxy says it never processed (its
    /// `GOAWAY` or `REFUSED_STREAM`) is sent again once, on a fresh
    /// connection.
    async fn h2_tunnel(&mut self, proxy: &Proxy) -> Result<Routed<S::Response>, Error> {
        let key = pool::Key::new(proxy);
        let mut handshake = Handshake::new(proxy, self.target);
        let mut authorization = handshake.start();
        let mut opened: Option<Timings> = None;
        let mut retried = false;
        loop {
            let target = self.target;
            let make = || http2::connect_request(target, proxy, authorization.as_ref());
            let sent = match self.h2_send(proxy, &key, &make).await? {
                H2Send::Sent(sent, fresh) => {
                    opened = fresh.or(opened);
                    sent
                }
                H2Send::Http1(hop) => return self.tunnel(proxy, Some(hop)).await,
            };
            if self.is_optimistic(proxy) {
                // The tunnel's first bytes go behind the HEADERS; the answer
                // is read before the first byte read.
                return Ok(self.h2_optimistic(proxy, sent, opened, authorization, &handshake));
            }
            let started = Instant::now();
            match self.h2_exchange(proxy, &key, sent).await {
                Ok(H2Tunnel {
                    io,
                    lease,
                    stream,
                    response,
                }) => {
                    let connected = started.elapsed();
                    tracing::debug!(elapsed = ?connected, stream, "proxy opened CONNECT stream");
                    let mut info = ConnectionInfo::new(
                        self.target.clone(),
                        Route::H2Tunnel {
                            proxy: proxy.authority().clone(),
                            stream,
                        },
                    );
                    info.timings = opened.unwrap_or_default();
                    info.timings.proxy_connect = Some(connected);
                    info.h2_shared = Some(lease.shared());
                    info.h2_retried = retried;
                    info.proxy_response = Some(response);
                    info.proxy_auth = handshake.scheme();
                    return Ok(Routed::new(Tunnel::h2(io, lease), info));
                }
                // Never processed: safe to send again, once (RFC 9113 §8.7).
                Err(err) if !retried && is_unprocessed(&err) => {
                    tracing::debug!(error = %err, "proxy did not process the CONNECT stream; sending it again");
                    retried = true;
                }
                Err(err) => {
                    let step = match err.proxy_response() {
                        Some(r) if err.kind() == ErrorKind::ProxyAuthRequired => {
                            handshake.answer(r).await?
                        }
                        _ => None,
                    };
                    match step {
                        // Each stream is a request of its own: a
                        // connection-bound scheme cannot run on one.
                        Some(step) if step.same_connection => {
                            return Err(err.with_detail(
                                "it asks for a connection-bound scheme, which HTTP/2 cannot carry: \
                                 set ProxyAuth::Ntlm or ProxyAuth::Negotiate (HTTP/1.1 to the proxy)",
                            ))
                        }
                        Some(step) => authorization = Some(step.authorization),
                        None => return Err(err),
                    }
                }
            }
        }
    }

    /// Sends the `CONNECT` `make` builds on a pooled HTTP/2 connection to
    /// `proxy` with room for one more stream, opening a connection when
    /// none has room.
    async fn h2_send(
        &mut self,
        proxy: &Proxy,
        key: &pool::Key,
        make: &(dyn Fn() -> http::Request<()> + Sync),
    ) -> Result<H2Send<S::Response>, Error> {
        if let Some(sent) = self.pool.send(key, make) {
            return Ok(H2Send::Sent(sent, None));
        }
        // A burst of tunnels waits for one connection to open rather than
        // opening one each; a proxy known to answer without `h2` is
        // dialed at once, as HTTP/1.1 tunnels need a connection each.
        let opener = self.pool.opener(key);
        let opening = match self.pool.is_h1_only(key) && proxy.http2() == Http2Mode::Auto {
            true => None,
            false => Some(opener.lock_owned().await),
        };
        if let Some(sent) = self.pool.send(key, make) {
            return Ok(H2Send::Sent(sent, None));
        }
        let hop = self.first_hop(proxy, ProxyAlpn::H2OrHttp1).await?;
        if !hop.io.is_h2() {
            if proxy.http2() == Http2Mode::Required {
                return Err(
                    Error::new(ErrorKind::ProxyAlpnMismatch, Some(Phase::ProxyConnect))
                        .with_detail("its Http2Mode is Required"),
                );
            }
            self.pool.set_h1_only(key);
            return Ok(H2Send::Http1(hop));
        }
        let timings = hop.timings();
        let (send, ping, task) = self.h2_handshake(proxy, hop.io).await?;
        let sent = self.pool.insert(key, send, make()).map_err(h2_error)?;
        // The tunnels waiting behind `opening` need the proxy's
        // SETTINGS_MAX_CONCURRENT_STREAMS: they are the server's first
        // frame (RFC 9113 §3.4), so they are in once its answer to a PING
        // is. This tunnel goes on meanwhile: its CONNECT (and, with
        // optimistic data, the first bytes of its tunnel) need not wait.
        let settle = self.pool.settle_on_drop(key, sent.conn);
        if let Some(mut ping) = ping {
            // Bounded even without a connect timeout: past it the
            // connection is shared on its own merits.
            let limit = self
                .config
                .connect_timeout
                .or(Some(crate::timeout::DEFAULT_TIMEOUT));
            // The connection's mark, not the pool: this task lives as long
            // as the connection, which must not keep the pool alive.
            let keep_alive = self
                .config
                .h2_keep_alive
                .map(|every| (every, sent.lease.silence()));
            tokio::spawn(
                async move {
                    let pong = ping.ping(h2::Ping::opaque());
                    let answered = within(limit, Phase::ProxyConnect, pong).await;
                    match &answered {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::debug!(error = %e, "the HTTP/2 proxy connection ended before its PING answer"),
                        Err(e) => tracing::debug!(error = %e, "no PING answer from the HTTP/2 proxy"),
                    }
                    // Settled (whether the PING was answered or not), then
                    // the next tunnels may look.
                    drop(settle);
                    drop(opening);
                    let Some((every, silence)) = keep_alive else {
                        return;
                    };
                    // A PING still unanswered cannot be followed by another.
                    if answered.is_err() || h2_keep_alive(&mut ping, every).await.is_err() {
                        tracing::debug!(interval = ?every, "no answer to a keep-alive PING: closing the HTTP/2 proxy connection");
                        silence.mark();
                        task.abort();
                    }
                }
                .in_current_span(),
            );
        }
        Ok(H2Send::Sent(sent, Some(timings)))
    }

    async fn h2_handshake(
        &mut self,
        proxy: &Proxy,
        io: FirstHop<S::Response>,
    ) -> Result<(H2Sender, Option<h2::PingPong>, tokio::task::AbortHandle), Error> {
        let handshake = h2::client::Builder::new()
            .initial_max_send_streams(pool::INITIAL_MAX_STREAMS)
            .initial_window_size(H2_STREAM_WINDOW)
            .initial_connection_window_size(H2_CONN_WINDOW)
            .max_send_buffer_size(H2_SEND_BUFFER)
            .enable_push(false)
            .handshake::<_, bytes::Bytes>(TokioIo::new(io));
        let (send, mut conn) = within(self.config.connect_timeout, Phase::ProxyConnect, handshake)
            .await?
            .map_err(|e| {
                if closed_under(&e) {
                    return h2_error(e);
                }
                Error::new(ErrorKind::Handshake, Some(Phase::ProxyConnect))
                    .with_detail("HTTP/2 handshake with the proxy")
                    .with_source(e)
            })?;
        let ping = conn.ping_pong();
        let span = tracing::debug_span!("tower_tunnel::h2_proxy", proxy = %proxy.authority());
        let task = tokio::spawn(
            async move {
                match conn.await {
                    Ok(()) => tracing::debug!("HTTP/2 proxy connection closed"),
                    Err(e) => tracing::debug!(error = %e, "HTTP/2 proxy connection failed"),
                }
            }
            .instrument(span),
        );
        Ok((send, ping, task.abort_handle()))
    }

    /// Awaits the proxy's answer on the stream, and the tunnel it opens.
    async fn h2_exchange(
        &mut self,
        proxy: &Proxy,
        key: &pool::Key,
        sent: pool::Sent,
    ) -> Result<H2Tunnel, Error> {
        let pool::Sent {
            conn,
            stream,
            lease,
            response,
            send,
        } = sent;
        let exchange = async {
            let res = response.await.map_err(|e| {
                // A failed connection takes no new tunnels; the next one
                // opens a fresh connection.
                if e.is_io() || e.is_go_away() {
                    self.pool.evict(key, conn);
                }
                h2_error(e)
            })?;
            let (body, answer) = h2_answer(res)?;
            let io = H2Stream::new(send, body, proxy.authority(), self.target);
            Ok((io, answer))
        };
        let answered = within(self.config.connect_timeout, Phase::ProxyConnect, exchange).await;
        if answered.is_err() {
            // No answer in time: the connection may be dead without a
            // FIN or RST ever coming; new tunnels go to another.
            lease.mark_silent();
        }
        let (io, response) = answered??;
        Ok(H2Tunnel {
            io,
            lease,
            stream,
            response,
        })
    }

    /// A SOCKS5 or SOCKS4a tunnel.
    async fn socks(&mut self, proxy: &Proxy) -> Result<Routed<S::Response>, Error> {
        let host = bare_host(self.target);
        let port = self
            .target
            .port_u16()
            .expect("target_of makes the target's port explicit");
        let protocol = match proxy.kind() {
            ProxyKind::Socks4a => ProxyProtocol::Socks4a,
            ProxyKind::Socks4 => ProxyProtocol::Socks4,
            _ => ProxyProtocol::Socks5,
        };
        let fail = |e: socks::SocksError| socks_error(e, protocol);
        let unresolved = |e: std::io::Error| {
            Error::new(ErrorKind::Dial, Some(Phase::Dial))
                .with_detail(format!(
                    "could not resolve the target for a {}:// proxy ({}h:// or socks4a:// let the proxy resolve)",
                    proxy.kind(),
                    "socks5"
                ))
                .with_source(e)
        };
        // socks5:// and socks4:// resolve here (IP literals need no
        // lookup); the other kinds let the proxy resolve.
        let target = match (proxy.kind(), host.parse::<std::net::IpAddr>()) {
            (ProxyKind::Socks5 | ProxyKind::Socks4, Ok(ip)) => {
                socks::TargetAddr::Ip((ip, port).into())
            }
            (ProxyKind::Socks5, Err(_)) => {
                socks::TargetAddr::Ip(socks::resolve(host, port).await.map_err(unresolved)?)
            }
            (ProxyKind::Socks4, Err(_)) => match socks::resolve_v4(host, port).await {
                Ok(addr) => socks::TargetAddr::Ip(addr),
                Err(socks::SocksError::Io(e)) => return Err(unresolved(e)),
                Err(e) => return Err(fail(e)),
            },
            _ => socks::TargetAddr::from_host(host, port).map_err(fail)?,
        };
        let mut hop = self.first_hop(proxy, ProxyAlpn::Http1).await?;
        let started = Instant::now();
        let creds = proxy.credentials();
        if self.is_optimistic(proxy) {
            return self.socks_optimistic(proxy, hop, protocol, target).await;
        }
        let (handshake, route) = match proxy.kind() {
            ProxyKind::Socks4 => (
                futures_util::future::Either::Left(socks::socks4a_handshake(
                    &mut hop.io,
                    target,
                    creds.map(|c| c.user.as_str()),
                )),
                Route::Socks4 {
                    proxy: proxy.authority().clone(),
                },
            ),
            ProxyKind::Socks4a => (
                futures_util::future::Either::Left(socks::socks4a_handshake(
                    &mut hop.io,
                    target,
                    creds.map(|c| c.user.as_str()),
                )),
                Route::Socks4a {
                    proxy: proxy.authority().clone(),
                },
            ),
            _ => (
                futures_util::future::Either::Right(socks::socks5_handshake(
                    &mut hop.io,
                    target,
                    creds.map(|c| (c.user.as_str(), c.password.as_str())),
                    proxy.is_socks_pipelining(),
                )),
                Route::Socks5 {
                    proxy: proxy.authority().clone(),
                },
            ),
        };
        within(self.config.connect_timeout, Phase::ProxyConnect, handshake)
            .await
            .map_err(|e| match proxy.is_socks_pipelining() {
                // A server that reads one message per read drops what came
                // with the greeting, and never answers the request.
                true => e.with_detail(
                    "no answer to the SOCKS5 request sent with the greeting: this server may \
                     drop pipelined messages (microsocks does); turn Proxy::with_socks_pipelining off",
                ),
                false => e,
            })?
            .map_err(fail)?;
        let mut info = ConnectionInfo::new(self.target.clone(), route);
        info.timings = hop.timings();
        info.timings.proxy_connect = Some(started.elapsed());
        Ok(Routed::new(Tunnel::hop(hop.io, Vec::new(), 0), info))
    }
}

impl<S> Attempt<'_, S>
where
    S: Service<Uri> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Transport + hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S::Error: Into<BoxError>,
{
    /// Whether the tunnel request to `proxy` leaves with the target's
    /// `ClientHello` ([`Proxy::with_optimistic_data`]): only for the last
    /// proxy of the route, and only when TLS to the target follows.
    fn is_optimistic(&self, proxy: &Proxy) -> bool {
        self.tls_target && self.depth == 0 && proxy.is_optimistic_data()
    }

    /// The route, with `request` to send with the first write and its
    /// answer to read before the first read. `proxy_connect` and the
    /// proxy's answer are filled in once the answer is read.
    fn optimistic(
        &self,
        proxy: &Proxy,
        hop: Dialed<S::Response>,
        request: Vec<u8>,
        expect: Expect,
        route: Route,
        auth: Option<&'static str>,
    ) -> Routed<S::Response> {
        tracing::debug!("tunnel request queued, to go with the first bytes of the tunnel");
        let pending = Pending::new(
            request,
            expect,
            proxy.authority().clone(),
            self.target.clone(),
        );
        let mut info = ConnectionInfo::new(self.target.clone(), route);
        info.timings = hop.timings();
        info.proxy_auth = auth;
        Routed::new(Tunnel::optimistic(hop.io, pending), info)
    }

    /// The route over the HTTP/2 `CONNECT` stream `sent`, not answered yet:
    /// what is written to it goes out at once, as DATA behind the HEADERS,
    /// and the answer is read before the first read (within the connect
    /// timeout). `proxy_connect`, the proxy's answer and, when the stream is
    /// sent again, the route's stream are filled in once it is read.
    fn h2_optimistic(
        &self,
        proxy: &Proxy,
        sent: pool::Sent,
        opened: Option<Timings>,
        authorization: Option<HeaderValue>,
        handshake: &Handshake<'_>,
    ) -> Routed<S::Response> {
        tracing::debug!(
            stream = sent.stream,
            "CONNECT stream sent; the first bytes of the tunnel go right behind it"
        );
        let mut info = ConnectionInfo::new(
            self.target.clone(),
            Route::H2Tunnel {
                proxy: proxy.authority().clone(),
                stream: sent.stream,
            },
        );
        info.timings = opened.unwrap_or_default();
        info.h2_shared = Some(sent.lease.shared());
        info.proxy_auth = handshake.scheme();
        let resend = self.resender(proxy, authorization);
        let pending = H2Pending::new(
            sent,
            resend,
            self.config.connect_timeout,
            proxy.authority(),
            self.target,
        );
        Routed::new(Tunnel::h2_optimistic(pending), info)
    }

    /// Sends the `CONNECT` to `proxy` again, on a new stream of a pooled or
    /// new HTTP/2 connection to it: for an optimistic stream the proxy did
    /// not process. The same proxy, the same target, the same credentials;
    /// never another hop.
    fn resender(&self, proxy: &Proxy, authorization: Option<HeaderValue>) -> Resend {
        let mut inner = self.inner.clone();
        let config = Arc::clone(self.config);
        let pool = self.pool.clone();
        let proxy = proxy.clone();
        let target = self.target.clone();
        Box::new(move || {
            Box::pin(async move {
                let key = pool::Key::new(&proxy);
                let mut attempt = Attempt {
                    inner: &mut inner,
                    config: &config,
                    pool: &pool,
                    target: &target,
                    depth: 0,
                    tls_target: true,
                };
                let make = || http2::connect_request(&target, &proxy, authorization.as_ref());
                match attempt.h2_send(&proxy, &key, &make).await? {
                    H2Send::Sent(sent, _) => Ok(sent),
                    H2Send::Http1(_) => Err(Error::new(
                        ErrorKind::ProxyAlpnMismatch,
                        Some(Phase::ProxyConnect),
                    )
                    .with_detail(
                        "the connection dialed to send an unprocessed CONNECT stream again \
                         did not select h2",
                    )),
                }
            })
        })
    }

    /// SOCKS with optimistic data: the greeting and authentication as
    /// usual (unless pipelined), then the request goes with the first
    /// bytes of the tunnel.
    async fn socks_optimistic(
        &mut self,
        proxy: &Proxy,
        mut hop: Dialed<S::Response>,
        protocol: ProxyProtocol,
        target: socks::TargetAddr,
    ) -> Result<Routed<S::Response>, Error> {
        let fail = |e: socks::SocksError| socks_error(e, protocol);
        let creds = proxy.credentials();
        let (deferred, route) = match proxy.kind() {
            ProxyKind::Socks4 | ProxyKind::Socks4a => {
                let route = if proxy.kind() == ProxyKind::Socks4 {
                    Route::Socks4 {
                        proxy: proxy.authority().clone(),
                    }
                } else {
                    Route::Socks4a {
                        proxy: proxy.authority().clone(),
                    }
                };
                let user = creds.map(|c| c.user.as_str());
                (socks::socks4a_start(&target, user).map_err(fail)?, route)
            }
            _ => {
                let start = socks::socks5_start(
                    &mut hop.io,
                    &target,
                    creds.map(|c| (c.user.as_str(), c.password.as_str())),
                    proxy.is_socks_pipelining(),
                );
                let deferred = within(self.config.connect_timeout, Phase::ProxyConnect, start)
                    .await?
                    .map_err(fail)?;
                let route = Route::Socks5 {
                    proxy: proxy.authority().clone(),
                };
                (deferred, route)
            }
        };
        let expect = Expect::Socks {
            protocol,
            replies: deferred.replies,
        };
        Ok(self.optimistic(proxy, hop, deferred.request, expect, route, None))
    }
}

fn route_tunnel(proxy: &Proxy) -> Route {
    Route::Tunnel {
        proxy: proxy.authority().clone(),
    }
}

/// The most `CONNECT`s one tunnel's authentication may take.
const MAX_AUTH_ROUNDS: usize = 4;

/// Whether a connection can carry the next step of a handshake.
enum Kept {
    Yes,
    No,
}

/// A proxy reached, before its TLS.
enum Reached<T> {
    Dialed(T),
    Chained(Box<dyn ChainIo>),
}

/// Where an HTTP/2 `CONNECT` went.
enum H2Send<T> {
    /// Sent on a pooled connection; the first hop's timings when it was
    /// opened for it.
    Sent(pool::Sent, Option<Timings>),
    /// The proxy did not select `h2`: HTTP/1.1 on this connection.
    Http1(Dialed<T>),
}

/// A tunnel the proxy opened on one HTTP/2 stream.
struct H2Tunnel {
    io: H2Stream,
    lease: Lease,
    stream: u32,
    response: ProxyResponse,
}

/// The proxy's answer to an HTTP/2 `CONNECT`: a 2xx opens the tunnel, the
/// stream's DATA frames from then on (RFC 9113 §8.5); anything else is the
/// refusal, with its status and headers (HTTP/2 has no reason phrase).
pub(super) fn h2_answer(
    res: http::Response<h2::RecvStream>,
) -> Result<(h2::RecvStream, ProxyResponse), Error> {
    let status = res.status();
    let (parts, body) = res.into_parts();
    let response = ProxyResponse::new(status, None, parts.headers);
    if !status.is_success() {
        let kind = if status == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            ErrorKind::ProxyAuthRequired
        } else {
            ErrorKind::ProxyRefused
        };
        return Err(Error::new(kind, Some(Phase::ProxyConnect)).with_response(response));
    }
    Ok((body, response))
}

/// A failed HTTP/2 stream or connection to the proxy.
pub(super) fn h2_error(e: h2::Error) -> Error {
    let (kind, detail): (_, std::borrow::Cow<'static, str>) = if e.is_go_away() && e.is_remote() {
        (
            ErrorKind::ProxyClosed,
            format!(
                "its HTTP/2 connection is going away (GOAWAY {}) and did not process the stream",
                reason_name(e.reason())
            )
            .into(),
        )
    } else if e.is_io() || closed_under(&e) {
        (
            ErrorKind::ProxyClosed,
            "its HTTP/2 connection closed".into(),
        )
    } else if e.is_reset() && e.is_remote() {
        (
            ErrorKind::Io,
            format!(
                "it reset the stream (RST_STREAM {})",
                reason_name(e.reason())
            )
            .into(),
        )
    } else {
        (
            ErrorKind::Io,
            "the HTTP/2 stream or connection failed".into(),
        )
    };
    Error::new(kind, Some(Phase::ProxyConnect))
        .with_detail(detail)
        .with_source(e)
}

fn reason_name(reason: Option<h2::Reason>) -> String {
    reason.map_or_else(|| "without a code".to_owned(), |r| format!("{r:?}"))
}

/// Whether the proxy said it never processed the stream, so that sending
/// the `CONNECT` again cannot do anything twice: the stream is above the
/// last stream id of its `GOAWAY` (h2 fails only those with a remote
/// GOAWAY error; RFC 9113 §6.8), or it was reset with `REFUSED_STREAM`
/// (§8.7).
pub(super) fn is_unprocessed(err: &Error) -> bool {
    let Some(e) = std::error::Error::source(err).and_then(|s| s.downcast_ref::<h2::Error>()) else {
        return false;
    };
    e.is_remote() && (e.is_go_away() || e.reason() == Some(h2::Reason::REFUSED_STREAM))
}

/// Whether an HTTP/2 failure is the proxy's connection going away (a reset,
/// an end of stream, TLS without `close_notify`): a close, as it is for an
/// HTTP/1.1 proxy, not a failed read.
fn closed_under(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    // Bounded: h2's and rustls's chains are a few levels deep.
    for _ in 0..8 {
        let Some(c) = cause else { return false };
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        if let Some(io) = c.downcast_ref::<h2::Error>().and_then(h2::Error::get_io) {
            cause = Some(io);
            continue;
        }
        cause = c.source();
    }
    false
}

pub(super) fn socks_error(e: socks::SocksError, protocol: ProxyProtocol) -> Error {
    use socks::SocksError as S;
    let kind = match &e {
        S::NoAcceptableMethods | S::AuthRequired => ErrorKind::ProxyAuthRequired,
        S::AuthFailed(_) => ErrorKind::ProxyAuthFailed,
        S::Malformed(_) => ErrorKind::ProxyMalformed,
        S::Closed { received: 0 } | S::Reset { received: 0, .. } => ErrorKind::ProxyClosed,
        S::Closed { .. } | S::Reset { .. } => ErrorKind::ProxyTruncated,
        S::InvalidDomain { .. } | S::Socks4Ipv6(_) | S::NoIpv4Address => ErrorKind::InvalidTarget,
        S::InvalidCredentials => ErrorKind::InvalidProxy,
        S::Io(_) => ErrorKind::Io,
        S::Socks5Refused(_) | S::Socks4Refused(_) => ErrorKind::ProxyRefused,
    };
    // What cannot be sent at all is said in the message itself; a refusal
    // gives its reason and code.
    let detail = match kind {
        ErrorKind::InvalidTarget | ErrorKind::InvalidProxy => Some(e.to_string()),
        _ => e.refusal(),
    };
    Error::new(kind, Some(Phase::ProxyConnect))
        .with_protocol(protocol)
        .with_detail_opt(detail)
        .with_source(e)
}

/// Pings an HTTP/2 proxy connection every `every` while it lives; `Err`
/// once a `PING` goes unanswered for `every`, `Ok` when the connection
/// ends (its PINGs fail).
async fn h2_keep_alive(ping: &mut h2::PingPong, every: Duration) -> Result<(), ()> {
    loop {
        tokio::time::sleep(every).await;
        match tokio::time::timeout(every, ping.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Ok(()),
            Err(_) => return Err(()),
        }
    }
}

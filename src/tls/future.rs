//! [`ResponseFuture`] for [`TlsConnect`](super::TlsConnect).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::time::Sleep;

use super::{MaybeTlsStream, TlsStream, H2, HTTP11};
use crate::error::{BoxError, Error, ErrorKind, Phase};
use crate::info::ConnectionInfo;
use crate::stage::RoutedStream;
use crate::target::bare_host;

pin_project! {
    /// Resolves to a [`TlsStream`] once the route exists and, for
    /// `https://` targets, the TLS handshake is done.
    pub struct ResponseFuture<F, T> {
        #[pin]
        state: State<F, T>,
        config: Arc<ClientConfig>,
        timeout: Option<Duration>,
        https: bool,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, T> {
        Routing {
            #[pin]
            fut: F,
        },
        Handshaking {
            #[pin]
            fut: tokio_rustls::Connect<TokioIo<T>>,
            // Boxed so the future stays `Unpin`, which hyper-util's
            // `Connect` requires of a connector's future.
            deadline: Option<Pin<Box<Sleep>>>,
            started: Instant,
            info: Option<ConnectionInfo>,
        },
        Done,
    }
}

impl<F, T> ResponseFuture<F, T> {
    pub(crate) fn new(
        fut: F,
        https: bool,
        config: Arc<ClientConfig>,
        timeout: Option<Duration>,
    ) -> Self {
        ResponseFuture {
            state: State::Routing { fut },
            config,
            timeout,
            https,
        }
    }
}

impl<F, T> fmt::Debug for ResponseFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, R, E, T> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<R, E>>,
    R: RoutedStream<Stream = T>,
    E: Into<BoxError>,
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    type Output = Result<TlsStream<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Routing { fut } => {
                    let routed = match ready!(fut.poll(cx)) {
                        Ok(routed) => routed,
                        Err(e) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(Error::from_below(e)));
                        }
                    };
                    let (stream, info) = routed.into_parts();
                    if !*this.https {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(TlsStream::new(
                            MaybeTlsStream::plain(stream),
                            info,
                        )));
                    }
                    // SNI and the certificate check use the target's name,
                    // never the proxy's.
                    let name = match ServerName::try_from(bare_host(info.target())) {
                        Ok(name) => name.to_owned(),
                        Err(e) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(in_context(
                                Error::new(ErrorKind::InvalidTarget, None)
                                    .with_detail("not a valid DNS name or IP address")
                                    .with_source(e),
                                &info,
                            )));
                        }
                    };
                    let connector = tokio_rustls::TlsConnector::from(this.config.clone());
                    let fut = connector.connect(name, TokioIo::new(stream));
                    this.state.set(State::Handshaking {
                        fut,
                        deadline: this.timeout.map(|t| Box::pin(tokio::time::sleep(t))),
                        started: Instant::now(),
                        info: Some(info),
                    });
                }
                StateProj::Handshaking {
                    fut,
                    deadline,
                    started,
                    info,
                } => {
                    let result = match fut.poll(cx) {
                        Poll::Ready(result) => result,
                        Poll::Pending => {
                            if let Some(deadline) = deadline {
                                if deadline.as_mut().poll(cx).is_ready() {
                                    let info = info.take();
                                    let limit = this.timeout.unwrap_or_default();
                                    this.state.set(State::Done);
                                    let e = Error::timeout(Phase::Tls, limit);
                                    return Poll::Ready(Err(match &info {
                                        Some(info) if was_optimistic(info) => in_context(
                                            e.with_detail(
                                                "the tunnel request carried the ClientHello: \
                                                 this proxy may drop data sent with it \
                                                 (microsocks does); turn \
                                                 Proxy::with_optimistic_data off",
                                            ),
                                            info,
                                        ),
                                        Some(info) => in_context(e, info),
                                        None => e,
                                    }));
                                }
                            }
                            return Poll::Pending;
                        }
                    };
                    let elapsed = started.elapsed();
                    let Some(mut info) = info.take() else {
                        return Poll::Ready(Err(polled_after_done()));
                    };
                    this.state.set(State::Done);
                    let mut stream = match result {
                        Ok(stream) => stream,
                        // The proxy refused an optimistic tunnel request,
                        // or its answer could not be read: that error, as
                        // it is, not a TLS failure. A tunnel that failed
                        // under the handshake (the proxy's HTTP/2
                        // connection died) keeps its kind and message, in
                        // this phase.
                        Err(e) => {
                            let e = match crate::proxy::unwrap_error(e) {
                                Ok(e) => e.or_phase(Phase::Tls),
                                Err(e) => {
                                    Error::new(ErrorKind::Tls, Some(Phase::Tls)).with_source(e)
                                }
                            };
                            return Poll::Ready(Err(in_context(e, &info)));
                        }
                    };
                    // An optimistic tunnel request was answered during the
                    // handshake: that wait is the proxy's phase, the rest
                    // is TLS, so the phases still add up to the whole.
                    let answered = R::settle(stream.get_mut().0.inner_mut(), &mut info);
                    let elapsed = elapsed.saturating_sub(answered.unwrap_or_default());
                    let conn = stream.get_ref().1;
                    info.alpn = conn.alpn_protocol().map(|p| match p {
                        // The common answers need no allocation.
                        H2 => Cow::Borrowed(H2),
                        HTTP11 => Cow::Borrowed(HTTP11),
                        other => Cow::Owned(other.to_vec()),
                    });
                    info.tls_version = conn.protocol_version();
                    info.resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                    info.timings.tls = Some(elapsed);
                    tracing::debug!(
                        parent: &info.span,
                        tls_version = ?info.tls_version,
                        alpn = info.alpn().unwrap_or("none"),
                        resumed = info.resumed,
                        elapsed = ?elapsed,
                        "TLS handshake done"
                    );
                    if let Err(e) = check_alpn(&this.config.alpn_protocols, &info) {
                        return Poll::Ready(Err(in_context(e, &info)));
                    }
                    return Poll::Ready(Ok(TlsStream::new(MaybeTlsStream::tls(stream), info)));
                }
                StateProj::Done => return Poll::Ready(Err(polled_after_done())),
            }
        }
    }
}

/// Whether the route's tunnel request went with the first bytes of the
/// TLS handshake ([`Proxy::with_optimistic_data`](crate::Proxy::with_optimistic_data))
/// in a stream a proxy could drop them from: an HTTP/1.1 `CONNECT` or a
/// SOCKS request. Over HTTP/2 the bytes are DATA frames of their own, and
/// a TLS timeout there is no sign of dropped data.
fn was_optimistic(info: &ConnectionInfo) -> bool {
    let route = info.route();
    !route.is_direct()
        && !route.is_h2_tunnel()
        && info.proxy().is_some_and(|p| p.is_optimistic_data())
}

/// Names the target and the proxy of the route in an error of this stage.
fn in_context(err: Error, info: &ConnectionInfo) -> Error {
    err.in_context(info.route().proxy(), info.target())
}

/// HTTP/1.1 is the fallback when the target selects nothing; if it was not
/// offered, there is nothing this client can speak.
fn check_alpn(offered: &[Vec<u8>], info: &ConnectionInfo) -> Result<(), Error> {
    if info.alpn.is_some() || offered.is_empty() || offered.iter().any(|p| p == HTTP11) {
        return Ok(());
    }
    let offered: Vec<_> = offered
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    Err(Error::new(ErrorKind::AlpnMismatch, Some(Phase::Tls))
        .with_detail(format!("offered {}", offered.join(", "))))
}

fn polled_after_done() -> Error {
    Error::new(ErrorKind::Io, Some(Phase::Tls)).with_detail("future polled after completion")
}

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

use super::{TlsStream, H2, HTTP11};
use crate::error::{BoxError, Error, ErrorKind, Phase};
use crate::info::ConnectionInfo;
use crate::proxy::Routed;
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
            fut: tokio_rustls::Connect<TokioIo<Routed<T>>>,
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
    R: RoutedStream<Io = T>,
    E: Into<BoxError>,
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    type Output = Result<TlsStream<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Routing { fut } => {
                    let routed = ready!(fut.poll(cx)).map_err(|e| {
                        Error::from_inner(e, ErrorKind::Dial, Phase::Dial).unwrap_or_else(|e| e)
                    });
                    let mut routed = match routed {
                        Ok(r) => r.into_routed(),
                        Err(e) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(e));
                        }
                    };
                    if !*this.https {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(TlsStream::plain(routed)));
                    }
                    // SNI and the certificate check use the target's name,
                    // never the proxy's.
                    let target = routed.info().target();
                    let name = match ServerName::try_from(bare_host(target)).map(|n| n.to_owned()) {
                        Ok(name) => name,
                        Err(e) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(Error::new(ErrorKind::InvalidTarget, None)
                                .with_target(target)
                                .with_detail("not a valid DNS name or IP address")
                                .with_source(e)));
                        }
                    };
                    let info = routed.take_info();
                    let connector = tokio_rustls::TlsConnector::from(this.config.clone());
                    let fut = connector.connect(name, TokioIo::new(routed));
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
                                    return Poll::Ready(Err(with_route(
                                        Error::timeout(Phase::Tls, limit),
                                        info.as_ref(),
                                    )));
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
                    let stream = match result {
                        Ok(stream) => stream,
                        Err(e) => {
                            return Poll::Ready(Err(with_route(
                                Error::new(ErrorKind::Tls, Some(Phase::Tls)).with_source(e),
                                Some(&info),
                            )))
                        }
                    };
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
                        return Poll::Ready(Err(e));
                    }
                    return Poll::Ready(Ok(TlsStream::tls(stream, info)));
                }
                StateProj::Done => return Poll::Ready(Err(polled_after_done())),
            }
        }
    }
}

fn with_route(err: Error, info: Option<&ConnectionInfo>) -> Error {
    match info {
        Some(info) => err
            .with_target(info.target())
            .with_proxy(info.route().proxy()),
        None => err,
    }
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
    Err(with_route(
        Error::new(ErrorKind::AlpnMismatch, Some(Phase::Tls))
            .with_detail(format!("offered {}", offered.join(", "))),
        Some(info),
    ))
}

fn polled_after_done() -> Error {
    Error::new(ErrorKind::Io, Some(Phase::Tls)).with_detail("future polled after completion")
}

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;

use crate::info::ConnectionInfo;
use crate::stage::{sealed, Negotiated};

type Tls<S> = TokioIo<tokio_rustls::client::TlsStream<TokioIo<S>>>;

/// A routed stream with its protocol settled: TLS to the target, or plain
/// for `http://` targets. Made by [`TlsLayer`](crate::TlsLayer); `S` is the
/// route's stream (a [`Tunnel`](crate::Tunnel)).
///
/// Implements hyper's `rt::Read` / `rt::Write` and hyper-util's
/// [`Connection`], so it plugs into hyper-util's `Client` and tonic
/// directly; [`AlpnDispatchLayer`](crate::AlpnDispatchLayer) accepts it too.
pub struct TlsStream<S> {
    io: MaybeTlsStream<S>,
    info: ConnectionInfo,
}

impl<S> TlsStream<S> {
    pub(crate) fn new(io: MaybeTlsStream<S>, info: ConnectionInfo) -> Self {
        TlsStream { io, info }
    }

    /// Everything known about how this connection was made.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// Whether this stream is encrypted (an `https://` target).
    pub fn is_tls(&self) -> bool {
        self.io.is_tls()
    }

    /// The rustls connection state, for TLS streams.
    pub fn tls_connection(&self) -> Option<&rustls::ClientConnection> {
        self.io.tls_connection()
    }

    /// Splits into the byte stream and how it was made.
    pub fn into_parts(self) -> (MaybeTlsStream<S>, ConnectionInfo) {
        (self.io, self.info)
    }
}

impl<S> sealed::Sealed for TlsStream<S> {}

impl<S> Negotiated for TlsStream<S> {
    type Stream = MaybeTlsStream<S>;

    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn into_parts(self) -> (MaybeTlsStream<S>, ConnectionInfo) {
        (self.io, self.info)
    }
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("tls", &self.is_tls())
            .field("info", &self.info)
            .finish()
    }
}

impl<S> Connection for TlsStream<S> {
    fn connected(&self) -> Connected {
        // A forwarding proxy wants absolute-form requests: hyper-util's
        // `Client` writes them when told the connection is proxied.
        let connected = Connected::new()
            .proxy(self.info.route().is_forward())
            .extra(self.info.clone());
        if self.info.is_h2() {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

/// The bytes of a [`TlsStream`]: TLS over the route, or the route's own
/// stream for `http://` targets.
pub struct MaybeTlsStream<S> {
    inner: Inner<S>,
}

// The TLS state (over a kilobyte) is boxed so a stream stays cheap to
// move; the plain stream is not, so `http://` connections allocate nothing.
#[allow(clippy::large_enum_variant)]
enum Inner<S> {
    Plain(S),
    Tls(Box<Tls<S>>),
}

impl<S> MaybeTlsStream<S> {
    pub(crate) fn plain(io: S) -> Self {
        MaybeTlsStream {
            inner: Inner::Plain(io),
        }
    }

    pub(crate) fn tls(stream: tokio_rustls::client::TlsStream<TokioIo<S>>) -> Self {
        MaybeTlsStream {
            inner: Inner::Tls(Box::new(TokioIo::new(stream))),
        }
    }

    /// Whether this stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }

    /// The rustls connection state, for TLS streams.
    pub fn tls_connection(&self) -> Option<&rustls::ClientConnection> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Tls(tls) => Some(tls.inner().get_ref().1),
        }
    }

    /// The route's stream under the TLS.
    pub fn get_ref(&self) -> &S {
        match &self.inner {
            Inner::Plain(io) => io,
            Inner::Tls(tls) => tls.inner().get_ref().0.inner(),
        }
    }
}

impl<S> fmt::Debug for MaybeTlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaybeTlsStream")
            .field("tls", &self.is_tls())
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write + Unpin> Read for MaybeTlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Inner::Tls(io) => Pin::new(&mut **io).poll_read(cx, buf),
        }
    }
}

impl<S: Read + Write + Unpin> Write for MaybeTlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Inner::Tls(io) => Pin::new(&mut **io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(io) => Pin::new(io).poll_flush(cx),
            Inner::Tls(io) => Pin::new(&mut **io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Inner::Tls(io) => Pin::new(&mut **io).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Plain(io) => io.is_write_vectored(),
            Inner::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Inner::Tls(io) => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
        }
    }
}

impl<S: Read + Write + Unpin> Read for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: Read + Write + Unpin> Write for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

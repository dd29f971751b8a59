use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;

use std::sync::Arc;

use crate::info::ConnectionInfo;
use crate::proxy::{Proxy, Routed};

type Tls<T> = TokioIo<tokio_rustls::client::TlsStream<TokioIo<Routed<T>>>>;

/// A routed stream with its protocol settled: TLS to the target, or plain
/// for `http://` targets. Made by [`TlsLayer`](crate::TlsLayer).
///
/// Implements hyper's `rt::Read` / `rt::Write` and hyper-util's
/// [`Connection`], so it plugs into hyper-util's `Client` and tonic
/// directly; [`AlpnDispatchLayer`](crate::AlpnDispatchLayer) accepts it too.
pub struct TlsStream<T> {
    inner: Inner<T>,
    info: ConnectionInfo,
    forward: Option<Arc<Proxy>>,
}

// The TLS state (over a kilobyte) is boxed so a `TlsStream` stays cheap to
// move; the plain stream is not, so `http://` connections allocate nothing.
#[allow(clippy::large_enum_variant)]
enum Inner<T> {
    Plain(Routed<T>),
    Tls(Box<Tls<T>>),
}

impl<T> TlsStream<T> {
    pub(crate) fn plain(mut routed: Routed<T>) -> Self {
        let info = routed.take_info();
        let forward = routed.take_forward();
        TlsStream {
            inner: Inner::Plain(routed),
            info,
            forward,
        }
    }

    pub(crate) fn tls(
        stream: tokio_rustls::client::TlsStream<TokioIo<Routed<T>>>,
        info: ConnectionInfo,
    ) -> Self {
        TlsStream {
            inner: Inner::Tls(Box::new(TokioIo::new(stream))),
            info,
            forward: None,
        }
    }

    /// Everything known about how this connection was made.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    pub(crate) fn take_forward(&mut self) -> Option<Arc<Proxy>> {
        self.forward.take()
    }

    pub(crate) fn take_info(&mut self) -> ConnectionInfo {
        std::mem::replace(&mut self.info, ConnectionInfo::placeholder())
    }

    /// Whether this stream is encrypted (an `https://` target).
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
}

impl<T> fmt::Debug for TlsStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("tls", &self.is_tls())
            .field("info", &self.info)
            .finish()
    }
}

impl<T> Connection for TlsStream<T> {
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

impl<T: Read + Write + Unpin> Read for TlsStream<T> {
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

impl<T: Read + Write + Unpin> Write for TlsStream<T> {
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

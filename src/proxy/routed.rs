//! [`Routed`]: the stream [`ProxyConnectLayer`](crate::ProxyConnectLayer)
//! yields, and [`Tunnel`], its bytes.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use super::protocol::http2::H2Stream;
use hyper::rt::{Read, ReadBufCursor, Write};
use pin_project_lite::pin_project;

use super::optimistic::Pending;
use super::optimistic_h2::H2Pending;
use super::pool::Lease;
use super::proxy_tls::FirstHop;
use crate::info::ConnectionInfo;
use crate::stage::{sealed, RoutedStream};

/// A stream whose route to the target exists: made by
/// [`ProxyConnectLayer`](crate::ProxyConnectLayer), taken by
/// [`TlsLayer`](crate::TlsLayer).
///
/// Its bytes are a [`Tunnel`]; its [`ConnectionInfo`] says how the route
/// was made. There is no public constructor: a `Routed` stream exists only
/// if routing ran.
pub struct Routed<T> {
    tunnel: Tunnel<T>,
    info: ConnectionInfo,
}

impl<T> Routed<T> {
    pub(crate) fn new(tunnel: Tunnel<T>, info: ConnectionInfo) -> Self {
        Routed { tunnel, info }
    }

    /// How the route was made.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    pub(crate) fn info_mut(&mut self) -> &mut ConnectionInfo {
        &mut self.info
    }

    /// The bytes of the route.
    pub fn tunnel(&self) -> &Tunnel<T> {
        &self.tunnel
    }

    /// Splits into the bytes of the route and how it was made.
    pub fn into_parts(self) -> (Tunnel<T>, ConnectionInfo) {
        (self.tunnel, self.info)
    }
}

impl<T> sealed::Sealed for Routed<T> {}

impl<T> RoutedStream for Routed<T> {
    type Stream = Tunnel<T>;

    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn into_parts(self) -> (Tunnel<T>, ConnectionInfo) {
        (self.tunnel, self.info)
    }

    fn settle(tunnel: &mut Tunnel<T>, info: &mut ConnectionInfo) -> Option<Duration> {
        if matches!(tunnel.io, Io::H2Pending { .. }) {
            return tunnel.settle_h2(info);
        }
        let pending = tunnel.pending.as_mut().filter(|p| p.is_open())?;
        let (response, elapsed) = pending.take_answer();
        info.proxy_response = response.or(info.proxy_response.take());
        info.timings.proxy_connect = elapsed.or(info.timings.proxy_connect);
        elapsed
    }
}

impl<T: fmt::Debug> fmt::Debug for Routed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routed")
            .field("tunnel", &self.tunnel)
            .field("route", self.info.route())
            .finish()
    }
}

pin_project! {
    #[project = IoProj]
    enum Io<T> {
        // The connection to the first hop (plain, or TLS to an `https://`
        // proxy): a direct route, or a tunnel that is all of it.
        Hop { #[pin] io: FirstHop<T> },
        // One HTTP/2 stream of a connection to the proxy, shared with other
        // tunnels; the lease frees its slot on drop.
        H2 { io: H2Stream, lease: Lease },
        // An HTTP/2 stream whose `CONNECT` is not answered yet, written to
        // already (optimistic data); it becomes `H2` once the TLS stage
        // settles the route's info.
        H2Pending { pending: Box<H2Pending> },
    }
}

pin_project! {
    /// The bytes of a route: the connection to the first hop (TLS to an
    /// `https://` proxy included), or one HTTP/2 stream of a shared
    /// connection to the proxy (RFC 9113 §8.5).
    ///
    /// Bytes the proxy sent after its answer's blank line, in the same read,
    /// are replayed first; when there are none there is no extra buffer.
    /// Vectored writes pass through to the stream below.
    ///
    /// With [optimistic data](crate::Proxy::with_optimistic_data), the
    /// tunnel request goes out with the first write, and the first read
    /// reads the proxy's answer first: a refusal is an `io::Error` whose
    /// inner error is the crate's [`Error`](crate::Error).
    pub struct Tunnel<T> {
        #[pin]
        io: Io<T>,
        // Tunnel bytes read together with the CONNECT answer: `buf[pos..]`.
        rewind: Option<Rewind>,
        // The tunnel request, sent with the first write and answered
        // before the first read (optimistic data).
        pending: Option<Box<Pending>>,
    }
}

struct Rewind {
    buf: Vec<u8>,
    pos: usize,
}

impl<T> Tunnel<T> {
    /// The connection to the first hop, with the tunnel bytes that came
    /// with the proxy's answer (`buf[pos..]`).
    pub(crate) fn hop(io: FirstHop<T>, buf: Vec<u8>, pos: usize) -> Self {
        let rewind = (pos < buf.len()).then_some(Rewind { buf, pos });
        Tunnel {
            io: Io::Hop { io },
            rewind,
            pending: None,
        }
    }

    /// The connection to the first hop, with the tunnel request `pending`:
    /// sent with the first write, answered before the first read.
    pub(crate) fn optimistic(io: FirstHop<T>, pending: Box<Pending>) -> Self {
        Tunnel {
            io: Io::Hop { io },
            rewind: None,
            pending: Some(pending),
        }
    }

    /// One stream of an HTTP/2 connection to the proxy.
    pub(crate) fn h2(io: H2Stream, lease: Lease) -> Self {
        Tunnel {
            io: Io::H2 { io, lease },
            rewind: None,
            pending: None,
        }
    }

    /// One HTTP/2 stream of a connection to the proxy, its `CONNECT` not
    /// answered yet: written to at once, answered before the first read.
    pub(crate) fn h2_optimistic(pending: Box<H2Pending>) -> Self {
        Tunnel {
            io: Io::H2Pending { pending },
            rewind: None,
            pending: None,
        }
    }

    /// Fills `info` in from the answer to an optimistic HTTP/2 `CONNECT`,
    /// once read, and drops what waiting for it took; returns the time the
    /// answer took.
    fn settle_h2(&mut self, info: &mut ConnectionInfo) -> Option<Duration> {
        let Io::H2Pending { pending } = &mut self.io else {
            return None;
        };
        let (io, lease, answered) = pending.take_open()?;
        info.proxy_response = answered.response.or(info.proxy_response.take());
        info.timings.proxy_connect = answered.elapsed.or(info.timings.proxy_connect);
        if let Some(stream) = answered.retried {
            // Sent again on a new stream, maybe of another connection.
            info.route = crate::info::Route::H2Tunnel {
                proxy: info
                    .route
                    .proxy()
                    .cloned()
                    .unwrap_or_else(|| info.target.clone()),
                stream,
            };
            info.h2_shared = Some(lease.shared());
            info.h2_retried = true;
        }
        self.io = Io::H2 { io, lease };
        answered.elapsed
    }

    /// The base connector's stream; `None` when the tunnel is one stream of
    /// an HTTP/2 connection that other tunnels share, or runs through a
    /// pre-proxy.
    pub fn get_ref(&self) -> Option<&T> {
        match &self.io {
            Io::Hop { io } => io.transport(),
            Io::H2 { .. } | Io::H2Pending { .. } => None,
        }
    }

    /// Whether the tunnel is one stream of an HTTP/2 connection to the
    /// proxy.
    pub fn is_h2_stream(&self) -> bool {
        matches!(self.io, Io::H2 { .. } | Io::H2Pending { .. })
    }

    /// Whether the route runs inside TLS to an `https://` proxy.
    pub fn is_proxy_tls(&self) -> bool {
        matches!(
            self.io,
            Io::Hop {
                io: FirstHop::Tls(_)
            }
        )
    }

    /// The number of tunnel bytes that arrived with the proxy's answer and
    /// have not been read yet.
    pub fn buffered(&self) -> usize {
        self.rewind.as_ref().map_or(0, |r| r.buf.len() - r.pos)
    }

    /// Splits into the base connector's stream and the tunnel bytes not yet
    /// read from it. The stream is `None` where it is not a plain stream of
    /// its own: inside TLS to the proxy, or one stream of a shared HTTP/2
    /// connection, and while an [optimistic](crate::Proxy::with_optimistic_data)
    /// tunnel request is unanswered (its bytes are in this value only).
    pub fn into_inner(self) -> (Option<T>, Vec<u8>) {
        let rest = match self.rewind {
            Some(Rewind { mut buf, pos }) => {
                buf.drain(..pos);
                buf
            }
            None => Vec::new(),
        };
        if self.pending.as_ref().is_some_and(|p| !p.is_open()) {
            return (None, rest);
        }
        let io = match self.io {
            Io::Hop {
                io: FirstHop::Plain(io),
            } => Some(io),
            _ => None,
        };
        (io, rest)
    }
}

impl<T: fmt::Debug> fmt::Debug for Tunnel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tunnel")
            .field("io", &self.get_ref())
            .field("proxy_tls", &self.is_proxy_tls())
            .field("h2_stream", &self.is_h2_stream())
            .field("buffered", &self.buffered())
            .finish()
    }
}

impl<T: Read + Write + Unpin> Read for Tunnel<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut this = self.project();
        if let Some(pending) = this.pending.as_mut().filter(|p| !p.is_open()) {
            let IoProj::Hop { io } = this.io.as_mut().project() else {
                unreachable!("optimistic data runs on the first hop only")
            };
            let rest = ready!(pending.poll_answer(io, cx))?;
            if !rest.is_empty() {
                *this.rewind = Some(Rewind { buf: rest, pos: 0 });
            }
        }
        if let Some(rewind) = this.rewind {
            let rest = &rewind.buf[rewind.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            rewind.pos += n;
            if rewind.pos == rewind.buf.len() {
                *this.rewind = None;
            }
            return Poll::Ready(Ok(()));
        }
        match this.io.project() {
            IoProj::Hop { io } => io.poll_read(cx, buf),
            IoProj::H2 { io, .. } => Pin::new(io).poll_read(cx, buf),
            IoProj::H2Pending { pending } => pending.poll_read(cx, buf),
        }
    }
}

impl<T: Read + Write + Unpin> Write for Tunnel<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        match this.io.project() {
            IoProj::Hop { io } => match this.pending.as_mut().filter(|p| p.is_sending()) {
                Some(pending) => pending.poll_queue(io, cx, &[io::IoSlice::new(buf)]),
                None => io.poll_write(cx, buf),
            },
            IoProj::H2 { io, .. } => Pin::new(io).poll_write(cx, buf),
            IoProj::H2Pending { pending } => pending.poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        match this.io.project() {
            IoProj::Hop { mut io } => {
                if let Some(pending) = this.pending.as_mut().filter(|p| p.is_sending()) {
                    ready!(pending.poll_send(io.as_mut(), cx))?;
                }
                io.poll_flush(cx)
            }
            IoProj::H2 { io, .. } => Pin::new(io).poll_flush(cx),
            IoProj::H2Pending { .. } => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        match this.io.project() {
            IoProj::Hop { mut io } => {
                if let Some(pending) = this.pending.as_mut().filter(|p| p.is_sending()) {
                    ready!(pending.poll_send(io.as_mut(), cx))?;
                }
                io.poll_shutdown(cx)
            }
            IoProj::H2 { io, .. } => Pin::new(io).poll_shutdown(cx),
            IoProj::H2Pending { pending } => pending.poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Hop { io } => io.is_write_vectored(),
            Io::H2 { io, .. } => io.is_write_vectored(),
            Io::H2Pending { .. } => false,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        match this.io.project() {
            IoProj::Hop { io } => match this.pending.as_mut().filter(|p| p.is_sending()) {
                Some(pending) => pending.poll_queue(io, cx, bufs),
                None => io.poll_write_vectored(cx, bufs),
            },
            IoProj::H2 { io, .. } => Pin::new(io).poll_write_vectored(cx, bufs),
            IoProj::H2Pending { pending } => {
                let buf = bufs
                    .iter()
                    .find(|b| !b.is_empty())
                    .map_or(&[][..], |b| &**b);
                pending.poll_write(cx, buf)
            }
        }
    }
}

impl<T: Read + Write + Unpin> Read for Routed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tunnel).poll_read(cx, buf)
    }
}

impl<T: Read + Write + Unpin> Write for Routed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tunnel).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tunnel).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tunnel).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.tunnel.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tunnel).poll_write_vectored(cx, bufs)
    }
}

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use pin_project_lite::pin_project;

use std::sync::Arc;

use hyper::upgrade::Upgraded;

use super::h2::Lease;
use super::Proxy;
use crate::info::ConnectionInfo;

pin_project! {
    #[project = IoProj]
    enum Io<T> {
        // The connection to the first hop, or a tunnel that is all of it.
        Stream { #[pin] io: T },
        // One HTTP/2 stream of a connection to the proxy, shared with other
        // tunnels; the lease frees its slot on drop.
        H2 { io: Upgraded, lease: Lease },
    }
}

pin_project! {
    /// A stream whose route to the target exists: made by
    /// [`ProxyConnectLayer`](crate::ProxyConnectLayer), taken by
    /// [`TlsLayer`](crate::TlsLayer).
    ///
    /// For a tunnel this is the proxy connection itself, or one HTTP/2
    /// stream of it when the proxy speaks HTTP/2 (RFC 9113 §8.5). Bytes the
    /// proxy sent after its answer's blank line, in the same read, are
    /// replayed first; when there are none there is no extra buffer.
    ///
    /// There is no public constructor: a `Routed` stream exists only if
    /// routing ran.
    pub struct Routed<T> {
        #[pin]
        io: Io<T>,
        // Tunnel bytes read together with the CONNECT answer: `buf[pos..]`.
        rewind: Option<Rewind>,
        info: ConnectionInfo,
        // The forwarding proxy, whose credentials go on each request.
        forward: Option<Arc<Proxy>>,
    }
}

struct Rewind {
    buf: Vec<u8>,
    pos: usize,
}

impl<T> Routed<T> {
    pub(crate) fn new(io: T, info: ConnectionInfo, buf: Vec<u8>, pos: usize) -> Self {
        let rewind = (pos < buf.len()).then_some(Rewind { buf, pos });
        Routed {
            io: Io::Stream { io },
            rewind,
            info,
            forward: None,
        }
    }

    pub(crate) fn forwarding(io: T, info: ConnectionInfo, proxy: Arc<Proxy>) -> Self {
        Routed {
            io: Io::Stream { io },
            rewind: None,
            info,
            forward: Some(proxy),
        }
    }

    /// A tunnel that is one stream of an HTTP/2 connection to the proxy.
    pub(crate) fn h2(io: Upgraded, lease: Lease, info: ConnectionInfo) -> Self {
        Routed {
            io: Io::H2 { io, lease },
            rewind: None,
            info,
            forward: None,
        }
    }

    pub(crate) fn take_forward(&mut self) -> Option<Arc<Proxy>> {
        self.forward.take()
    }

    /// How the route was made.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    pub(crate) fn info_mut(&mut self) -> &mut ConnectionInfo {
        &mut self.info
    }

    /// Moves the info out, for the stage above to own.
    pub(crate) fn take_info(&mut self) -> ConnectionInfo {
        std::mem::replace(&mut self.info, ConnectionInfo::placeholder())
    }

    /// The stream to the first hop; `None` when the tunnel is one stream of
    /// an HTTP/2 connection that other tunnels share.
    pub fn get_ref(&self) -> Option<&T> {
        match &self.io {
            Io::Stream { io } => Some(io),
            Io::H2 { .. } => None,
        }
    }

    /// Whether the tunnel is one stream of an HTTP/2 connection to the
    /// proxy.
    pub fn is_h2_stream(&self) -> bool {
        matches!(self.io, Io::H2 { .. })
    }

    /// The number of tunnel bytes that arrived with the proxy's answer and
    /// have not been read yet.
    pub fn buffered(&self) -> usize {
        self.rewind.as_ref().map_or(0, |r| r.buf.len() - r.pos)
    }

    /// Splits into the stream and the tunnel bytes not yet read from it.
    /// The stream is `None` for a tunnel over a shared HTTP/2 connection.
    pub fn into_parts(self) -> (Option<T>, Vec<u8>) {
        let rest = match self.rewind {
            Some(Rewind { mut buf, pos }) => {
                buf.drain(..pos);
                buf
            }
            None => Vec::new(),
        };
        let io = match self.io {
            Io::Stream { io } => Some(io),
            Io::H2 { .. } => None,
        };
        (io, rest)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Routed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routed")
            .field("io", &self.get_ref())
            .field("route", self.info.route())
            .field("buffered", &self.buffered())
            .finish()
    }
}

impl<T: Read> Read for Routed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
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
            IoProj::Stream { io } => io.poll_read(cx, buf),
            IoProj::H2 { io, .. } => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl<T: Write> Write for Routed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.project().io.project() {
            IoProj::Stream { io } => io.poll_write(cx, buf),
            IoProj::H2 { io, .. } => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.project().io.project() {
            IoProj::Stream { io } => io.poll_flush(cx),
            IoProj::H2 { io, .. } => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.project().io.project() {
            IoProj::Stream { io } => io.poll_shutdown(cx),
            IoProj::H2 { io, .. } => Pin::new(io).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Stream { io } => io.is_write_vectored(),
            Io::H2 { io, .. } => io.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.project().io.project() {
            IoProj::Stream { io } => io.poll_write_vectored(cx, bufs),
            IoProj::H2 { io, .. } => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }
}

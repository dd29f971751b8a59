use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use pin_project_lite::pin_project;

use std::sync::Arc;

use super::Proxy;
use crate::info::ConnectionInfo;

pin_project! {
    /// A stream whose route to the target exists: made by
    /// [`ProxyConnectLayer`](crate::ProxyConnectLayer), taken by
    /// [`TlsLayer`](crate::TlsLayer).
    ///
    /// For a tunnel this is the proxy connection itself. Bytes the proxy
    /// sent after its answer's blank line, in the same read, are replayed
    /// first; when there are none there is no extra buffer.
    ///
    /// There is no public constructor: a `Routed` stream exists only if
    /// routing ran.
    pub struct Routed<T> {
        #[pin]
        io: T,
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
            io,
            rewind,
            info,
            forward: None,
        }
    }

    pub(crate) fn forwarding(io: T, info: ConnectionInfo, proxy: Arc<Proxy>) -> Self {
        Routed {
            io,
            rewind: None,
            info,
            forward: Some(proxy),
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

    /// The stream to the first hop.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The number of tunnel bytes that arrived with the proxy's answer and
    /// have not been read yet.
    pub fn buffered(&self) -> usize {
        self.rewind.as_ref().map_or(0, |r| r.buf.len() - r.pos)
    }

    /// Splits into the stream and the tunnel bytes not yet read from it.
    pub fn into_parts(self) -> (T, Vec<u8>) {
        let rest = match self.rewind {
            Some(Rewind { mut buf, pos }) => {
                buf.drain(..pos);
                buf
            }
            None => Vec::new(),
        };
        (self.io, rest)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Routed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routed")
            .field("io", &self.io)
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
        this.io.poll_read(cx, buf)
    }
}

impl<T: Write> Write for Routed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }
}

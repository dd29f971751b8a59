//! `CONNECT` over HTTP/2 (RFC 9113 §8.5): the request, and the tunnel as
//! one stream's DATA frames; h2 does the framing, and the pool in
//! `proxy::pool` keeps the connections.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use h2::{Reason, RecvStream, SendStream};
use http::uri::Authority;
use http::{HeaderValue, Method, Request, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};

use crate::error::{Error, ErrorKind};
use crate::route::Proxy;

/// The `CONNECT` request for `target` (RFC 9113 §8.5: `:method` and
/// `:authority` only, no `:scheme` or `:path`), with the proxy's
/// credentials and extra headers.
pub(crate) fn connect_request(
    target: &Authority,
    proxy: &Proxy,
    authorization: Option<&HeaderValue>,
) -> Request<()> {
    let mut req = Request::new(());
    *req.method_mut() = Method::CONNECT;
    *req.uri_mut() = Uri::from_maybe_shared(Bytes::copy_from_slice(target.as_str().as_bytes()))
        .expect("an authority is a valid authority-form URI");
    *req.version_mut() = http::Version::HTTP_2;
    let headers = req.headers_mut();
    if let Some(auth) = authorization.or(proxy.authorization()) {
        headers.insert(http::header::PROXY_AUTHORIZATION, auth.clone());
    }
    for (name, value) in proxy.headers() {
        headers.append(name, value.clone());
    }
    req
}

/// A tunnel on one HTTP/2 stream to the proxy: what is written goes out as
/// DATA frames within the stream's flow-control window, what the proxy
/// sends is read back, and the window is given back as it is read.
///
/// A failure of the stream or of the proxy's connection surfaces as an
/// [`io::Error`] carrying a [`crate::Error`] that names the proxy and the
/// target.
pub(crate) struct H2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    // Received and not yet read.
    buf: Bytes,
    shut: bool,
    proxy: Authority,
    target: Authority,
}

impl H2Stream {
    pub(crate) fn new(
        send: SendStream<Bytes>,
        recv: RecvStream,
        proxy: &Authority,
        target: &Authority,
    ) -> Self {
        H2Stream {
            send,
            recv,
            buf: Bytes::new(),
            shut: false,
            proxy: proxy.clone(),
            target: target.clone(),
        }
    }

    fn fail(&self, e: h2::Error) -> io::Error {
        stream_error(e, &self.proxy, &self.target)
    }
}

/// A failure of a tunnel's HTTP/2 stream, or of the connection under it, as
/// an [`io::Error`] carrying a [`crate::Error`] that names the proxy and the
/// target.
pub(crate) fn stream_error(e: h2::Error, proxy: &Authority, target: &Authority) -> io::Error {
    let kind = match e.get_io() {
        Some(io) => io.kind(),
        None if e.is_go_away() || e.is_reset() => io::ErrorKind::ConnectionReset,
        None => io::ErrorKind::Other,
    };
    let detail = if e.is_io() || e.is_go_away() {
        "the proxy's HTTP/2 connection under the tunnel failed"
    } else {
        "the proxy reset the tunnel's HTTP/2 stream"
    };
    let err = Error::new(ErrorKind::Io, None)
        .with_detail(detail)
        .with_source(e)
        .in_context(Some(proxy), target);
    io::Error::new(kind, err)
}

impl Read for H2Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        while self.buf.is_empty() {
            match ready!(self.recv.poll_data(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(data)) => self.buf = data,
                // The proxy ended the stream without error: end of tunnel.
                Some(Err(e)) if matches!(e.reason(), Some(Reason::NO_ERROR | Reason::CANCEL)) => {
                    return Poll::Ready(Ok(()))
                }
                Some(Err(e)) => return Poll::Ready(Err(self.fail(e))),
            }
        }
        let n = self.buf.len().min(buf.remaining());
        buf.put_slice(&self.buf[..n]);
        self.buf.advance(n);
        // The window opens again as the tunnel is read, not as it arrives:
        // a reader that stops stalls its own stream only.
        let _ = self.recv.flow_control().release_capacity(n);
        Poll::Ready(Ok(()))
    }
}

impl Write for H2Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        poll_send_data(&mut this.send, cx, buf).map_err(|e| this.fail(e))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection's task writes the frames out as they are queued.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shut {
            self.shut = true;
            // END_STREAM: the half-close of the tunnel (RFC 9113 §8.5).
            if let Err(e) = self.send.send_data(Bytes::new(), true) {
                return Poll::Ready(Err(self.fail(e)));
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Sends what of `buf` the stream's flow-control window takes now as one
/// DATA frame, waiting for window when there is none; the number of bytes
/// sent. Capacity is asked for only with bytes to send: a reservation held
/// while idle would pin the connection's window.
pub(crate) fn poll_send_data(
    send: &mut SendStream<Bytes>,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<Result<usize, h2::Error>> {
    if buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    send.reserve_capacity(buf.len());
    // Bounded: each turn sends, fails, or waits for capacity h2 assigned.
    loop {
        let n = send.capacity().min(buf.len());
        if n > 0 {
            send.send_data(Bytes::copy_from_slice(&buf[..n]), false)?;
            return Poll::Ready(Ok(n));
        }
        match ready!(send.poll_capacity(cx)) {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Poll::Ready(Err(e)),
            // The stream is closed or reset.
            None => {
                return Poll::Ready(Err(match send.poll_reset(cx) {
                    Poll::Ready(Ok(reason)) => reason.into(),
                    Poll::Ready(Err(e)) => e,
                    Poll::Pending => Reason::STREAM_CLOSED.into(),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_is_authority_form() {
        let proxy = Proxy::new("https://u:p@127.0.0.1:8443").unwrap();
        let target: Authority = "example.com:443".parse().unwrap();
        let req = connect_request(&target, &proxy, None);
        assert_eq!(req.method(), Method::CONNECT);
        assert_eq!(req.uri().authority(), Some(&target));
        assert!(req.uri().scheme().is_none());
        assert_eq!(req.uri().path_and_query(), None);
        assert!(req.headers()[http::header::PROXY_AUTHORIZATION].is_sensitive());
    }
}

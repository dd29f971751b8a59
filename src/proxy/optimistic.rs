//! Optimistic tunnel data ([`Proxy::with_optimistic_data`]): the tunnel
//! request waits for the first bytes written to the tunnel and leaves in
//! the same write, and the proxy's answer is read before the first byte
//! read from it.
//!
//! The answer is parsed exactly as without optimism: for HTTP/1.1 the
//! bounded head parser of [`http1`], interim responses skipped; for SOCKS
//! each reply in order. Only the bytes after the answer's end are tunnel
//! bytes, replayed first; a refusal is the crate's [`Error`], carried up
//! inside an `io::Error` for the TLS stage to unwrap.
//!
//! [`Proxy::with_optimistic_data`]: crate::Proxy::with_optimistic_data

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use http::uri::Authority;
use hyper::rt::{Read, ReadBuf, Write};

use super::protocol::{http1, socks};
use crate::error::{Error, ProxyProtocol, ProxyResponse};

/// Writes beyond this many queued bytes wait for the request to go out.
const MAX_QUEUED: usize = 64 * 1024;

/// The first capacity of the answer's buffer.
const ANSWER_BUFFER: usize = 1024;

/// What answers the request.
pub(crate) enum Expect {
    /// An HTTP/1.1 response head, at most `max_head` bytes (interim
    /// responses included).
    Http1 { max_head: usize },
    /// SOCKS replies, in order.
    Socks {
        protocol: ProxyProtocol,
        replies: Vec<socks::Reply>,
    },
}

/// A tunnel request not yet answered.
pub(crate) struct Pending {
    /// The request, then what was written after it: `out[sent..]` is not
    /// sent yet.
    out: Vec<u8>,
    sent: usize,
    expect: Expect,
    state: State,
    /// The answer's bytes read so far.
    buf: Vec<u8>,
    /// Where the next reply starts in `buf`.
    pos: usize,
    /// Which SOCKS reply is next.
    reply: usize,
    started: Instant,
    proxy: Authority,
    target: Authority,
    /// The HTTP proxy's answer, and the time it took, once read.
    answer: Option<ProxyResponse>,
    elapsed: Option<Duration>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// The request, and what came after it, is (partly) unsent.
    Sending,
    /// Sent; the answer is being read.
    Reading,
    /// Answered with success.
    Open,
    /// Refused or failed: the error went up once, the tunnel is unusable.
    Failed,
}

impl Pending {
    pub(crate) fn new(
        request: Vec<u8>,
        expect: Expect,
        proxy: Authority,
        target: Authority,
    ) -> Box<Self> {
        Box::new(Pending {
            out: request,
            sent: 0,
            expect,
            state: State::Sending,
            buf: Vec::new(),
            pos: 0,
            reply: 0,
            started: Instant::now(),
            proxy,
            target,
            answer: None,
            elapsed: None,
        })
    }

    /// Whether the answer is read and said yes.
    pub(crate) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether writes must be queued behind the request.
    pub(crate) fn is_sending(&self) -> bool {
        self.state == State::Sending
    }

    /// The proxy's answer (HTTP only) and how long after the request was
    /// queued it was read, once read.
    pub(crate) fn take_answer(&mut self) -> (Option<ProxyResponse>, Option<Duration>) {
        (self.answer.take(), self.elapsed.take())
    }

    /// Queues `bufs` behind the request and tries to send everything in
    /// one write.
    pub(crate) fn poll_queue<I: Write + ?Sized>(
        &mut self,
        mut io: Pin<&mut I>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        debug_assert!(self.is_sending());
        if self.out.len() - self.sent >= MAX_QUEUED {
            ready!(self.poll_send(io.as_mut(), cx))?;
            // Sent: the bytes go straight to the stream now.
            return io.poll_write_vectored(cx, bufs);
        }
        let room = MAX_QUEUED - (self.out.len() - self.sent);
        let mut queued = 0;
        for b in bufs {
            let n = b.len().min(room - queued);
            self.out.extend_from_slice(&b[..n]);
            queued += n;
            if queued == room {
                break;
            }
        }
        // One write for the request and the bytes after it; what does not
        // go now goes on the next flush, write or read.
        match self.poll_send(io, cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(queued)),
        }
    }

    /// Sends what is queued.
    pub(crate) fn poll_send<I: Write + ?Sized>(
        &mut self,
        mut io: Pin<&mut I>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(io.as_mut().poll_write(cx, &self.out[self.sent..]))
                .map_err(|e| self.fail(http1::io_error(e, 0)))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        if self.state == State::Sending {
            self.state = State::Reading;
            // The request's allocation becomes the answer's buffer.
            self.buf = std::mem::take(&mut self.out);
            self.buf.clear();
            self.sent = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Sends the request, reads the answer and returns the tunnel bytes
    /// that came after it; an error is the crate's [`Error`] inside an
    /// `io::Error`.
    pub(crate) fn poll_answer<I: Read + Write + ?Sized>(
        &mut self,
        mut io: Pin<&mut I>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Vec<u8>>> {
        match self.state {
            State::Open => return Poll::Ready(Ok(Vec::new())),
            State::Failed => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the proxy refused the tunnel, or its answer could not be read",
                )))
            }
            State::Sending => {
                ready!(self.poll_send(io.as_mut(), cx))?;
                ready!(io.as_mut().poll_flush(cx)).map_err(|e| self.fail(http1::io_error(e, 0)))?;
            }
            State::Reading => {}
        }
        // Bounded: every turn reads at least one byte, and the reads stop
        // at the head's cap (HTTP) or after the last reply (SOCKS, a few
        // hundred bytes at most).
        loop {
            if let Some(end) = self.parse().map_err(|e| self.fail(e))? {
                self.state = State::Open;
                self.elapsed = Some(self.started.elapsed());
                let mut rest = std::mem::take(&mut self.buf);
                rest.drain(..end);
                tracing::trace!(elapsed = ?self.elapsed, "proxy answered the optimistic tunnel request");
                return Poll::Ready(Ok(rest));
            }
            let received = self.buf.len();
            let start = match &self.expect {
                Expect::Http1 { max_head } => {
                    http1::grow_for_read(&mut self.buf, received, *max_head)
                        .map_err(|e| self.fail(e))?
                }
                Expect::Socks { .. } => {
                    if self.buf.capacity() == 0 {
                        self.buf.reserve(ANSWER_BUFFER);
                    }
                    let start = self.buf.len();
                    let cap = self.buf.capacity().max(start + socks::MAX_REPLY);
                    self.buf.resize(cap, 0);
                    start
                }
            };
            let mut rb = ReadBuf::new(&mut self.buf[start..]);
            let read = io.as_mut().poll_read(cx, rb.unfilled());
            let n = rb.filled().len();
            self.buf.truncate(start + n);
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    let e = match &self.expect {
                        Expect::Http1 { .. } => http1::io_error(e, received),
                        Expect::Socks { protocol, .. } => super::connect::socks_error(
                            socks::closed_or_io(e, received - self.pos),
                            *protocol,
                        ),
                    };
                    return Poll::Ready(Err(self.fail(e)));
                }
                Poll::Ready(Ok(())) if n == 0 => {
                    let e = match &self.expect {
                        Expect::Http1 { .. } => http1::closed(received),
                        Expect::Socks { protocol, .. } => super::connect::socks_error(
                            socks::SocksError::Closed {
                                received: received - self.pos,
                            },
                            *protocol,
                        ),
                    };
                    return Poll::Ready(Err(self.fail(e)));
                }
                Poll::Ready(Ok(())) => {}
            }
        }
    }

    /// Where the answer ends in `buf`, once it is complete.
    fn parse(&mut self) -> Result<Option<usize>, Error> {
        match &self.expect {
            Expect::Http1 { .. } => match http1::final_head(&self.buf, &mut self.pos)? {
                None => Ok(None),
                Some(http1::Head::Established(end, response)) => {
                    self.answer = Some(response);
                    Ok(Some(end))
                }
                Some(http1::Head::Refused(_, response)) => Err(http1::Refused::error_for(response)),
            },
            Expect::Socks { protocol, replies } => {
                // Bounded by the number of replies.
                while let Some(reply) = replies.get(self.reply) {
                    match reply.parse(&self.buf[self.pos..]) {
                        Ok(socks::Parsed::Complete((), n)) => {
                            self.pos += n;
                            self.reply += 1;
                        }
                        Ok(socks::Parsed::Incomplete { .. }) => return Ok(None),
                        Err(e) => return Err(super::connect::socks_error(e, *protocol)),
                    }
                }
                Ok(Some(self.pos))
            }
        }
    }

    /// Ends the tunnel with `err`, named with the proxy and the target.
    fn fail(&mut self, err: Error) -> io::Error {
        self.state = State::Failed;
        self.buf = Vec::new();
        self.out = Vec::new();
        let err = err.in_context(Some(&self.proxy), &self.target);
        tracing::debug!(error = %err, "the optimistic tunnel request failed");
        io::Error::other(err)
    }
}

/// The crate's error inside `e`, when the tunnel put one there: a refused
/// or failed optimistic tunnel request, surfacing through the stage above.
pub(crate) fn unwrap_error(e: io::Error) -> Result<Error, io::Error> {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        let inner = e.into_inner().expect("checked above");
        return Ok(*inner.downcast::<Error>().expect("checked above"));
    }
    Err(e)
}

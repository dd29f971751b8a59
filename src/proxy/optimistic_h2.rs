//! Optimistic tunnel data on an HTTP/2 `CONNECT` stream
//! ([`Proxy::with_optimistic_data`]): the bytes written to the tunnel go out
//! as DATA right behind the request's HEADERS, without waiting for the
//! proxy's `:status`, and the answer is awaited before the first byte read.
//!
//! HTTP/2 frames the answer, so nothing of the target's handshake can be
//! taken for it: a refusal is the same [`Error`] as without optimism (status
//! and headers), carried up inside an `io::Error` for the TLS stage to
//! unwrap, and the bytes sent with it are dropped with the stream.
//!
//! # Sending again
//!
//! A stream the proxy says it never processed (reset with
//! `REFUSED_STREAM`, or above the last stream id of its `GOAWAY`; RFC 9113
//! §8.7) is sent again once, as without optimism: a new `CONNECT` stream to
//! the same proxy for the same target (on a pooled connection with room, or
//! a new one), and the bytes written before the answer go again behind it.
//! The proxy guarantees it acted on none of them the first time. Nothing is
//! sent again after any other failure, after any answer, to another hop, or
//! once more than [`MAX_KEPT`] bytes were written before the answer (in
//! practice only the `ClientHello` is).
//!
//! [`Proxy::with_optimistic_data`]: crate::Proxy::with_optimistic_data

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::SendStream;
use http::uri::Authority;
use hyper::rt::{Read, ReadBufCursor, Write};

use super::connect::{h2_answer, h2_error, is_unprocessed};
use super::pool::{Lease, Sent};
use super::protocol::http2::{poll_send_data, stream_error, H2Stream};
use crate::error::{Error, ErrorKind, Phase, ProxyResponse};

/// The most bytes written before the answer that are kept to be sent again;
/// past it, an unprocessed stream is not sent again.
pub(crate) const MAX_KEPT: usize = 64 * 1024;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Sends the `CONNECT` again on a new stream to the same proxy, for the same
/// target.
pub(crate) type Resend = Box<dyn FnOnce() -> BoxFuture<Result<Sent, Error>> + Send>;

/// An HTTP/2 `CONNECT` stream whose answer is not read yet; then the tunnel.
pub(crate) struct H2Pending {
    stage: Stage,
    /// The stream's slot on its connection; taken with the open tunnel.
    lease: Option<Lease>,
    stream: u32,
    /// What was written before the answer, while it may be sent again.
    kept: Option<Vec<u8>>,
    /// The tunnel was shut down (END_STREAM) before the answer.
    shut: bool,
    /// A write failed before the answer: the answer says why, unless it is
    /// a success, then this is the error.
    lost: Option<h2::Error>,
    resend: Option<Resend>,
    retried: bool,
    started: Instant,
    /// The connect timeout, and when the current stream's answer is due.
    limit: Option<Duration>,
    until: Option<tokio::time::Instant>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    proxy: Authority,
    target: Authority,
    /// The proxy's answer, and the time it took, once read.
    answer: Option<ProxyResponse>,
    elapsed: Option<Duration>,
}

enum Stage {
    /// Sent; the answer is awaited, and writes go out behind the HEADERS.
    Waiting {
        send: SendStream<Bytes>,
        response: ResponseFuture,
    },
    /// The proxy never processed the stream: a new one is being opened.
    Resending(BoxFuture<Result<Sent, Error>>),
    /// Answered with a 2xx.
    Open(H2Stream),
    /// Refused or failed: the error went up once.
    Failed,
}

/// What an answered stream tells the route's [`ConnectionInfo`](crate::ConnectionInfo).
pub(crate) struct Answered {
    pub(crate) response: Option<ProxyResponse>,
    pub(crate) elapsed: Option<Duration>,
    /// The stream the tunnel runs on, when it was sent again.
    pub(crate) retried: Option<u32>,
}

impl H2Pending {
    /// `sent`'s answer awaited for at most `limit` (the connect timeout).
    pub(crate) fn new(
        sent: Sent,
        resend: Resend,
        limit: Option<Duration>,
        proxy: &Authority,
        target: &Authority,
    ) -> Box<Self> {
        let Sent {
            stream,
            lease,
            response,
            send,
            ..
        } = sent;
        Box::new(H2Pending {
            stage: Stage::Waiting { send, response },
            lease: Some(lease),
            stream,
            kept: Some(Vec::new()),
            shut: false,
            lost: None,
            resend: Some(resend),
            retried: false,
            started: Instant::now(),
            limit,
            until: limit.map(|l| tokio::time::Instant::now() + l),
            deadline: None,
            proxy: proxy.clone(),
            target: target.clone(),
            answer: None,
            elapsed: None,
        })
    }

    /// The tunnel, once the answer is read and said yes.
    pub(crate) fn open(&mut self) -> Option<&mut H2Stream> {
        match &mut self.stage {
            Stage::Open(io) => Some(io),
            _ => None,
        }
    }

    /// The tunnel with its lease and the answer's facts, once open; `None`
    /// (and nothing taken) before.
    pub(crate) fn take_open(&mut self) -> Option<(H2Stream, Lease, Answered)> {
        if !matches!(self.stage, Stage::Open(_)) {
            return None;
        }
        let Stage::Open(io) = std::mem::replace(&mut self.stage, Stage::Failed) else {
            unreachable!("checked above")
        };
        let lease = self
            .lease
            .take()
            .expect("a stream holds its lease until taken");
        let answered = Answered {
            response: self.answer.take(),
            elapsed: self.elapsed.take(),
            retried: self.retried.then_some(self.stream),
        };
        Some((io, lease, answered))
    }

    /// Reads the answer: `Ok` once the tunnel is open; an error is the
    /// crate's [`Error`] inside an `io::Error`.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bounded: a stream is sent again at most once.
        loop {
            match &mut self.stage {
                Stage::Open(_) => return Poll::Ready(Ok(())),
                Stage::Failed => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the proxy refused the tunnel, or its answer could not be read",
                    )))
                }
                Stage::Resending(fut) => {
                    let sent = match fut.as_mut().poll(cx) {
                        Poll::Ready(Ok(sent)) => sent,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(self.fail(e))),
                        // The new stream's dial, TLS and handshake have
                        // timeouts of their own.
                        Poll::Pending => return Poll::Pending,
                    };
                    self.resent(sent);
                }
                Stage::Waiting { response, .. } => match Pin::new(response).poll(cx) {
                    Poll::Pending => {
                        ready!(self.poll_deadline(cx))?;
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => {
                        let err = h2_error(e);
                        if is_unprocessed(&err) && self.kept.is_some() && self.resend.is_some() {
                            tracing::debug!(error = %err, "proxy did not process the optimistic CONNECT stream; sending it and its data again");
                            let resend = self.resend.take().expect("checked above");
                            self.stage = Stage::Resending(resend());
                            continue;
                        }
                        return Poll::Ready(Err(self.fail(err)));
                    }
                    Poll::Ready(Ok(res)) => {
                        let (body, response) = match h2_answer(res) {
                            Ok(answer) => answer,
                            Err(e) => return Poll::Ready(Err(self.fail(e))),
                        };
                        let Stage::Waiting { send, .. } =
                            std::mem::replace(&mut self.stage, Stage::Failed)
                        else {
                            unreachable!("matched above")
                        };
                        if let Some(e) = self.lost.take() {
                            // The proxy said yes, but bytes written before
                            // did not go out: the tunnel is broken.
                            self.kept = None;
                            return Poll::Ready(Err(stream_error(e, &self.proxy, &self.target)));
                        }
                        self.elapsed = Some(self.started.elapsed());
                        self.answer = Some(response);
                        self.kept = None;
                        self.deadline = None;
                        self.stage =
                            Stage::Open(H2Stream::new(send, body, &self.proxy, &self.target));
                        tracing::trace!(elapsed = ?self.elapsed, "proxy answered the optimistic CONNECT stream");
                        return Poll::Ready(Ok(()));
                    }
                },
            }
        }
    }

    /// The new stream is sent: what was written before goes behind it, and
    /// the answer is awaited again, for the whole limit.
    fn resent(&mut self, sent: Sent) {
        let Sent {
            stream,
            lease,
            response,
            mut send,
            ..
        } = sent;
        let kept = self.kept.take().unwrap_or_default();
        self.lease = Some(lease);
        self.stream = stream;
        self.retried = true;
        self.lost = None;
        if !kept.is_empty() || self.shut {
            // h2 queues what the window does not take yet.
            if let Err(e) = send.send_data(Bytes::from(kept), self.shut) {
                self.lost = Some(e);
            }
        }
        self.stage = Stage::Waiting { send, response };
        self.until = self.limit.map(|l| tokio::time::Instant::now() + l);
    }

    /// Fails with the connect timeout once the answer is overdue.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (Some(limit), Some(until)) = (self.limit, self.until) else {
            return Poll::Ready(Ok(()));
        };
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
        if deadline.deadline() != until {
            deadline.as_mut().reset(until);
        }
        ready!(deadline.as_mut().poll(cx));
        // The connection may be dead without a FIN or RST ever coming:
        // new tunnels go to another.
        if let Some(lease) = &self.lease {
            lease.mark_silent();
        }
        Poll::Ready(Err(self.fail(Error::timeout(Phase::ProxyConnect, limit))))
    }

    /// Ends the tunnel with `err`, named with the proxy and the target.
    fn fail(&mut self, err: Error) -> io::Error {
        self.stage = Stage::Failed;
        self.kept = None;
        self.resend = None;
        self.deadline = None;
        let err = err.in_context(Some(&self.proxy), &self.target);
        tracing::debug!(error = %err, "the optimistic CONNECT stream failed");
        io::Error::other(err)
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_answer(cx))?;
        let io = self.open().expect("open once answered");
        Pin::new(io).poll_read(cx, buf)
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.stage {
            Stage::Open(io) => Pin::new(io).poll_write(cx, buf),
            Stage::Failed => Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into())),
            // The bytes wait for the new stream.
            Stage::Resending(_) => Poll::Ready(self.keep(buf, buf.len(), false)),
            Stage::Waiting { .. } if self.lost.is_some() => {
                Poll::Ready(self.keep(buf, buf.len(), false))
            }
            Stage::Waiting { send, .. } => match poll_send_data(send, cx, buf) {
                Poll::Ready(Ok(n)) => Poll::Ready(self.keep(buf, n, true)),
                // The stream failed before the answer: the answer (or the
                // failure in its place) says why, and whether the bytes go
                // again on a new stream.
                Poll::Ready(Err(e)) => {
                    self.lost = Some(e);
                    Poll::Ready(self.keep(buf, buf.len(), false))
                }
                // No window yet: the answer's deadline bounds this wait too.
                Poll::Pending => match self.poll_deadline(cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                },
            },
        }
    }

    /// Keeps `buf[..n]`, written before the answer, for a new stream;
    /// returns `n`. Bytes that were `sent` need keeping only while the
    /// stream may be sent again; the others must be.
    fn keep(&mut self, buf: &[u8], n: usize, sent: bool) -> io::Result<usize> {
        match &mut self.kept {
            Some(kept) if kept.len() + n <= MAX_KEPT => kept.extend_from_slice(&buf[..n]),
            _ if sent => self.kept = None,
            // Sent again already, and this stream failed: its answer fails
            // the tunnel, and nothing will carry these.
            _ if self.lost.is_some()
                && self.resend.is_none()
                && matches!(self.stage, Stage::Waiting { .. }) => {}
            _ => {
                return Err(self.fail(
                    Error::new(ErrorKind::Io, Some(Phase::ProxyConnect)).with_detail(
                        "its HTTP/2 stream failed with more than 64 KiB written to the tunnel \
                         before its answer",
                    ),
                ))
            }
        }
        Ok(n)
    }

    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stage {
            Stage::Open(io) => Pin::new(io).poll_shutdown(cx),
            Stage::Failed => Poll::Ready(Ok(())),
            Stage::Resending(_) => {
                self.shut = true;
                Poll::Ready(Ok(()))
            }
            Stage::Waiting { send, .. } => {
                if !self.shut {
                    self.shut = true;
                    if let Err(e) = send.send_data(Bytes::new(), true) {
                        self.lost.get_or_insert(e);
                    }
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

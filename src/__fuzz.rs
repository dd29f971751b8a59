//! Thin wrappers over crate-private parsers, for the fuzz targets in `fuzz/` and the
//! property tests in `tests/proptest_parsers.rs`. Not part of the public API: no
//! stability promise, hidden from the docs.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::FutureExt as _;

use crate::error::ErrorKind;
use crate::proxy::protocol::http1::{self, ParseError, Reply};

/// What [`parse_reply`] made of one response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A 1xx interim response of this many bytes, to skip.
    Interim(usize),
    /// A 2xx: the tunnel is open after this many bytes of head.
    Established(usize),
    /// A final non-2xx answer with this status code.
    Refused(u16),
}

/// Why [`parse_reply`] rejected the bytes, as the name of the crate-private case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure(pub String);

/// Runs the `CONNECT` answer parser on `buf`.
pub fn parse_reply(buf: &[u8]) -> Result<Parsed, ParseFailure> {
    match http1::parse_reply(buf) {
        Ok(None) => Ok(Parsed::Partial),
        Ok(Some(Reply::Interim(n))) => Ok(Parsed::Interim(n)),
        Ok(Some(Reply::Established(n, _))) => Ok(Parsed::Established(n)),
        Ok(Some(Reply::Refused(_, r))) => Ok(Parsed::Refused(r.status().as_u16())),
        Err(e) => Err(ParseFailure(failure_name(&e))),
    }
}

fn failure_name(e: &ParseError) -> String {
    format!("{e:?}")
}

/// How [`connect_exchange`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// The tunnel opened: the answer head (interim responses included) ended at
    /// `head_end` in a buffer of `buffered` bytes.
    Established {
        /// Where the tunnel bytes start.
        head_end: usize,
        /// Bytes read from the proxy in all.
        buffered: usize,
    },
    /// The exchange failed with this kind.
    Failed(ErrorKind),
}

/// Runs the whole `CONNECT` exchange against a proxy that answers with `chunks`, one per
/// read, then end of stream; reads at most `max_head` bytes of answer. Returns `None`
/// only if the exchange did not finish although every read was ready, which is a bug.
pub fn connect_exchange(chunks: &[&[u8]], max_head: usize) -> Option<Exchange> {
    let mut io = Scripted {
        chunks: chunks
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| c.to_vec())
            .collect(),
    };
    let request = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    let result = http1::exchange_answer(&mut io, request, max_head).now_or_never()?;
    Some(match result {
        Ok(http1::Answer::Established(established)) => Exchange::Established {
            head_end: established.head_end,
            buffered: established.head_end + established.rest.len(),
        },
        Ok(http1::Answer::Refused(refused)) => Exchange::Failed(refused.into_error().kind()),
        Err(e) => Exchange::Failed(e.kind()),
    })
}

/// A proxy connection that is always ready: each read returns (part of) the next chunk.
struct Scripted {
    chunks: VecDeque<Vec<u8>>,
}

impl hyper::rt::Read for Scripted {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(chunk) = this.chunks.front_mut() {
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                this.chunks.pop_front();
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Scripted {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What the SOCKS reply parsers made of `buf`: `Ok(Some(consumed))` for a
/// complete reply, `Ok(None)` when more bytes are needed (with `needed`
/// greater than what was given), `Err(reason)` for a refused or malformed
/// reply. `which`: 0 method choice, 1 RFC 1929 status, 2 SOCKS5 reply,
/// 3 SOCKS4 reply.
pub fn socks_reply(which: u8, buf: &[u8]) -> Result<Option<usize>, String> {
    use crate::proxy::protocol::socks::{self, Parsed};
    fn done<T>(
        p: Result<Parsed<T>, socks::SocksError>,
        len: usize,
    ) -> Result<Option<usize>, String> {
        match p {
            Ok(Parsed::Complete(_, consumed)) => Ok(Some(consumed)),
            Ok(Parsed::Incomplete { needed }) => {
                assert!(needed > len, "asked for {needed} bytes with {len} in hand");
                Ok(None)
            }
            Err(e) => Err(e.to_string()),
        }
    }
    match which % 4 {
        0 => done(socks::parse_method(buf, true), buf.len()),
        1 => done(socks::parse_auth_status(buf), buf.len()),
        2 => done(socks::parse_socks5_reply(buf), buf.len()),
        _ => done(socks::parse_socks4_reply(buf), buf.len()),
    }
}

/// Runs the NTLM CHALLENGE_MESSAGE parser on `buf` and, when it parses, answers it:
/// `Ok(len)` is the AUTHENTICATE_MESSAGE's length, `Err` the parser's reason.
pub fn ntlm_challenge(buf: &[u8]) -> Result<usize, String> {
    use crate::proxy::protocol::ntlm::{authenticate_message, Challenge, NtlmCredentials};
    let challenge = Challenge::parse(buf).map_err(|e| e.to_string())?;
    let credentials = NtlmCredentials::parse("DOMAIN\\user", "password");
    authenticate_message(&challenge, &credentials, [0xaa; 8], Some(0))
        .map(|m| m.as_bytes().len())
        .map_err(|e| e.to_string())
}

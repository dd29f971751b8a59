//! The HTTP/1.1 `CONNECT` exchange: the request bytes, a bounded,
//! incremental parser for the proxy's answer, and a bounded reader for the
//! body of a refusal, so a connection-bound handshake (NTLM, Negotiate) can
//! send its next step on the same connection.

use std::time::Instant;

use http::uri::Authority;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, ErrorKind, Phase, ProxyResponse};
use crate::route::Proxy;

/// The first capacity of the buffer the request is written from and the
/// answer read into; a longer answer grows it, up to the cap.
const READ_BUFFER: usize = 1024;

/// Headers beyond this count make the answer [`ErrorKind::ProxyHeadersTooLarge`].
pub(crate) const MAX_HEADERS: usize = 64;

/// Writes `CONNECT target HTTP/1.1` with `Host`, the proxy's credentials and
/// the user's extra headers.
pub(crate) fn encode_request(
    target: &Authority,
    proxy: &Proxy,
    authorization: Option<&HeaderValue>,
) -> Vec<u8> {
    let mut req = Vec::with_capacity(READ_BUFFER);
    write_request(&mut req, target, proxy, authorization);
    req
}

/// Writes the request of [`encode_request`] into `req`.
pub(crate) fn write_request(
    req: &mut impl Sink,
    target: &Authority,
    proxy: &Proxy,
    authorization: Option<&HeaderValue>,
) {
    // RFC 9110 §9.3.6: the request-target of CONNECT is authority-form, and
    // `Host` carries the same authority.
    for part in [
        "CONNECT ",
        target.as_str(),
        " HTTP/1.1\r\nHost: ",
        target.as_str(),
        "\r\n",
    ] {
        req.put(part.as_bytes());
    }
    if let Some(auth) = authorization.or(proxy.authorization()) {
        push_header(req, &http::header::PROXY_AUTHORIZATION, auth);
    }
    for (name, value) in proxy.headers() {
        push_header(req, name, value);
    }
    req.put(b"\r\n");
}

fn push_header(req: &mut impl Sink, name: &HeaderName, value: &HeaderValue) {
    req.put(name.as_str().as_bytes());
    req.put(b": ");
    req.put(value.as_bytes());
    req.put(b"\r\n");
}

/// Where a request is written.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A request buffer on the stack, moving to the heap only when a request
/// outgrows it (long names, many extra headers): a typical `CONNECT`
/// allocates nothing.
pub(crate) struct RequestBuf {
    inline: [u8; INLINE_REQUEST],
    len: usize,
    heap: Option<Vec<u8>>,
}

const INLINE_REQUEST: usize = 512;

impl RequestBuf {
    pub(crate) fn new() -> Self {
        RequestBuf {
            inline: [0; INLINE_REQUEST],
            len: 0,
            heap: None,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match &self.heap {
            Some(heap) => heap,
            None => &self.inline[..self.len],
        }
    }
}

impl Sink for RequestBuf {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(heap) = &mut self.heap {
            return heap.extend_from_slice(bytes);
        }
        match self.inline.get_mut(self.len..self.len + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => {
                let mut heap = Vec::with_capacity(2 * (self.len + bytes.len()));
                heap.extend_from_slice(&self.inline[..self.len]);
                heap.extend_from_slice(bytes);
                self.heap = Some(heap);
            }
        }
    }
}

/// What one complete response head in the buffer says.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A 1xx interim response of `len` bytes, to skip.
    Interim(usize),
    /// A 2xx: the tunnel is open after `len` bytes of head.
    Established(usize, ProxyResponse),
    /// Anything else, after `len` bytes of head (its body, if any, follows).
    Refused(usize, ProxyResponse),
}

/// Why the answer could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    BadVersion,
    TlsRecord,
    Malformed(&'static str),
    TooManyHeaders,
}

/// Parses one response head from `buf`; `Ok(None)` means more bytes are
/// needed.
pub(crate) fn parse_reply(buf: &[u8]) -> Result<Option<Reply>, ParseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::Version) => return Err(classify_bad_start(buf)),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
        Err(e) => return Err(ParseError::Malformed(parse_error_text(e))),
    };
    let code = res.code.unwrap_or_default();
    let status =
        StatusCode::from_u16(code).map_err(|_| ParseError::Malformed("invalid status code"))?;
    if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
        // RFC 9110 §15.2: a client must be able to parse and skip interim
        // responses; 101 is final, and makes no sense for CONNECT.
        return Ok(Some(Reply::Interim(len)));
    }
    let mut map = HeaderMap::with_capacity(res.headers.len());
    for h in res.headers.iter() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) {
            map.append(name, value);
        }
    }
    if status.is_success() {
        // RFC 9110 §9.3.6: any 2xx to CONNECT opens the tunnel, and a
        // client MUST ignore Content-Length or Transfer-Encoding in it.
        // The reason phrase of a success says nothing worth an allocation.
        return Ok(Some(Reply::Established(
            len,
            ProxyResponse::new(status, None, map),
        )));
    }
    let reason = res.reason.map(str::to_owned);
    Ok(Some(Reply::Refused(
        len,
        ProxyResponse::new(status, reason, map),
    )))
}

fn classify_bad_start(buf: &[u8]) -> ParseError {
    // TLS record header: content type 20..=23, then major version 3.
    if buf.len() >= 2 && (0x14..=0x17).contains(&buf[0]) && buf[1] == 0x03 {
        ParseError::TlsRecord
    } else if buf.starts_with(b"HTTP/") {
        ParseError::BadVersion
    } else {
        ParseError::Malformed("not an HTTP response")
    }
}

/// The version token the proxy sent (`HTTP/9.9`), printable ASCII only and at most 16
/// bytes, so a hostile answer cannot put control bytes or a flood into a message.
fn version_seen(buf: &[u8]) -> String {
    buf.iter()
        .take_while(|b| b.is_ascii_graphic())
        .take(16)
        .map(|&b| char::from(b))
        .collect()
}

fn parse_error_text(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::Status => "invalid status line",
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid token",
        _ => "invalid response head",
    }
}

/// The tunnel is open; `rest` are tunnel bytes that arrived with the
/// answer, whose head (interim responses included) was `head_end` bytes.
pub(crate) struct Established {
    pub(crate) rest: Vec<u8>,
    #[cfg_attr(not(feature = "__fuzz"), allow(dead_code))]
    pub(crate) head_end: usize,
    pub(crate) response: ProxyResponse,
}

/// The final answer to a `CONNECT`.
pub(crate) enum Answer {
    /// A 2xx: the tunnel is open.
    Established(Established),
    /// Anything else, with the bytes read past its head.
    Refused(Refused),
}

/// A refusal, and what was read with it: `buf[pos..]` are the bytes after
/// its head, the start of its body ([`read_refusal_body`] reads the rest,
/// so a handshake can go on on the same connection).
pub(crate) struct Refused {
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
    pub(crate) response: ProxyResponse,
}

impl Refused {
    /// `ProxyAuthRequired` for a 407, `ProxyRefused` for anything else,
    /// with the answer.
    pub(crate) fn into_error(self) -> Error {
        Refused::error_for(self.response)
    }

    /// The error for a refusal that says `response`.
    pub(crate) fn error_for(response: ProxyResponse) -> Error {
        let kind = if response.status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            ErrorKind::ProxyAuthRequired
        } else {
            ErrorKind::ProxyRefused
        };
        Error::new(kind, Some(Phase::ProxyConnect)).with_response(response)
    }
}

/// Sends `request` and reads the answer, reading at most `max_head` bytes
/// of response head (interim responses included). A refusal is an answer,
/// with the bytes read past its head, so the connection can carry the next
/// step of a handshake ([`Refused::into_error`] makes it the error).
pub(crate) async fn exchange_answer<T>(
    io: &mut T,
    request: &[u8],
    max_head: usize,
) -> Result<Answer, Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    let mut io = TokioIo::new(io);
    io.write_all(request).await.map_err(|e| io_error(e, 0))?;
    io.flush().await.map_err(|e| io_error(e, 0))?;

    let started = Instant::now();
    let mut pos = 0; // start of the response head being parsed
                     // A typical answer (a status line and a few headers) fits on the stack:
                     // the heap is used only for the tunnel bytes that came with it, if any,
                     // and for longer answers.
    let mut stack = [0u8; READ_BUFFER];
    let mut filled = 0;
    let cap = max_head.min(READ_BUFFER);
    // Bounded: every turn reads at least one byte, up to `cap`.
    loop {
        match final_head(&stack[..filled], &mut pos)? {
            Some(Head::Established(end, response)) => {
                tracing::trace!(elapsed = ?started.elapsed(), "proxy opened the tunnel");
                return Ok(Answer::Established(Established {
                    rest: stack[end..filled].to_vec(),
                    head_end: end,
                    response,
                }));
            }
            Some(Head::Refused(end, response)) => {
                return Ok(Answer::Refused(Refused {
                    buf: stack[..filled].to_vec(),
                    pos: end,
                    response,
                }));
            }
            None => {}
        }
        if filled >= cap {
            break;
        }
        let n = match io.read(&mut stack[filled..cap]).await {
            Ok(n) => n,
            Err(e) => return Err(io_error(e, filled)),
        };
        if n == 0 {
            return Err(closed(filled));
        }
        filled += n;
    }
    // A longer answer: on in a buffer that grows up to the cap.
    let mut buf = stack[..filled].to_vec();
    let mut received = filled; // head bytes seen, interim responses included
    loop {
        match final_head(&buf, &mut pos)? {
            Some(Head::Established(end, response)) => {
                tracing::trace!(elapsed = ?started.elapsed(), "proxy opened the tunnel");
                buf.drain(..end);
                return Ok(Answer::Established(Established {
                    rest: buf,
                    head_end: end,
                    response,
                }));
            }
            Some(Head::Refused(end, response)) => {
                return Ok(Answer::Refused(Refused {
                    buf,
                    pos: end,
                    response,
                }));
            }
            None => {}
        }
        // Read no further than the cap allows: an endless answer stops here
        // and memory stays bounded by `max_head`.
        let start = grow_for_read(&mut buf, received, max_head)?;
        let n = match io.read(&mut buf[start..]).await {
            Ok(n) => n,
            Err(e) => return Err(io_error(e, received)),
        };
        buf.truncate(start + n);
        if n == 0 {
            return Err(closed(received));
        }
        received += n;
    }
}

/// The final answer's head in `buf[*pos..]`, interim responses skipped
/// (`*pos` moves past them); `Ok(None)` means more bytes are needed.
pub(crate) fn final_head(buf: &[u8], pos: &mut usize) -> Result<Option<Head>, Error> {
    let fail = |kind: ErrorKind| Error::new(kind, Some(Phase::ProxyConnect));
    loop {
        return match parse_reply(&buf[*pos..]) {
            Ok(Some(Reply::Established(len, response))) => {
                Ok(Some(Head::Established(*pos + len, response)))
            }
            Ok(Some(Reply::Interim(len))) => {
                *pos += len;
                continue;
            }
            Ok(Some(Reply::Refused(len, response))) => {
                Ok(Some(Head::Refused(*pos + len, response)))
            }
            Ok(None) => Ok(None),
            Err(ParseError::TooManyHeaders) => Err(fail(ErrorKind::ProxyHeadersTooLarge)
                .with_detail(format!("more than {MAX_HEADERS} headers"))),
            Err(ParseError::BadVersion) => {
                Err(fail(ErrorKind::ProxyBadVersion).with_detail(version_seen(&buf[*pos..])))
            }
            Err(ParseError::TlsRecord) => Err(fail(ErrorKind::ProxyMalformed)
                .with_detail("it sent a TLS record, not HTTP: is it an https:// proxy?")),
            Err(ParseError::Malformed(what)) => {
                Err(fail(ErrorKind::ProxyMalformed).with_detail(what))
            }
        };
    }
}

/// The final head of an answer, and where it ends in the buffer.
#[derive(Debug)]
pub(crate) enum Head {
    /// A 2xx: tunnel bytes start at the offset.
    Established(usize, ProxyResponse),
    /// Anything else: its body, if any, starts at the offset.
    Refused(usize, ProxyResponse),
}

/// Makes room in `buf` for the next read of an answer of which `received`
/// bytes came so far, and returns where the read goes (`buf[start..]`);
/// fails once `max_head` bytes came without a complete head.
pub(crate) fn grow_for_read(
    buf: &mut Vec<u8>,
    received: usize,
    max_head: usize,
) -> Result<usize, Error> {
    if received >= max_head {
        return Err(
            Error::new(ErrorKind::ProxyHeadersTooLarge, Some(Phase::ProxyConnect))
                .with_detail(format!("more than {max_head} bytes of headers")),
        );
    }
    let start = buf.len();
    if buf.capacity() - start < READ_BUFFER / 2 {
        buf.reserve(READ_BUFFER.max(start));
    }
    let want = (max_head - received).min(buf.capacity() - start);
    buf.resize(start + want, 0);
    Ok(start)
}

/// The end of the stream after `received` bytes of the answer.
pub(crate) fn closed(received: usize) -> Error {
    Error::new(
        if received == 0 {
            ErrorKind::ProxyClosed
        } else {
            ErrorKind::ProxyTruncated
        },
        Some(Phase::ProxyConnect),
    )
}

/// A failed read or write, after `received` bytes of the answer.
///
/// A proxy that closes on us may do it with a reset (it had unread input), so a
/// reset says "closed" as much as an end of stream does: before any answer byte it
/// is `ProxyClosed`, in the middle of one `ProxyTruncated`; the io::Error stays the
/// source.
pub(crate) fn io_error(e: std::io::Error, received: usize) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::UnexpectedEof
            if received == 0 =>
        {
            ErrorKind::ProxyClosed
        }
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::UnexpectedEof => ErrorKind::ProxyTruncated,
        _ => ErrorKind::Io,
    };
    Error::new(kind, Some(Phase::ProxyConnect)).with_source(e)
}

/// The most body (framing included) of a refused answer that is read to
/// keep its connection.
pub(crate) const MAX_REFUSAL_BODY: usize = 64 * 1024;

/// How a response's body ends (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body: `204`, `304` (1xx and a `2xx` to `CONNECT` never get here).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the proxy closes the connection.
    UntilClose,
}

/// Why the body of a refusal could not be read to its end. Holds no byte
/// of the body.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body (framing included) is longer than the cap.
    TooLarge(usize),
    /// Bad `Content-Length`, `Transfer-Encoding` or chunk framing.
    Malformed(&'static str),
    /// No `Content-Length` and no chunked coding: the body ends only when
    /// the proxy closes, so the connection cannot carry another request.
    NotDelimited,
    /// The proxy closed the connection before the body's end.
    Truncated,
    /// Reading failed.
    Io(std::io::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(max) => write!(f, "its refusal's body is more than {max} bytes"),
            BodyError::Malformed(what) => write!(f, "its refusal's body is malformed: {what}"),
            BodyError::NotDelimited => f.write_str(
                "its refusal's body has no Content-Length or chunked coding, so the connection ends with it",
            ),
            BodyError::Truncated => f.write_str("it closed the connection in the middle of its refusal's body"),
            BodyError::Io(_) => f.write_str("reading its refusal's body failed"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl BodyError {
    /// As the crate's error, in the `CONNECT` phase, with the kinds the
    /// answer's head uses for the same faults.
    pub(crate) fn into_error(self) -> Error {
        let kind = match &self {
            BodyError::TooLarge(_) => ErrorKind::ProxyHeadersTooLarge,
            BodyError::Malformed(_) | BodyError::NotDelimited => ErrorKind::ProxyMalformed,
            BodyError::Truncated => ErrorKind::ProxyTruncated,
            BodyError::Io(e) => match e.kind() {
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof => ErrorKind::ProxyTruncated,
                _ => ErrorKind::Io,
            },
        };
        let err = Error::new(kind, Some(Phase::ProxyConnect)).with_detail(self.to_string());
        match self {
            BodyError::Io(e) => err.with_source(e),
            _ => err,
        }
    }
}

/// How the body of `response` ends.
///
/// # Errors
///
/// [`BodyError::Malformed`] for a `Content-Length` that is not a number,
/// several that disagree, or one beside `Transfer-Encoding` (RFC 9112 §6.3
/// says to treat that as an error: a sign of response smuggling).
pub(crate) fn framing(response: &ProxyResponse) -> Result<Framing, BodyError> {
    let status = response.status();
    if status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational()
    {
        return Ok(Framing::Empty);
    }
    let headers = response.headers();
    let mut length: Option<u64> = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        // RFC 9110 §8.6: a list of equal values is that value.
        let text = value
            .to_str()
            .map_err(|_| BodyError::Malformed("Content-Length is not a number"))?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BodyError::Malformed("Content-Length is not a number"));
            }
            let n: u64 = part
                .parse()
                .map_err(|_| BodyError::Malformed("Content-Length is not a number"))?;
            if length.is_some_and(|l| l != n) {
                return Err(BodyError::Malformed("Content-Length values disagree"));
            }
            length = Some(n);
        }
    }
    let mut codings = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty())
        .peekable();
    if codings.peek().is_some() {
        if length.is_some() {
            return Err(BodyError::Malformed(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        // RFC 9112 §6.3: chunked last delimits the body; any other last
        // coding of a response runs to the close.
        return Ok(match codings.last() {
            Some(c) if c.eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
            _ => Framing::UntilClose,
        });
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

/// Whether the proxy said it closes the connection after this answer
/// (`Connection: close`, or the older `Proxy-Connection: close`). An
/// HTTP/1.0 answer without `keep-alive` closes too; the head's version
/// tells that, which `ProxyResponse` does not keep.
pub(crate) fn closes(response: &ProxyResponse) -> bool {
    [
        http::header::CONNECTION,
        HeaderName::from_static("proxy-connection"),
    ]
    .iter()
    .flat_map(|name| response.headers().get_all(name))
    .flat_map(|v| v.as_bytes().split(|&b| b == b','))
    .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// The end of a refusal's body.
#[derive(Debug)]
pub(crate) struct Drained {
    /// Bytes read past the body's end. A proxy waits for the next request
    /// before it answers, so anything here is out of place.
    pub(crate) leftover: Vec<u8>,
    /// Bytes of body read, framing included.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) read: usize,
    /// See [`closes`].
    pub(crate) close: bool,
}

/// Reads the body of the refusal `response` to its end and throws it
/// away, so the next request can go on the same connection. `buffered` are
/// the bytes that came after the head; at most `max` bytes of body
/// (framing included) are read. Wrap it in the phase's timeout: it reads
/// until the body ends.
///
/// # Errors
///
/// [`BodyError::NotDelimited`] when only a close ends the body (the
/// connection cannot be kept), [`BodyError::TooLarge`] past `max`,
/// [`BodyError::Truncated`] at an early end of stream, and the errors of
/// [`framing`] and of the chunked coding.
pub(crate) async fn read_refusal_body<T>(
    io: &mut T,
    response: &ProxyResponse,
    buffered: &[u8],
    max: usize,
) -> Result<Drained, BodyError>
where
    T: hyper::rt::Read + Unpin,
{
    let mut body = match framing(response)? {
        Framing::Empty => BodyState::Length(0),
        Framing::Length(n) if n > max as u64 => return Err(BodyError::TooLarge(max)),
        Framing::Length(n) => BodyState::Length(n),
        Framing::Chunked => BodyState::Chunked(Chunked::default()),
        Framing::UntilClose => return Err(BodyError::NotDelimited),
    };
    let close = closes(response);
    let mut read = 0usize;
    let (n, done) = body.feed(buffered)?;
    read += n;
    if done {
        return Ok(Drained {
            leftover: buffered[n..].to_vec(),
            read,
            close,
        });
    }
    let mut io = TokioIo::new(io);
    let mut scratch = vec![0u8; READ_BUFFER * 8];
    loop {
        if read > max {
            return Err(BodyError::TooLarge(max));
        }
        // A known length is read exactly, so nothing past it is taken.
        let want = match body {
            BodyState::Length(rest) => scratch
                .len()
                .min(usize::try_from(rest).unwrap_or(usize::MAX)),
            BodyState::Chunked(_) => scratch.len(),
        };
        let got = io.read(&mut scratch[..want]).await.map_err(BodyError::Io)?;
        if got == 0 {
            return Err(BodyError::Truncated);
        }
        let (n, done) = body.feed(&scratch[..got])?;
        read += n;
        if read > max {
            return Err(BodyError::TooLarge(max));
        }
        if done {
            return Ok(Drained {
                leftover: scratch[n..got].to_vec(),
                read,
                close,
            });
        }
    }
}

/// What is left of a body.
enum BodyState {
    Length(u64),
    Chunked(Chunked),
}

impl BodyState {
    /// Consumes what of `data` belongs to the body: (bytes consumed, ended).
    fn feed(&mut self, data: &[u8]) -> Result<(usize, bool), BodyError> {
        match self {
            BodyState::Length(rest) => {
                let n = data.len().min(usize::try_from(*rest).unwrap_or(usize::MAX));
                *rest -= n as u64;
                Ok((n, *rest == 0))
            }
            BodyState::Chunked(c) => {
                let n = c.feed(data)?;
                Ok((n, c.is_done()))
            }
        }
    }
}

/// An incremental parser of the chunked coding (RFC 9112 §7.1) that
/// throws the data away. Lines may end in CRLF or a bare LF, as curl reads
/// them; extensions and trailers are skipped.
#[derive(Debug, Default)]
struct Chunked {
    state: ChunkState,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line: the size so far, its hex digits, and
    /// whether the size has ended (whitespace or an extension follows).
    #[default]
    SizeStart,
    Size {
        size: u64,
        digits: u8,
        ended: bool,
    },
    /// Chunk data still to skip.
    Data(u64),
    /// The CRLF after a chunk's data; `cr` when the CR was seen.
    DataEnd {
        cr: bool,
    },
    /// Trailer lines after the last chunk; `empty` while the current line
    /// has no byte yet (an empty line ends the body).
    Trailer {
        empty: bool,
    },
    Done,
}

impl Chunked {
    fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Consumes bytes of `data` up to the end of the body; returns how many.
    fn feed(&mut self, data: &[u8]) -> Result<usize, BodyError> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            match &mut self.state {
                ChunkState::Done => return Ok(i),
                ChunkState::SizeStart => match hex(b) {
                    Some(d) => {
                        self.state = ChunkState::Size {
                            size: u64::from(d),
                            digits: 1,
                            ended: false,
                        }
                    }
                    None => return Err(BodyError::Malformed("a chunk without a size")),
                },
                ChunkState::Size {
                    size,
                    digits,
                    ended,
                } => match (b, hex(b)) {
                    (b'\n', _) => {
                        self.state = match *size {
                            0 => ChunkState::Trailer { empty: true },
                            n => ChunkState::Data(n),
                        }
                    }
                    (_, Some(d)) if !*ended => {
                        // 15 hex digits: sizes below 2^60, far past any cap.
                        if *digits >= 15 {
                            return Err(BodyError::Malformed("a chunk size too large"));
                        }
                        *size = *size << 4 | u64::from(d);
                        *digits += 1;
                    }
                    (b';' | b' ' | b'\t' | b'\r', _) => *ended = true,
                    // Inside an extension, anything up to the line's end.
                    _ if *ended => {}
                    _ => return Err(BodyError::Malformed("an invalid chunk size")),
                },
                ChunkState::Data(rest) => {
                    let n = (data.len() - i).min(usize::try_from(*rest).unwrap_or(usize::MAX));
                    *rest -= n as u64;
                    i += n;
                    if *rest == 0 {
                        self.state = ChunkState::DataEnd { cr: false };
                    }
                    continue;
                }
                ChunkState::DataEnd { cr } => match b {
                    b'\r' if !*cr => *cr = true,
                    b'\n' => self.state = ChunkState::SizeStart,
                    _ => return Err(BodyError::Malformed("no line end after a chunk's data")),
                },
                ChunkState::Trailer { empty } => match b {
                    b'\n' if *empty => self.state = ChunkState::Done,
                    b'\n' => *empty = true,
                    b'\r' => {}
                    _ => *empty = false,
                },
            }
            i += 1;
        }
        Ok(i)
    }
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> Proxy {
        Proxy::new("http://127.0.0.1:3128").unwrap()
    }

    #[test]
    fn request_bytes() {
        let target: Authority = "example.com:443".parse().unwrap();
        let req = encode_request(&target, &proxy(), None);
        assert_eq!(
            req,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
    }

    #[test]
    fn request_bytes_with_auth_and_headers() {
        let target: Authority = "[::1]:8443".parse().unwrap();
        let p = Proxy::new("http://Aladdin:open%20sesame@127.0.0.1:3128")
            .unwrap()
            .with_header(
                HeaderName::from_static("x-trace"),
                HeaderValue::from_static("1"),
            );
        let req = String::from_utf8(encode_request(&target, &p, None)).unwrap();
        assert_eq!(
            req,
            "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\
             proxy-authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\
             x-trace: 1\r\n\r\n"
        );
    }

    #[test]
    fn established_with_trailing_bytes() {
        let buf = b"HTTP/1.1 200 Connection established\r\n\r\nHELLO";
        match parse_reply(buf).unwrap() {
            Some(Reply::Established(n, _)) => assert_eq!(&buf[n..], b"HELLO"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_split_point_is_partial_until_complete() {
        let buf = b"HTTP/1.1 200 OK\r\nVia: 1.1 squid\r\n\r\n";
        for cut in 0..buf.len() {
            assert!(parse_reply(&buf[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        assert!(matches!(
            parse_reply(buf).unwrap(),
            Some(Reply::Established(n, _)) if n == buf.len()
        ));
    }

    #[test]
    fn content_length_on_2xx_is_ignored() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        assert!(matches!(
            parse_reply(buf).unwrap(),
            Some(Reply::Established(n, _)) if n == buf.len()
        ));
    }

    #[test]
    fn interim_then_final() {
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let Some(Reply::Interim(n)) = parse_reply(buf).unwrap() else {
            panic!("expected interim")
        };
        assert!(matches!(
            parse_reply(&buf[n..]).unwrap(),
            Some(Reply::Established(..))
        ));
    }

    #[test]
    fn refusal_keeps_status_reason_headers() {
        let buf = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
            Proxy-Authenticate: Basic realm=\"corp\"\r\n\
            Proxy-Authenticate: Digest realm=\"corp\", nonce=\"abc\"\r\n\r\n<html>";
        let Some(Reply::Refused(_, r)) = parse_reply(buf).unwrap() else {
            panic!("expected refusal")
        };
        assert_eq!(r.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
        assert_eq!(r.reason(), Some("Proxy Authentication Required"));
        let challenges: Vec<_> = r.challenges().collect();
        assert_eq!(
            challenges,
            [
                "Basic realm=\"corp\"",
                "Digest realm=\"corp\", nonce=\"abc\""
            ]
        );
    }

    #[test]
    fn http10_accepted_and_101_is_final() {
        assert!(matches!(
            parse_reply(b"HTTP/1.0 200 OK\r\n\r\n").unwrap(),
            Some(Reply::Established(..))
        ));
        assert!(matches!(
            parse_reply(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap(),
            Some(Reply::Refused(_, r)) if r.status() == StatusCode::SWITCHING_PROTOCOLS
        ));
    }

    #[test]
    fn bare_lf_is_accepted() {
        // Lenient like curl and httparse: a bare LF ends a line.
        let buf = b"HTTP/1.1 200 OK\nVia: test\n\nX";
        assert!(matches!(
            parse_reply(buf).unwrap(),
            Some(Reply::Established(n, _)) if &buf[n..] == b"X"
        ));
    }

    #[test]
    fn garbage_tls_and_versions() {
        assert_eq!(
            parse_reply(b"SSH-2.0-OpenSSH_9.6\r\n").unwrap_err(),
            ParseError::Malformed("not an HTTP response")
        );
        assert_eq!(
            parse_reply(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]).unwrap_err(),
            ParseError::TlsRecord
        );
        assert_eq!(
            parse_reply(b"HTTP/9.9 200 OK\r\n\r\n").unwrap_err(),
            ParseError::BadVersion
        );
    }

    #[test]
    fn too_many_headers() {
        let mut buf = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            buf.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(parse_reply(&buf).unwrap_err(), ParseError::TooManyHeaders);
    }

    // --- the body of a refusal ------------------------------------------------------

    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_util::FutureExt as _;

    /// A stream that is always ready: each read returns (part of) the next
    /// chunk, then end of stream; an `Err` chunk fails that read.
    struct Scripted {
        chunks: VecDeque<Result<Vec<u8>, std::io::ErrorKind>>,
        reads: usize,
    }

    impl Scripted {
        fn new(chunks: &[&[u8]]) -> Self {
            Scripted {
                chunks: chunks.iter().map(|c| Ok(c.to_vec())).collect(),
                reads: 0,
            }
        }
    }

    impl hyper::rt::Read for Scripted {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            mut buf: hyper::rt::ReadBufCursor<'_>,
        ) -> Poll<std::io::Result<()>> {
            let this = self.get_mut();
            this.reads += 1;
            match this.chunks.front_mut() {
                Some(Ok(chunk)) => {
                    let n = chunk.len().min(buf.remaining());
                    buf.put_slice(&chunk[..n]);
                    chunk.drain(..n);
                    if chunk.is_empty() {
                        this.chunks.pop_front();
                    }
                }
                Some(Err(kind)) => {
                    let kind = *kind;
                    this.chunks.pop_front();
                    return Poll::Ready(Err(kind.into()));
                }
                None => {}
            }
            Poll::Ready(Ok(()))
        }
    }

    impl hyper::rt::Write for Scripted {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn refusal_keeps_the_bytes_after_its_head() {
        let mut io = Scripted::new(&[
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 407 Proxy Authentication Required\r\n",
            b"Proxy-Authenticate: NTLM\r\nContent-Length: 4\r\n\r\nab",
            b"cd",
        ]);
        let request = b"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n".to_vec();
        let Answer::Refused(r) = exchange_answer(&mut io, &request, 16384)
            .now_or_never()
            .unwrap()
            .unwrap()
        else {
            panic!("expected a refusal")
        };
        assert_eq!(&r.buf[r.pos..], b"ab");
        let d = read_refusal_body(&mut io, &r.response, &r.buf[r.pos..], MAX_REFUSAL_BODY)
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!((d.read, d.leftover.len()), (4, 0));
        assert!(io.chunks.is_empty());
        let err = r.into_error();
        assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired);
        assert_eq!(
            err.status(),
            Some(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
        );
    }

    /// The refusal whose head is `head` (status line and headers, no
    /// blank line).
    fn refusal(head: &str) -> ProxyResponse {
        let text = format!("{head}\r\n\r\n");
        match parse_reply(text.as_bytes()).unwrap() {
            Some(Reply::Refused(n, r)) => {
                assert_eq!(n, text.len());
                r
            }
            other => panic!("{other:?}"),
        }
    }

    fn drain(head: &str, buffered: &[u8], reads: &[&[u8]]) -> Result<Drained, BodyError> {
        drain_max(head, buffered, reads, MAX_REFUSAL_BODY)
    }

    fn drain_max(
        head: &str,
        buffered: &[u8],
        reads: &[&[u8]],
        max: usize,
    ) -> Result<Drained, BodyError> {
        let mut io = Scripted::new(reads);
        read_refusal_body(&mut io, &refusal(head), buffered, max)
            .now_or_never()
            .expect("every read is ready")
    }

    const NTLM_407: &str = "HTTP/1.1 407 Proxy Authentication Required\r\n\
        Proxy-Authenticate: NTLM TlRMTVNTUAACAAAA";

    #[test]
    fn content_length_buffered_split_and_leftover() {
        let head = format!("{NTLM_407}\r\nContent-Length: 10");
        let d = drain(&head, b"0123456789", &[]).unwrap();
        assert_eq!(
            (d.read, d.leftover.as_slice(), d.close),
            (10, &b""[..], false)
        );
        let d = drain(&head, b"0123", &[b"45", b"6789"]).unwrap();
        assert_eq!((d.read, d.leftover.len()), (10, 0));
        // Bytes past the end are handed back, never dropped.
        let d = drain(&head, b"0123456789HTTP", &[]).unwrap();
        assert_eq!(d.leftover, b"HTTP");
        // A known length is read exactly: the next read is not touched.
        let mut io = Scripted::new(&[b"456789", b"NEXT"]);
        let d = read_refusal_body(&mut io, &refusal(&head), b"0123", MAX_REFUSAL_BODY)
            .now_or_never()
            .unwrap()
            .unwrap();
        assert!(d.leftover.is_empty());
        assert_eq!(io.chunks.len(), 1);
    }

    #[test]
    fn no_body() {
        for head in [
            format!("{NTLM_407}\r\nContent-Length: 0"),
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 99".to_owned(),
        ] {
            let d = drain(&head, b"", &[b"never read"]).unwrap();
            assert_eq!(d.read, 0, "{head}");
        }
    }

    const CHUNKED_BODY: &[u8] = b"1a;name=\"v\"\r\n<html>access denied</html>\r\n\
        5\r\n12345\r\nA \r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n";

    #[test]
    fn chunked_at_every_split() {
        let head = format!("{NTLM_407}\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive");
        for cut in 0..=CHUNKED_BODY.len() {
            let (buffered, rest) = CHUNKED_BODY.split_at(cut);
            let reads: Vec<&[u8]> = rest.chunks(3).collect();
            let d = drain(&head, buffered, &reads).unwrap();
            assert_eq!(d.read, CHUNKED_BODY.len(), "cut at {cut}");
            assert!(d.leftover.is_empty() && !d.close);
        }
        let mut more = CHUNKED_BODY.to_vec();
        more.extend_from_slice(b"EXTRA");
        assert_eq!(drain(&head, &more, &[]).unwrap().leftover, b"EXTRA");
    }

    #[test]
    fn chunked_lenient_forms() {
        let head = format!("{NTLM_407}\r\nTransfer-Encoding: gzip, Chunked");
        // Bare LF line ends, uppercase hex, no trailer.
        let body = b"A\n0123456789\n0\n\n";
        assert_eq!(drain(&head, body, &[]).unwrap().read, body.len());
        // Transfer-Encoding split over two headers: chunked is the last.
        let head = format!("{NTLM_407}\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked");
        assert_eq!(drain(&head, b"0\r\n\r\n", &[]).unwrap().read, 5);
    }

    #[test]
    fn chunked_malformed() {
        let head = format!("{NTLM_407}\r\nTransfer-Encoding: chunked");
        for (body, why) in [
            (&b"\r\n"[..], "a chunk without a size"),
            (b"zz\r\n", "a chunk without a size"),
            (b"1x\r\n", "an invalid chunk size"),
            (b"1\r\nab\r\n", "no line end after a chunk's data"),
            (b"1000000000000000\r\n", "a chunk size too large"),
        ] {
            match drain(&head, body, &[]) {
                Err(BodyError::Malformed(what)) => assert_eq!(what, why, "{body:?}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn caps() {
        let head = format!("{NTLM_407}\r\nContent-Length: 65537");
        assert!(matches!(
            drain(&head, b"", &[]),
            Err(BodyError::TooLarge(65536))
        ));
        let head = format!("{NTLM_407}\r\nContent-Length: 100");
        assert!(matches!(
            drain_max(&head, b"", &[&[b'x'; 100]], 99),
            Err(BodyError::TooLarge(99))
        ));
        assert!(drain_max(&head, b"", &[&[b'x'; 100]], 100).is_ok());
        // An endless chunked body stops at the cap, read by read.
        let head = format!("{NTLM_407}\r\nTransfer-Encoding: chunked");
        let chunk = b"ffff\r\n"
            .iter()
            .chain([b'x'; 4096].iter())
            .copied()
            .collect::<Vec<_>>();
        let reads: Vec<&[u8]> = std::iter::repeat_n(chunk.as_slice(), 100).collect();
        let mut io = Scripted::new(&reads);
        let r = read_refusal_body(&mut io, &refusal(&head), b"", 10_000)
            .now_or_never()
            .unwrap();
        assert!(matches!(r, Err(BodyError::TooLarge(10_000))), "{r:?}");
        assert!(io.reads <= 4, "{} reads", io.reads);
    }

    #[test]
    fn framing_rules() {
        let f = |extra: &str| framing(&refusal(&format!("{NTLM_407}{extra}")));
        assert_eq!(f("").unwrap(), Framing::UntilClose);
        assert_eq!(f("\r\nContent-Length: 5, 5").unwrap(), Framing::Length(5));
        assert_eq!(
            f("\r\nContent-Length: 5\r\nContent-Length: 5").unwrap(),
            Framing::Length(5)
        );
        assert_eq!(
            f("\r\nTransfer-Encoding: gzip").unwrap(),
            Framing::UntilClose
        );
        for bad in [
            "\r\nContent-Length: 5, 6",
            "\r\nContent-Length: -1",
            "\r\nContent-Length: +5",
            "\r\nContent-Length: ",
            "\r\nContent-Length: 99999999999999999999999",
            "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
        ] {
            assert!(matches!(f(bad), Err(BodyError::Malformed(_))), "{bad:?}");
        }
        assert!(matches!(
            drain(NTLM_407, b"abc", &[]),
            Err(BodyError::NotDelimited)
        ));
    }

    #[test]
    fn close_is_reported() {
        for (extra, close) in [
            ("\r\nConnection: close", true),
            ("\r\nConnection: keep-alive, Close", true),
            ("\r\nProxy-Connection: close", true),
            ("\r\nConnection: keep-alive", false),
            ("", false),
        ] {
            let head = format!("{NTLM_407}\r\nContent-Length: 1{extra}");
            assert_eq!(drain(&head, b"x", &[]).unwrap().close, close, "{extra:?}");
        }
    }

    #[test]
    fn early_end_and_io_errors() {
        let head = format!("{NTLM_407}\r\nContent-Length: 10");
        assert!(matches!(
            drain(&head, b"0123", &[b"45"]),
            Err(BodyError::Truncated)
        ));
        let mut io = Scripted::new(&[b"45"]);
        io.chunks
            .push_back(Err(std::io::ErrorKind::ConnectionReset));
        let r = read_refusal_body(&mut io, &refusal(&head), b"", MAX_REFUSAL_BODY)
            .now_or_never()
            .unwrap();
        let err = r.unwrap_err();
        assert!(matches!(err, BodyError::Io(_)));
        let err = err.into_error();
        assert_eq!(err.kind(), ErrorKind::ProxyTruncated);
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(
            BodyError::TooLarge(65536).into_error().kind(),
            ErrorKind::ProxyHeadersTooLarge
        );
        assert_eq!(
            BodyError::NotDelimited.into_error().kind(),
            ErrorKind::ProxyMalformed
        );
        assert_eq!(
            BodyError::Truncated.into_error().kind(),
            ErrorKind::ProxyTruncated
        );
    }

    proptest::proptest! {
        /// Any bytes as a chunked body, split anywhere: no panic, and a
        /// body that ends never claims more than it was given.
        #[test]
        fn proptest_chunked_any_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            cut in 0usize..200,
        ) {
            let cut = cut.min(bytes.len());
            let head = format!("{NTLM_407}\r\nTransfer-Encoding: chunked");
            if let Ok(d) = drain(&head, &bytes[..cut], &[&bytes[cut..]]) {
                proptest::prop_assert!(d.read + d.leftover.len() <= bytes.len());
            }
        }
    }
}

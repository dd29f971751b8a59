//! The HTTP/1.1 `CONNECT` exchange: the request bytes and a bounded,
//! incremental parser for the proxy's answer.

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
    // Sized for the proxy's answer too: `exchange` reads it into this
    // buffer, so a typical CONNECT costs one allocation.
    let mut req = Vec::with_capacity(READ_BUFFER);
    // RFC 9110 §9.3.6: the request-target of CONNECT is authority-form, and
    // `Host` carries the same authority.
    for part in [
        "CONNECT ",
        target.as_str(),
        " HTTP/1.1\r\nHost: ",
        target.as_str(),
        "\r\n",
    ] {
        req.extend_from_slice(part.as_bytes());
    }
    if let Some(auth) = authorization.or(proxy.authorization()) {
        push_header(&mut req, &http::header::PROXY_AUTHORIZATION, auth);
    }
    for (name, value) in proxy.headers() {
        push_header(&mut req, name, value);
    }
    req.extend_from_slice(b"\r\n");
    req
}

fn push_header(req: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    req.extend_from_slice(name.as_str().as_bytes());
    req.extend_from_slice(b": ");
    req.extend_from_slice(value.as_bytes());
    req.extend_from_slice(b"\r\n");
}

/// What one complete response head in the buffer says.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A 1xx interim response of `len` bytes, to skip.
    Interim(usize),
    /// A 2xx: the tunnel is open after `len` bytes of head.
    Established(usize, ProxyResponse),
    /// Anything else.
    Refused(ProxyResponse),
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
    Ok(Some(Reply::Refused(ProxyResponse::new(
        status, reason, map,
    ))))
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

/// The tunnel is open; `buf[pos..]` are tunnel bytes that arrived with the
/// answer.
pub(crate) struct Established {
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
    pub(crate) response: ProxyResponse,
}

/// Sends `request` and reads the answer, reading at most `max_head` bytes
/// of response head (interim responses included).
pub(crate) async fn exchange<T>(
    io: &mut T,
    request: Vec<u8>,
    max_head: usize,
) -> Result<Established, Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    let fail = |kind: ErrorKind| Error::new(kind, Some(Phase::ProxyConnect));
    // A proxy that closes on us may do it with a reset (it had unread input), so a
    // reset says "closed" as much as an end of stream does: before any answer byte it
    // is `ProxyClosed`, in the middle of one `ProxyTruncated`; the io::Error stays the
    // source.
    let io_fail = |e: std::io::Error, received: usize| {
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
        fail(kind).with_source(e)
    };
    let mut io = TokioIo::new(io);
    io.write_all(&request).await.map_err(|e| io_fail(e, 0))?;
    io.flush().await.map_err(|e| io_fail(e, 0))?;

    let started = Instant::now();
    // The request's allocation becomes the answer's buffer.
    let mut buf = request;
    buf.clear();
    let mut pos = 0; // start of the response head being parsed
    let mut received = 0usize; // head bytes seen, interim responses included
    loop {
        match parse_reply(&buf[pos..]) {
            Ok(Some(Reply::Established(len, response))) => {
                tracing::trace!(elapsed = ?started.elapsed(), "proxy opened the tunnel");
                return Ok(Established {
                    buf,
                    pos: pos + len,
                    response,
                });
            }
            Ok(Some(Reply::Interim(len))) => {
                pos += len;
                continue;
            }
            Ok(Some(Reply::Refused(response))) => {
                let kind = if response.status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
                    ErrorKind::ProxyAuthRequired
                } else {
                    ErrorKind::ProxyRefused
                };
                return Err(fail(kind).with_response(response));
            }
            Ok(None) => {}
            Err(ParseError::TooManyHeaders) => {
                return Err(fail(ErrorKind::ProxyHeadersTooLarge)
                    .with_detail(format!("more than {MAX_HEADERS} headers")))
            }
            Err(ParseError::BadVersion) => {
                return Err(fail(ErrorKind::ProxyBadVersion).with_detail(version_seen(&buf[pos..])))
            }
            Err(ParseError::TlsRecord) => {
                return Err(fail(ErrorKind::ProxyMalformed)
                    .with_detail("it sent a TLS record, not HTTP: is it an https:// proxy?"))
            }
            Err(ParseError::Malformed(what)) => {
                return Err(fail(ErrorKind::ProxyMalformed).with_detail(what))
            }
        }
        if received >= max_head {
            return Err(fail(ErrorKind::ProxyHeadersTooLarge)
                .with_detail(format!("more than {max_head} bytes of headers")));
        }
        // Read no further than the cap allows: an endless answer stops here
        // and memory stays bounded by `max_head`.
        let start = buf.len();
        if buf.capacity() - start < READ_BUFFER / 2 {
            buf.reserve(READ_BUFFER.max(start));
        }
        let want = (max_head - received).min(buf.capacity() - start);
        buf.resize(start + want, 0);
        let n = match io.read(&mut buf[start..]).await {
            Ok(n) => n,
            Err(e) => return Err(io_fail(e, received)),
        };
        buf.truncate(start + n);
        if n == 0 {
            return Err(fail(if received == 0 {
                ErrorKind::ProxyClosed
            } else {
                ErrorKind::ProxyTruncated
            }));
        }
        received += n;
    }
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
        let Some(Reply::Refused(r)) = parse_reply(buf).unwrap() else {
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
            Some(Reply::Refused(r)) if r.status() == StatusCode::SWITCHING_PROTOCOLS
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
}

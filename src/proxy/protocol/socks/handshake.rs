//! The SOCKS5 and SOCKS4a handshakes over a stream: send each message,
//! read each reply with no byte past its end.

use std::io;
use std::net::SocketAddr;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::codec::*;

/// Resolves `host` locally for `socks5://`, taking the first address the
/// system returns (its own preference order, as curl does).
pub(crate) async fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "name resolved to no address"))
}

/// Resolves `host` locally for `socks4://`: the first IPv4 address the
/// system returns, since SOCKS4 carries no other.
pub(crate) async fn resolve_v4(host: &str, port: u16) -> Result<SocketAddr, SocksError> {
    let mut addrs = tokio::net::lookup_host((host, port)).await?.peekable();
    if addrs.peek().is_none() {
        return Err(SocksError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            "name resolved to no address",
        )));
    }
    addrs
        .find(SocketAddr::is_ipv4)
        .ok_or(SocksError::NoIpv4Address)
}

/// SOCKS5 CONNECT to `target` over `io`, authenticating with `auth` when
/// the proxy asks for it. On success the stream is a tunnel to the target
/// and nothing after the reply has been read.
///
/// `pipelined` sends the greeting, the RFC 1929 sub-negotiation (with
/// credentials) and the request in one write, offering the one method the
/// messages after it assume, then reads the replies in order: one round
/// trip instead of two or three, for servers that read their input as a
/// stream (not every server does).
pub(crate) async fn socks5_handshake<T>(
    io: &mut T,
    target: TargetAddr,
    auth: Option<(&str, &str)>,
    pipelined: bool,
) -> Result<(), SocksError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    let deferred = socks5_start(io, &target, auth, pipelined).await?;
    deferred.finish(io).await?;
    tracing::trace!(%target, pipelined, "SOCKS5 proxy opened the tunnel");
    Ok(())
}

/// The SOCKS5 handshake up to its last message, which is returned unsent
/// with the replies it will get: the greeting and authentication are done,
/// unless `pipelined`, where everything is left to send in one write.
pub(crate) async fn socks5_start<T>(
    io: &mut T,
    target: &TargetAddr,
    auth: Option<(&str, &str)>,
    pipelined: bool,
) -> Result<Deferred, SocksError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    // Encode everything first: an unsendable name or credential fails
    // before a byte goes to the proxy.
    let connect = encode_connect(target)?;
    let user_pass = auth.map(|(u, p)| encode_user_pass(u, p)).transpose()?;

    if pipelined {
        let mut msg = encode_single_method_greeting(user_pass.is_some());
        if let Some(user_pass) = &user_pass {
            msg.extend_from_slice(user_pass);
        }
        msg.extend_from_slice(&connect);
        let mut replies = vec![Reply::Method {
            user_pass: user_pass.is_some(),
        }];
        if user_pass.is_some() {
            replies.push(Reply::AuthStatus);
        }
        replies.push(Reply::Socks5);
        return Ok(Deferred {
            request: msg,
            replies,
        });
    }
    let mut io = TokioIo::new(io);
    let mut buf = [0u8; MAX_REPLY];
    send(&mut io, &encode_greeting(user_pass.is_some())).await?;
    let method = read_reply(&mut io, &mut buf, |b| parse_method(b, user_pass.is_some())).await?;
    if method == Method::UserPass {
        if let Some(msg) = &user_pass {
            send(&mut io, msg).await?;
            read_reply(&mut io, &mut buf, parse_auth_status).await?;
        }
    }
    Ok(Deferred {
        request: connect,
        replies: vec![Reply::Socks5],
    })
}

/// SOCKS4 CONNECT to `target` (SOCKS4a when it is a domain), with
/// `user_id` as the USERID field (empty when `None`).
pub(crate) async fn socks4a_handshake<T>(
    io: &mut T,
    target: TargetAddr,
    user_id: Option<&str>,
) -> Result<(), SocksError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    socks4a_start(&target, user_id)?.finish(io).await?;
    tracing::trace!(%target, "SOCKS4 proxy opened the tunnel");
    Ok(())
}

/// The SOCKS4 request, unsent, and the reply it will get.
pub(crate) fn socks4a_start(
    target: &TargetAddr,
    user_id: Option<&str>,
) -> Result<Deferred, SocksError> {
    Ok(Deferred {
        request: encode_socks4a_connect(target, user_id.unwrap_or(""))?,
        replies: vec![Reply::Socks4],
    })
}

/// What is left of a handshake: the bytes to send, and the replies they
/// get, in order. Sent and read here ([`Deferred::finish`]), or with the
/// first bytes of the tunnel (optimistic data).
pub(crate) struct Deferred {
    pub(crate) request: Vec<u8>,
    pub(crate) replies: Vec<Reply>,
}

impl Deferred {
    /// Sends the request and reads its replies, no byte past the last.
    pub(crate) async fn finish<T>(self, io: &mut T) -> Result<(), SocksError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin,
    {
        let mut io = TokioIo::new(io);
        let mut buf = [0u8; MAX_REPLY];
        send(&mut io, &self.request).await?;
        for reply in self.replies {
            read_reply(&mut io, &mut buf, |b| reply.parse(b)).await?;
        }
        Ok(())
    }
}

/// A reply a SOCKS client waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The method chosen for a greeting that offered one method:
    /// username/password when `user_pass`, else none.
    Method { user_pass: bool },
    /// The RFC 1929 status.
    AuthStatus,
    /// The SOCKS5 reply to CONNECT.
    Socks5,
    /// The SOCKS4 reply.
    Socks4,
}

impl Reply {
    /// Parses this reply from the start of `buf`.
    pub(crate) fn parse(self, buf: &[u8]) -> Result<Parsed<()>, SocksError> {
        Ok(match self {
            Reply::Method { user_pass } => match parse_method(buf, user_pass)? {
                // Only one method was offered: anything else breaks the
                // messages already sent after the greeting.
                Parsed::Complete(Method::None, _) if user_pass => {
                    return Err(SocksError::Malformed(Malformed::UnofferedMethod(0x00)))
                }
                Parsed::Complete(_, n) => Parsed::Complete((), n),
                Parsed::Incomplete { needed } => Parsed::Incomplete { needed },
            },
            Reply::AuthStatus => parse_auth_status(buf)?,
            Reply::Socks5 => match parse_socks5_reply(buf)? {
                Parsed::Complete(bound, n) => {
                    tracing::trace!(?bound, "SOCKS5 reply");
                    Parsed::Complete((), n)
                }
                Parsed::Incomplete { needed } => Parsed::Incomplete { needed },
            },
            Reply::Socks4 => match parse_socks4_reply(buf)? {
                Parsed::Complete(bound, n) => {
                    tracing::trace!(?bound, "SOCKS4 reply");
                    Parsed::Complete((), n)
                }
                Parsed::Incomplete { needed } => Parsed::Incomplete { needed },
            },
        })
    }
}

async fn send<T>(io: &mut TokioIo<T>, msg: &[u8]) -> Result<(), SocksError>
where
    T: hyper::rt::Write + Unpin,
{
    let sent = async {
        io.write_all(msg).await?;
        io.flush().await
    };
    sent.await.map_err(|e| closed_or_io(e, 0))
}

/// A read or write error: a reset, abort, broken pipe or early end of stream
/// says the proxy closed the connection (one with unread input sends a reset,
/// not a FIN), after `received` bytes of the reply awaited.
pub(crate) fn closed_or_io(source: io::Error, received: usize) -> SocksError {
    match source.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => SocksError::Reset { received, source },
        _ => SocksError::Io(source),
    }
}

/// Reads one reply into `buf`, asking the stream for no more than the
/// parser says the reply still needs.
async fn read_reply<T, R>(
    io: &mut TokioIo<T>,
    buf: &mut [u8],
    parse: impl Fn(&[u8]) -> Result<Parsed<R>, SocksError>,
) -> Result<R, SocksError>
where
    T: hyper::rt::Read + Unpin,
{
    let mut filled = 0;
    loop {
        let needed = match parse(&buf[..filled])? {
            Parsed::Complete(reply, _) => return Ok(reply),
            Parsed::Incomplete { needed } => needed,
        };
        // `needed > filled` for every parser; the `max` keeps a wrong bound
        // from turning into a zero-length read that looks like EOF.
        let end = needed.max(filled + 1).min(buf.len());
        if end <= filled {
            // Unreachable with the parsers above: a reply fits in `buf`.
            return Err(SocksError::Closed { received: filled });
        }
        let n = io
            .read(&mut buf[filled..end])
            .await
            .map_err(|e| closed_or_io(e, filled))?;
        if n == 0 {
            return Err(SocksError::Closed { received: filled });
        }
        filled += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    // ---- handshakes over loopback sockets ----

    enum Step {
        /// Read exactly these bytes from the client.
        Expect(&'static [u8]),
        Send(&'static [u8]),
        /// Close the connection now.
        Close,
    }

    /// A SOCKS proxy that follows `steps`, asserting the client's exact
    /// bytes, then reports whether the client sent anything more.
    async fn scripted(steps: Vec<Step>) -> (SocketAddr, JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for step in steps {
                match step {
                    Step::Expect(want) => {
                        let mut got = vec![0; want.len()];
                        s.read_exact(&mut got).await.unwrap();
                        assert_eq!(got, want, "client sent {got:02x?}, expected {want:02x?}");
                    }
                    Step::Send(bytes) => s.write_all(bytes).await.unwrap(),
                    Step::Close => return Vec::new(),
                }
            }
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
            rest
        });
        (addr, task)
    }

    async fn dial(addr: SocketAddr) -> TokioIo<TcpStream> {
        TokioIo::new(TcpStream::connect(addr).await.unwrap())
    }

    const CONNECT_EXAMPLE: &[u8] = b"\x05\x01\x00\x03\x0bexample.com\x01\xbb";
    const OK_V4: &[u8] = &[5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38];

    #[tokio::test]
    async fn socks5_no_auth_success() {
        let (addr, server) = scripted(vec![
            Step::Expect(&[5, 1, 0]),
            Step::Send(&[5, 0]),
            Step::Expect(CONNECT_EXAMPLE),
            Step::Send(OK_V4),
        ])
        .await;
        let mut io = dial(addr).await;
        socks5_handshake(&mut io, domain("example.com", 443), None, false)
            .await
            .unwrap();
        drop(io);
        assert!(server.await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn socks5_every_failure_code() {
        let replies: [&'static [u8]; 9] = [
            &[5, 1, 0, 1, 0, 0, 0, 0, 0, 0],
            &[5, 2, 0, 1, 0, 0, 0, 0, 0, 0],
            &[5, 3, 0, 1, 0, 0, 0, 0, 0, 0],
            &[5, 4, 0, 1, 0, 0, 0, 0, 0, 0],
            &[5, 5, 0, 1, 0, 0, 0, 0, 0, 0],
            &[5, 6, 0, 1, 0, 0, 0, 0, 0, 0],
            &[5, 7, 0, 1, 0, 0, 0, 0, 0, 0],
            &[5, 8, 0, 1, 0, 0, 0, 0, 0, 0],
            // Short failure, connection left open: must not hang.
            &[5, 0x7f],
        ];
        for reply in replies {
            let (addr, server) = scripted(vec![
                Step::Expect(&[5, 1, 0]),
                Step::Send(&[5, 0]),
                Step::Expect(CONNECT_EXAMPLE),
                Step::Send(reply),
            ])
            .await;
            let mut io = dial(addr).await;
            let err = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                socks5_handshake(&mut io, domain("example.com", 443), None, false),
            )
            .await
            .expect("handshake hung")
            .unwrap_err();
            assert_eq!(err.reply_code(), Some(reply[1]), "{err}");
            drop(io);
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn socks5_auth_then_success() {
        let (addr, server) = scripted(vec![
            Step::Expect(&[5, 2, 0, 2]),
            Step::Send(&[5, 2]),
            Step::Expect(b"\x01\x05alice\x06s3cr3t"),
            Step::Send(&[1, 0]),
            Step::Expect(&[5, 1, 0, 1, 10, 9, 8, 7, 0, 80]),
            Step::Send(OK_V4),
        ])
        .await;
        let mut io = dial(addr).await;
        socks5_handshake(
            &mut io,
            v4([10, 9, 8, 7], 80),
            Some(("alice", "s3cr3t")),
            false,
        )
        .await
        .unwrap();
        drop(io);
        assert!(server.await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn socks5_pipelined_sends_everything_in_one_write() {
        // No credentials: greeting offering "no authentication" alone, then
        // the request, before any reply.
        let mut pipelined = vec![5, 1, 0];
        pipelined.extend_from_slice(CONNECT_EXAMPLE);
        let pipelined: &'static [u8] = Box::leak(pipelined.into_boxed_slice());
        let (addr, server) = scripted(vec![
            Step::Expect(pipelined),
            Step::Send(&[5, 0]),
            Step::Send(OK_V4),
        ])
        .await;
        let mut io = dial(addr).await;
        socks5_handshake(&mut io, domain("example.com", 443), None, true)
            .await
            .unwrap();
        drop(io);
        assert!(server.await.unwrap().is_empty());

        // Credentials: username/password alone, the RFC 1929 message, then
        // the request.
        let mut pipelined = vec![5, 1, 2];
        pipelined.extend_from_slice(b"\x01\x05alice\x06s3cr3t");
        pipelined.extend_from_slice(CONNECT_EXAMPLE);
        let pipelined: &'static [u8] = Box::leak(pipelined.into_boxed_slice());
        let (addr, server) = scripted(vec![
            Step::Expect(pipelined),
            Step::Send(&[5, 2]),
            Step::Send(&[1, 0]),
            Step::Send(OK_V4),
        ])
        .await;
        let mut io = dial(addr).await;
        socks5_handshake(
            &mut io,
            domain("example.com", 443),
            Some(("alice", "s3cr3t")),
            true,
        )
        .await
        .unwrap();
        drop(io);
        assert!(server.await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn socks5_pipelined_refuses_a_method_that_breaks_what_was_sent() {
        // Credentials were pipelined; a proxy choosing "no authentication"
        // would read them as the request.
        let (addr, _server) = scripted(vec![Step::Expect(&[5, 1, 2]), Step::Send(&[5, 0])]).await;
        let mut io = dial(addr).await;
        let err = socks5_handshake(&mut io, domain("example.com", 443), Some(("a", "b")), true)
            .await
            .unwrap_err();
        assert!(
            matches!(err, SocksError::Malformed(Malformed::UnofferedMethod(0))),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn socks5_credentials_offered_but_not_needed() {
        let (addr, server) = scripted(vec![
            Step::Expect(&[5, 2, 0, 2]),
            Step::Send(&[5, 0]),
            Step::Expect(CONNECT_EXAMPLE),
            Step::Send(OK_V4),
        ])
        .await;
        let mut io = dial(addr).await;
        socks5_handshake(&mut io, domain("example.com", 443), Some(("a", "b")), false)
            .await
            .unwrap();
        drop(io);
        assert!(server.await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn socks5_auth_failed() {
        let (addr, server) = scripted(vec![
            Step::Expect(&[5, 2, 0, 2]),
            Step::Send(&[5, 2]),
            Step::Expect(b"\x01\x05alice\x05wrong"),
            Step::Send(&[1, 1]),
        ])
        .await;
        let mut io = dial(addr).await;
        let err = socks5_handshake(
            &mut io,
            domain("example.com", 443),
            Some(("alice", "wrong")),
            false,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SocksError::AuthFailed(1)), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("wrong"));
        drop(io);
        // Nothing after the failed authentication: no CONNECT.
        assert!(server.await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn socks5_auth_required_without_credentials() {
        for (method, expected) in [(2u8, "AuthRequired"), (0xFF, "NoAcceptableMethods")] {
            let reply: &'static [u8] = if method == 2 { &[5, 2] } else { &[5, 0xFF] };
            let (addr, server) = scripted(vec![Step::Expect(&[5, 1, 0]), Step::Send(reply)]).await;
            let mut io = dial(addr).await;
            let err = socks5_handshake(&mut io, domain("example.com", 443), None, false)
                .await
                .unwrap_err();
            assert_eq!(format!("{err:?}"), expected);
            drop(io);
            assert!(server.await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn socks5_close_and_garbage() {
        let (addr, _server) = scripted(vec![Step::Expect(&[5, 1, 0]), Step::Close]).await;
        let mut io = dial(addr).await;
        let err = socks5_handshake(&mut io, domain("example.com", 443), None, false)
            .await
            .unwrap_err();
        assert!(matches!(err, SocksError::Closed { received: 0 }), "{err:?}");

        let (addr, _server) = scripted(vec![
            Step::Expect(&[5, 1, 0]),
            Step::Send(&[5, 0]),
            Step::Expect(CONNECT_EXAMPLE),
            Step::Send(&[5, 0, 0, 1, 127]),
            Step::Close,
        ])
        .await;
        let mut io = dial(addr).await;
        let err = socks5_handshake(&mut io, domain("example.com", 443), None, false)
            .await
            .unwrap_err();
        assert!(matches!(err, SocksError::Closed { received: 5 }), "{err:?}");

        // A partial reply on an open connection waits for the rest (the
        // phase timeout ends it), rather than guessing.
        let (addr, _server) = scripted(vec![
            Step::Expect(&[5, 1, 0]),
            Step::Send(&[5, 0]),
            Step::Expect(CONNECT_EXAMPLE),
            Step::Send(&[5, 0, 0, 1, 127]),
        ])
        .await;
        let mut io = dial(addr).await;
        let fut = socks5_handshake(&mut io, domain("example.com", 443), None, false);
        let res = tokio::time::timeout(std::time::Duration::from_millis(200), fut).await;
        assert!(res.is_err(), "returned {res:?}");

        // An HTTP proxy where a SOCKS one was expected.
        let (addr, _server) = scripted(vec![
            Step::Expect(&[5, 1, 0]),
            Step::Send(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        ])
        .await;
        let mut io = dial(addr).await;
        let err = socks5_handshake(&mut io, domain("example.com", 443), None, false)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "SOCKS proxy sent a malformed reply: version 0x48, expected 0x05"
        );
    }

    #[tokio::test]
    async fn unsendable_target_fails_before_any_byte() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut io = TokioIo::new(client);
        let err = socks5_handshake(&mut io, domain(&"a".repeat(256), 443), None, false)
            .await
            .unwrap_err();
        assert!(matches!(err, SocksError::InvalidDomain { len: 256 }));
        let err = socks5_handshake(
            &mut io,
            domain("ok", 1),
            Some((&"u".repeat(300), "p")),
            false,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SocksError::InvalidCredentials));
        let err = socks4a_handshake(&mut io, TargetAddr::Ip("[::1]:1".parse().unwrap()), None)
            .await
            .unwrap_err();
        assert!(matches!(err, SocksError::Socks4Ipv6(_)));
        drop(io);
        let mut sent = Vec::new();
        server.read_to_end(&mut sent).await.unwrap();
        assert!(sent.is_empty(), "sent {sent:02x?}");
    }

    #[tokio::test]
    async fn socks4a_success_and_rejection() {
        let (addr, server) = scripted(vec![
            Step::Expect(b"\x04\x01\x01\xbb\x00\x00\x00\x01bob\x00example.com\x00"),
            Step::Send(&[0, 0x5A, 0, 0, 0, 0, 0, 0]),
        ])
        .await;
        let mut io = dial(addr).await;
        socks4a_handshake(&mut io, domain("example.com", 443), Some("bob"))
            .await
            .unwrap();
        drop(io);
        assert!(server.await.unwrap().is_empty());

        for code in [0x5Bu8, 0x5C, 0x5D] {
            let reply: &'static [u8] = match code {
                0x5B => &[0, 0x5B, 0, 0, 0, 0, 0, 0],
                0x5C => &[0, 0x5C, 0, 0, 0, 0, 0, 0],
                _ => &[0, 0x5D, 0, 0, 0, 0, 0, 0],
            };
            let (addr, server) = scripted(vec![
                Step::Expect(&[4, 1, 0, 80, 10, 0, 0, 1, 0]),
                Step::Send(reply),
            ])
            .await;
            let mut io = dial(addr).await;
            let err = socks4a_handshake(&mut io, v4([10, 0, 0, 1], 80), None)
                .await
                .unwrap_err();
            assert_eq!(err.reply_code(), Some(code));
            drop(io);
            server.await.unwrap();
        }
    }

    /// A SOCKS5 proxy that really connects: it checks the request, dials
    /// `upstream` (whatever the requested name), replies, then relays.
    async fn relaying_socks5(
        upstream: SocketAddr,
        expect_request: &'static [u8],
        extra_after_reply: &'static [u8],
    ) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut greeting = [0; 3];
            s.read_exact(&mut greeting).await.unwrap();
            assert_eq!(greeting, [5, 1, 0]);
            s.write_all(&[5, 0]).await.unwrap();
            let mut req = vec![0; expect_request.len()];
            s.read_exact(&mut req).await.unwrap();
            assert_eq!(req, expect_request);
            let mut up = TcpStream::connect(upstream).await.unwrap();
            let bound = up.local_addr().unwrap();
            let SocketAddr::V4(bound) = bound else {
                panic!("IPv4 loopback expected")
            };
            let mut reply = vec![5, 0, 0, 1];
            reply.extend_from_slice(&bound.ip().octets());
            reply.extend_from_slice(&bound.port().to_be_bytes());
            // The reply and the target's first bytes in one write.
            reply.extend_from_slice(extra_after_reply);
            s.write_all(&reply).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
        });
        addr
    }

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
        addr
    }

    #[tokio::test]
    async fn end_to_end_through_relaying_proxy() {
        let echo = echo_server().await;
        let request: &'static [u8] = b"\x05\x01\x00\x03\x09localhost\x1f\x90";
        let proxy = relaying_socks5(echo, request, b"").await;
        let mut io = dial(proxy).await;
        socks5_handshake(&mut io, domain("localhost", 8080), None, false)
            .await
            .unwrap();
        let mut tunnel = TokioIo::new(io);
        tunnel.write_all(b"ping through socks").await.unwrap();
        let mut back = [0; 18];
        tunnel.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ping through socks");
    }

    #[tokio::test]
    async fn bytes_after_the_reply_stay_in_the_stream() {
        // A target that speaks first (an SMTP banner) whose bytes arrive
        // in the same segment as the proxy's reply.
        let echo = echo_server().await;
        let proxy = relaying_socks5(echo, CONNECT_EXAMPLE, b"220 banner\r\n").await;
        let mut io = dial(proxy).await;
        socks5_handshake(&mut io, domain("example.com", 443), None, false)
            .await
            .unwrap();
        let mut tunnel = TokioIo::new(io);
        let mut banner = [0; 12];
        tunnel.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"220 banner\r\n");
    }

    #[tokio::test]
    async fn socks4_resolves_to_ipv4_only() {
        let v4 = resolve_v4("127.0.0.1", 80).await.unwrap();
        assert_eq!(v4, SocketAddr::from(([127, 0, 0, 1], 80)));
        assert!(matches!(
            resolve_v4("::1", 80).await,
            Err(SocksError::NoIpv4Address)
        ));
    }

    #[tokio::test]
    async fn resolve_localhost_and_literals() {
        let a = resolve("127.0.0.1", 80).await.unwrap();
        assert_eq!(a, "127.0.0.1:80".parse::<SocketAddr>().unwrap());
        let l = resolve("localhost", 443).await.unwrap();
        assert!(l.ip().is_loopback() && l.port() == 443, "{l}");
        assert!(resolve("name.invalid", 1).await.is_err());
    }
}

//! SOCKS5 (RFC 1928) with username/password authentication (RFC 1929), and
//! SOCKS4a.
//!
//! The messages are built by pure encoders and the proxy's answers read by
//! pure parsers over `&[u8]`, which say how many bytes they still need. The
//! async handshakes read exactly that many: never a byte past the reply, so
//! a target that speaks first (SMTP, SSH) loses nothing, and a reply costs
//! at most [`MAX_REPLY`] bytes of buffer whatever the proxy sends.
//!
//! hyper-util's `SocksV5`/`SocksV4` connectors are not used: they dial the
//! proxy themselves (so they cannot run inside an HTTPS proxy's TLS, or
//! under this crate's phase timeouts), read up to 513 bytes at a time and
//! drop what follows the reply, and report reply codes without their value.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The longest SOCKS5 reply: VER REP RSV ATYP, a length-prefixed domain of
/// 255 bytes, and the port.
pub(crate) const MAX_REPLY: usize = 4 + 1 + 255 + 2;

/// The longest domain name either protocol can carry (RFC 1928 §5: one
/// length byte).
pub(crate) const MAX_DOMAIN: usize = 255;

const SOCKS5: u8 = 0x05;
const SOCKS4: u8 = 0x04;
const CMD_CONNECT: u8 = 0x01;
const METHOD_NONE: u8 = 0x00;
const METHOD_USER_PASS: u8 = 0x02;
const METHOD_NO_ACCEPTABLE: u8 = 0xFF;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;
// RFC 1929 §2: the version of the username/password subnegotiation.
const USER_PASS_VERSION: u8 = 0x01;

/// Where the proxy is asked to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TargetAddr {
    /// A name the proxy resolves (`socks5h://`, `socks4a://`).
    Domain(String, u16),
    /// An address resolved by the client (`socks5://`), or an IP literal.
    Ip(SocketAddr),
}

impl TargetAddr {
    /// An IP literal (without IPv6 brackets) becomes [`TargetAddr::Ip`], so
    /// it is never sent to the proxy as a name; anything else is a domain.
    pub(crate) fn from_host(host: &str, port: u16) -> Result<Self, SocksError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(TargetAddr::Ip(SocketAddr::new(ip, port)));
        }
        if host.is_empty() || host.len() > MAX_DOMAIN {
            return Err(SocksError::InvalidDomain { len: host.len() });
        }
        Ok(TargetAddr::Domain(host.to_owned(), port))
    }
}

impl fmt::Display for TargetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetAddr::Domain(host, port) => write!(f, "{host}:{port}"),
            TargetAddr::Ip(addr) => addr.fmt(f),
        }
    }
}

/// Resolves `host` locally for `socks5://`, taking the first address the
/// system returns (its own preference order, as curl does).
pub(crate) async fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "name resolved to no address"))
}

/// Why a SOCKS handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum SocksError {
    /// SOCKS5 reply 0x01.
    GeneralFailure,
    /// SOCKS5 reply 0x02: the proxy's rules forbid this connection.
    NotAllowed,
    /// SOCKS5 reply 0x03.
    NetworkUnreachable,
    /// SOCKS5 reply 0x04.
    HostUnreachable,
    /// SOCKS5 reply 0x05: the target refused the proxy's connection.
    ConnectionRefused,
    /// SOCKS5 reply 0x06.
    TtlExpired,
    /// SOCKS5 reply 0x07: the proxy does not support CONNECT.
    CommandNotSupported,
    /// SOCKS5 reply 0x08: the proxy does not take this kind of address
    /// (often: a domain name sent to a proxy that wants `socks5://`).
    AddressTypeNotSupported,
    /// A SOCKS5 reply code RFC 1928 does not define.
    UnknownReply(u8),
    /// The proxy accepts none of the offered authentication methods
    /// (method 0xFF): it wants credentials this client did not offer.
    NoAcceptableMethods,
    /// The proxy chose username/password authentication, and no
    /// credentials were configured.
    AuthRequired,
    /// The proxy rejected the username and password (RFC 1929 status).
    AuthFailed(u8),
    /// SOCKS4 reply 0x5B: request rejected or failed.
    Socks4Rejected,
    /// SOCKS4 reply 0x5C: the proxy could not reach identd on the client.
    Socks4IdentdUnreachable,
    /// SOCKS4 reply 0x5D: identd reported a different user id.
    Socks4IdentdMismatch,
    /// A SOCKS4 reply code the protocol does not define.
    Socks4UnknownReply(u8),
    /// The proxy's answer breaks the protocol.
    Malformed(Malformed),
    /// The proxy closed the connection; `received` bytes of the current
    /// reply had arrived.
    Closed {
        /// Bytes of the reply read before the close.
        received: usize,
    },
    /// The target's domain name is empty or longer than 255 bytes, or (for
    /// SOCKS4a) contains a NUL byte.
    InvalidDomain {
        /// Its length in bytes.
        len: usize,
    },
    /// The username or password is longer than 255 bytes, or the SOCKS4
    /// user id contains a NUL byte; the values are never shown.
    InvalidCredentials,
    /// SOCKS4 carries IPv4 addresses only.
    Socks4Ipv6(Ipv6Addr),
    /// Reading or writing failed.
    Io(io::Error),
}

/// How a proxy's answer broke the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Malformed {
    /// The first byte is not the expected protocol version.
    Version {
        /// What the message should start with.
        expected: u8,
        /// What it started with.
        got: u8,
    },
    /// The proxy chose an authentication method that was not offered.
    UnofferedMethod(u8),
    /// The reply's address type is not IPv4, domain or IPv6.
    AddressType(u8),
}

impl SocksError {
    /// The SOCKS5 reply code, for the errors that carry one.
    pub(crate) fn reply_code(&self) -> Option<u8> {
        Some(match self {
            SocksError::GeneralFailure => 0x01,
            SocksError::NotAllowed => 0x02,
            SocksError::NetworkUnreachable => 0x03,
            SocksError::HostUnreachable => 0x04,
            SocksError::ConnectionRefused => 0x05,
            SocksError::TtlExpired => 0x06,
            SocksError::CommandNotSupported => 0x07,
            SocksError::AddressTypeNotSupported => 0x08,
            SocksError::UnknownReply(code) => *code,
            SocksError::Socks4Rejected => 0x5B,
            SocksError::Socks4IdentdUnreachable => 0x5C,
            SocksError::Socks4IdentdMismatch => 0x5D,
            SocksError::Socks4UnknownReply(code) => *code,
            _ => return None,
        })
    }

    fn from_socks5_reply(code: u8) -> Self {
        match code {
            0x01 => SocksError::GeneralFailure,
            0x02 => SocksError::NotAllowed,
            0x03 => SocksError::NetworkUnreachable,
            0x04 => SocksError::HostUnreachable,
            0x05 => SocksError::ConnectionRefused,
            0x06 => SocksError::TtlExpired,
            0x07 => SocksError::CommandNotSupported,
            0x08 => SocksError::AddressTypeNotSupported,
            other => SocksError::UnknownReply(other),
        }
    }

    fn from_socks4_reply(code: u8) -> Self {
        match code {
            0x5B => SocksError::Socks4Rejected,
            0x5C => SocksError::Socks4IdentdUnreachable,
            0x5D => SocksError::Socks4IdentdMismatch,
            other => SocksError::Socks4UnknownReply(other),
        }
    }
}

impl fmt::Display for SocksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let socks5_refusal = match self {
            SocksError::GeneralFailure => Some("general failure"),
            SocksError::NotAllowed => Some("not allowed by its ruleset"),
            SocksError::NetworkUnreachable => Some("network unreachable"),
            SocksError::HostUnreachable => Some("host unreachable"),
            SocksError::ConnectionRefused => Some("connection refused by the target"),
            SocksError::TtlExpired => Some("TTL expired"),
            SocksError::CommandNotSupported => Some("command not supported"),
            SocksError::AddressTypeNotSupported => Some("address type not supported"),
            SocksError::UnknownReply(_) => Some("unknown reply code"),
            _ => None,
        };
        if let (Some(why), Some(code)) = (socks5_refusal, self.reply_code()) {
            return write!(
                f,
                "SOCKS5 proxy refused the connection: {why} (reply {code:#04x})"
            );
        }
        let socks4_refusal = match self {
            SocksError::Socks4Rejected => Some("request rejected or failed"),
            SocksError::Socks4IdentdUnreachable => Some("it could not reach identd on the client"),
            SocksError::Socks4IdentdMismatch => Some("identd reported a different user id"),
            SocksError::Socks4UnknownReply(_) => Some("unknown reply code"),
            _ => None,
        };
        if let (Some(why), Some(code)) = (socks4_refusal, self.reply_code()) {
            return write!(
                f,
                "SOCKS4 proxy refused the connection: {why} (reply {code:#04x})"
            );
        }
        match self {
            SocksError::NoAcceptableMethods => f.write_str(
                "SOCKS5 proxy accepts none of the offered authentication methods \
                 (method 0xff): it may require credentials",
            ),
            SocksError::AuthRequired => f.write_str(
                "SOCKS5 proxy requires username/password authentication, \
                 and no credentials were given",
            ),
            SocksError::AuthFailed(status) => write!(
                f,
                "SOCKS5 proxy rejected the username and password (status {status:#04x})"
            ),
            SocksError::Malformed(Malformed::Version { expected, got }) => write!(
                f,
                "SOCKS proxy sent a malformed reply: version {got:#04x}, expected {expected:#04x}"
            ),
            SocksError::Malformed(Malformed::UnofferedMethod(m)) => write!(
                f,
                "SOCKS5 proxy sent a malformed reply: it chose authentication method \
                 {m:#04x}, which was not offered"
            ),
            SocksError::Malformed(Malformed::AddressType(t)) => write!(
                f,
                "SOCKS5 proxy sent a malformed reply: unknown address type {t:#04x}"
            ),
            SocksError::Closed { received: 0 } => {
                f.write_str("SOCKS proxy closed the connection before replying")
            }
            SocksError::Closed { received } => write!(
                f,
                "SOCKS proxy closed the connection in the middle of its reply \
                 (after {received} bytes)"
            ),
            SocksError::InvalidDomain { len } => write!(
                f,
                "target host name of {len} bytes cannot be sent over SOCKS \
                 (1 to 255 bytes, no NUL)"
            ),
            SocksError::InvalidCredentials => f.write_str(
                "SOCKS credentials cannot be sent: username and password are at most \
                 255 bytes each, and a SOCKS4 user id has no NUL byte",
            ),
            SocksError::Socks4Ipv6(ip) => {
                write!(f, "SOCKS4 cannot carry the IPv6 address {ip}")
            }
            SocksError::Io(_) => f.write_str("SOCKS handshake failed reading or writing"),
            // Every reply-code variant returned above.
            _ => f.write_str("SOCKS proxy refused the connection"),
        }
    }
}

impl std::error::Error for SocksError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SocksError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for SocksError {
    fn from(e: io::Error) -> Self {
        SocksError::Io(e)
    }
}

/// What a parser made of the bytes so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed<T> {
    /// The message is not complete: it is at least `needed` bytes long.
    /// Reading up to `needed` never reads past the message.
    Incomplete {
        /// A lower bound on the whole message's length.
        needed: usize,
    },
    /// The message, and how many bytes of the buffer it took.
    Complete(T, usize),
}

/// The authentication method the SOCKS5 proxy chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// No authentication.
    None,
    /// Username/password (RFC 1929).
    UserPass,
}

/// The address the proxy reports it bound for the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BoundAddr {
    Ip(SocketAddr),
    Domain(Vec<u8>, u16),
}

/// `VER NMETHODS METHODS`: no authentication, plus username/password when
/// credentials are set (as curl offers them).
pub(crate) fn encode_greeting(with_credentials: bool) -> Vec<u8> {
    if with_credentials {
        vec![SOCKS5, 2, METHOD_NONE, METHOD_USER_PASS]
    } else {
        vec![SOCKS5, 1, METHOD_NONE]
    }
}

/// RFC 1929 §2: `VER ULEN UNAME PLEN PASSWD`.
pub(crate) fn encode_user_pass(user: &str, pass: &str) -> Result<Vec<u8>, SocksError> {
    let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(pass.len())) else {
        return Err(SocksError::InvalidCredentials);
    };
    let mut msg = Vec::with_capacity(3 + user.len() + pass.len());
    msg.extend_from_slice(&[USER_PASS_VERSION, ulen]);
    msg.extend_from_slice(user.as_bytes());
    msg.push(plen);
    msg.extend_from_slice(pass.as_bytes());
    Ok(msg)
}

/// RFC 1928 §4: `VER CMD RSV ATYP DST.ADDR DST.PORT` for CONNECT.
pub(crate) fn encode_connect(target: &TargetAddr) -> Result<Vec<u8>, SocksError> {
    let mut msg = Vec::with_capacity(6 + 1 + MAX_DOMAIN);
    msg.extend_from_slice(&[SOCKS5, CMD_CONNECT, 0x00]);
    let port = match target {
        TargetAddr::Ip(SocketAddr::V4(a)) => {
            msg.push(ATYP_IPV4);
            msg.extend_from_slice(&a.ip().octets());
            a.port()
        }
        TargetAddr::Ip(SocketAddr::V6(a)) => {
            msg.push(ATYP_IPV6);
            msg.extend_from_slice(&a.ip().octets());
            a.port()
        }
        TargetAddr::Domain(host, port) => {
            let len = match u8::try_from(host.len()) {
                Ok(len) if len > 0 => len,
                _ => return Err(SocksError::InvalidDomain { len: host.len() }),
            };
            msg.extend_from_slice(&[ATYP_DOMAIN, len]);
            msg.extend_from_slice(host.as_bytes());
            *port
        }
    };
    msg.extend_from_slice(&port.to_be_bytes());
    Ok(msg)
}

/// SOCKS4 CONNECT: `VN CD DSTPORT DSTIP USERID NUL`, and for a domain the
/// SOCKS4a form with DSTIP `0.0.0.1` and `HOST NUL` after the user id.
pub(crate) fn encode_socks4a_connect(
    target: &TargetAddr,
    user_id: &str,
) -> Result<Vec<u8>, SocksError> {
    if user_id.len() > 255 || user_id.as_bytes().contains(&0) {
        return Err(SocksError::InvalidCredentials);
    }
    let (ip, port, host) = match target {
        TargetAddr::Ip(SocketAddr::V4(a)) => (*a.ip(), a.port(), None),
        TargetAddr::Ip(SocketAddr::V6(a)) => return Err(SocksError::Socks4Ipv6(*a.ip())),
        TargetAddr::Domain(host, port) => {
            if host.is_empty() || host.len() > MAX_DOMAIN || host.as_bytes().contains(&0) {
                return Err(SocksError::InvalidDomain { len: host.len() });
            }
            // SOCKS4a: 0.0.0.x with x non-zero says "the name follows".
            (Ipv4Addr::new(0, 0, 0, 1), *port, Some(host))
        }
    };
    let mut msg = Vec::with_capacity(9 + user_id.len() + host.map_or(0, |h| h.len() + 1));
    msg.extend_from_slice(&[SOCKS4, CMD_CONNECT]);
    msg.extend_from_slice(&port.to_be_bytes());
    msg.extend_from_slice(&ip.octets());
    msg.extend_from_slice(user_id.as_bytes());
    msg.push(0);
    if let Some(host) = host {
        msg.extend_from_slice(host.as_bytes());
        msg.push(0);
    }
    Ok(msg)
}

/// RFC 1928 §3: `VER METHOD`. `offered_user_pass` says whether
/// username/password was in the greeting.
pub(crate) fn parse_method(
    buf: &[u8],
    offered_user_pass: bool,
) -> Result<Parsed<Method>, SocksError> {
    let [ver, method, ..] = *buf else {
        check_version(buf, SOCKS5)?;
        return Ok(Parsed::Incomplete { needed: 2 });
    };
    check_version(&[ver], SOCKS5)?;
    let method = match method {
        METHOD_NONE => Method::None,
        METHOD_USER_PASS if offered_user_pass => Method::UserPass,
        METHOD_USER_PASS => return Err(SocksError::AuthRequired),
        METHOD_NO_ACCEPTABLE => return Err(SocksError::NoAcceptableMethods),
        other => return Err(SocksError::Malformed(Malformed::UnofferedMethod(other))),
    };
    Ok(Parsed::Complete(method, 2))
}

/// RFC 1929 §2: `VER STATUS`, where status 0 is success.
///
/// Version 0x05 is accepted beside the RFC's 0x01: some servers echo the
/// SOCKS version here, and the status byte is what matters.
pub(crate) fn parse_auth_status(buf: &[u8]) -> Result<Parsed<()>, SocksError> {
    let ok_version = |v: u8| v == USER_PASS_VERSION || v == SOCKS5;
    match *buf {
        [] => Ok(Parsed::Incomplete { needed: 2 }),
        [ver, ..] if !ok_version(ver) => Err(SocksError::Malformed(Malformed::Version {
            expected: USER_PASS_VERSION,
            got: ver,
        })),
        [_] => Ok(Parsed::Incomplete { needed: 2 }),
        [_, 0, ..] => Ok(Parsed::Complete((), 2)),
        [_, status, ..] => Err(SocksError::AuthFailed(status)),
    }
}

/// RFC 1928 §6: `VER REP RSV ATYP BND.ADDR BND.PORT`.
///
/// A failure code is reported as soon as the second byte is in, so a proxy
/// that sends a short failure and keeps the connection open does not hang
/// the handshake. RSV is not checked.
pub(crate) fn parse_socks5_reply(buf: &[u8]) -> Result<Parsed<BoundAddr>, SocksError> {
    check_version(buf, SOCKS5)?;
    match buf.get(1) {
        None => return Ok(Parsed::Incomplete { needed: 2 }),
        Some(0) => {}
        Some(&code) => return Err(SocksError::from_socks5_reply(code)),
    }
    // ATYP and the first address byte (the domain's length) fix the size.
    let (Some(&atyp), Some(&first)) = (buf.get(3), buf.get(4)) else {
        return Ok(Parsed::Incomplete { needed: 5 });
    };
    let len = match atyp {
        ATYP_IPV4 => 4 + 4 + 2,
        ATYP_IPV6 => 4 + 16 + 2,
        ATYP_DOMAIN => 4 + 1 + usize::from(first) + 2,
        other => return Err(SocksError::Malformed(Malformed::AddressType(other))),
    };
    let Some(msg) = buf.get(..len) else {
        return Ok(Parsed::Incomplete { needed: len });
    };
    let port = u16::from_be_bytes([msg[len - 2], msg[len - 1]]);
    let addr = &msg[4..len - 2];
    let bound = match atyp {
        ATYP_IPV4 => BoundAddr::Ip(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
            port,
        )),
        ATYP_IPV6 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(addr);
            BoundAddr::Ip(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => BoundAddr::Domain(addr[1..].to_vec(), port),
    };
    Ok(Parsed::Complete(bound, len))
}

/// SOCKS4: `VN CD DSTPORT DSTIP`, 8 bytes, CD 0x5A is success.
///
/// VN is 0 in the protocol; 4 is accepted too, as some servers send it.
pub(crate) fn parse_socks4_reply(buf: &[u8]) -> Result<Parsed<SocketAddrV4>, SocksError> {
    if let Some(&vn) = buf.first() {
        if vn != 0 && vn != SOCKS4 {
            return Err(SocksError::Malformed(Malformed::Version {
                expected: 0,
                got: vn,
            }));
        }
    }
    match buf.get(1) {
        None => return Ok(Parsed::Incomplete { needed: 2 }),
        Some(0x5A) => {}
        Some(&code) => return Err(SocksError::from_socks4_reply(code)),
    }
    let [_, _, p0, p1, a, b, c, d, ..] = *buf else {
        return Ok(Parsed::Incomplete { needed: 8 });
    };
    let addr = SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), u16::from_be_bytes([p0, p1]));
    Ok(Parsed::Complete(addr, 8))
}

fn check_version(buf: &[u8], expected: u8) -> Result<(), SocksError> {
    match buf.first() {
        Some(&got) if got != expected => {
            Err(SocksError::Malformed(Malformed::Version { expected, got }))
        }
        _ => Ok(()),
    }
}

/// SOCKS5 CONNECT to `target` over `io`, authenticating with `auth` when
/// the proxy asks for it. On success the stream is a tunnel to the target
/// and nothing after the reply has been read.
pub(crate) async fn socks5_handshake<T>(
    io: &mut T,
    target: TargetAddr,
    auth: Option<(&str, &str)>,
) -> Result<(), SocksError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    // Encode everything first: an unsendable name or credential fails
    // before a byte goes to the proxy.
    let connect = encode_connect(&target)?;
    let user_pass = auth.map(|(u, p)| encode_user_pass(u, p)).transpose()?;
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
    send(&mut io, &connect).await?;
    let bound = read_reply(&mut io, &mut buf, parse_socks5_reply).await?;
    tracing::trace!(?bound, %target, "SOCKS5 proxy opened the tunnel");
    Ok(())
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
    let connect = encode_socks4a_connect(&target, user_id.unwrap_or(""))?;
    let mut io = TokioIo::new(io);
    let mut buf = [0u8; 8];
    send(&mut io, &connect).await?;
    let bound = read_reply(&mut io, &mut buf, parse_socks4_reply).await?;
    tracing::trace!(?bound, %target, "SOCKS4 proxy opened the tunnel");
    Ok(())
}

async fn send<T>(io: &mut TokioIo<T>, msg: &[u8]) -> Result<(), SocksError>
where
    T: hyper::rt::Write + Unpin,
{
    io.write_all(msg).await?;
    io.flush().await?;
    Ok(())
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
        let n = io.read(&mut buf[filled..end]).await?;
        if n == 0 {
            return Err(SocksError::Closed { received: filled });
        }
        filled += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::SocketAddrV6;

    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    fn v4(a: [u8; 4], port: u16) -> TargetAddr {
        TargetAddr::Ip(SocketAddr::from((a, port)))
    }

    fn domain(host: &str, port: u16) -> TargetAddr {
        TargetAddr::Domain(host.to_owned(), port)
    }

    /// Every proper prefix is `Incomplete` with a bound that never reaches
    /// past the message, the whole is `Complete` with its exact length,
    /// and trailing bytes are left alone.
    fn check_splits<R: fmt::Debug + PartialEq>(
        msg: &[u8],
        parse: impl Fn(&[u8]) -> Result<Parsed<R>, SocksError>,
        expected: R,
    ) {
        for cut in 0..msg.len() {
            match parse(&msg[..cut]) {
                Ok(Parsed::Incomplete { needed }) => {
                    assert!(needed > cut && needed <= msg.len(), "cut {cut}: {needed}")
                }
                other => panic!("cut {cut} of {msg:02x?}: {other:?}"),
            }
        }
        let mut long = msg.to_vec();
        long.extend_from_slice(b"tunnel bytes");
        for buf in [msg, &long[..]] {
            match parse(buf) {
                Ok(Parsed::Complete(r, n)) => {
                    assert_eq!(r, expected);
                    assert_eq!(n, msg.len());
                }
                other => panic!("{msg:02x?}: {other:?}"),
            }
        }
    }

    #[test]
    fn greeting_and_auth_bytes() {
        assert_eq!(encode_greeting(false), [5, 1, 0]);
        assert_eq!(encode_greeting(true), [5, 2, 0, 2]);
        assert_eq!(
            encode_user_pass("user", "pw").unwrap(),
            b"\x01\x04user\x02pw"
        );
        assert_eq!(encode_user_pass("", "").unwrap(), [1, 0, 0]);
        let long = "x".repeat(256);
        assert!(matches!(
            encode_user_pass(&long, "pw"),
            Err(SocksError::InvalidCredentials)
        ));
        assert!(matches!(
            encode_user_pass("u", &long),
            Err(SocksError::InvalidCredentials)
        ));
        assert!(encode_user_pass(&long[..255], &long[..255]).is_ok());
    }

    #[test]
    fn connect_bytes() {
        assert_eq!(
            encode_connect(&v4([10, 0, 0, 1], 443)).unwrap(),
            [5, 1, 0, 1, 10, 0, 0, 1, 0x01, 0xBB]
        );
        let v6 = TargetAddr::Ip(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::LOCALHOST,
            8080,
            0,
            0,
        )));
        let mut expected = vec![5, 1, 0, 4];
        expected.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        expected.extend_from_slice(&[0x1F, 0x90]);
        assert_eq!(encode_connect(&v6).unwrap(), expected);
        assert_eq!(
            encode_connect(&domain("example.com", 80)).unwrap(),
            b"\x05\x01\x00\x03\x0bexample.com\x00\x50"
        );
        let name = "a".repeat(255);
        assert_eq!(
            encode_connect(&domain(&name, 1)).unwrap().len(),
            4 + 1 + 255 + 2
        );
        for bad in ["", &"a".repeat(256)] {
            assert!(matches!(
                encode_connect(&domain(bad, 1)),
                Err(SocksError::InvalidDomain { len }) if len == bad.len()
            ));
        }
    }

    #[test]
    fn target_from_host() {
        assert_eq!(
            TargetAddr::from_host("127.0.0.1", 80).unwrap(),
            v4([127, 0, 0, 1], 80)
        );
        assert_eq!(
            TargetAddr::from_host("::1", 443).unwrap(),
            TargetAddr::Ip("[::1]:443".parse().unwrap())
        );
        assert_eq!(
            TargetAddr::from_host("example.com", 443).unwrap(),
            domain("example.com", 443)
        );
        assert!(TargetAddr::from_host(&"a".repeat(256), 1).is_err());
        assert!(TargetAddr::from_host("", 1).is_err());
        assert_eq!(domain("example.com", 443).to_string(), "example.com:443");
    }

    #[test]
    fn socks4a_bytes() {
        assert_eq!(
            encode_socks4a_connect(&v4([192, 168, 1, 2], 80), "").unwrap(),
            [4, 1, 0, 80, 192, 168, 1, 2, 0]
        );
        assert_eq!(
            encode_socks4a_connect(&domain("example.com", 443), "bob").unwrap(),
            b"\x04\x01\x01\xbb\x00\x00\x00\x01bob\x00example.com\x00"
        );
        assert!(matches!(
            encode_socks4a_connect(&TargetAddr::Ip("[::1]:1".parse().unwrap()), ""),
            Err(SocksError::Socks4Ipv6(_))
        ));
        assert!(matches!(
            encode_socks4a_connect(&domain("a\0b", 1), ""),
            Err(SocksError::InvalidDomain { len: 3 })
        ));
        assert!(matches!(
            encode_socks4a_connect(&domain("a", 1), "x\0y"),
            Err(SocksError::InvalidCredentials)
        ));
    }

    #[test]
    fn method_reply() {
        check_splits(&[5, 0], |b| parse_method(b, false), Method::None);
        check_splits(&[5, 2], |b| parse_method(b, true), Method::UserPass);
        assert!(matches!(
            parse_method(&[5, 2], false),
            Err(SocksError::AuthRequired)
        ));
        assert!(matches!(
            parse_method(&[5, 0xFF], true),
            Err(SocksError::NoAcceptableMethods)
        ));
        assert!(matches!(
            parse_method(&[5, 1], true),
            Err(SocksError::Malformed(Malformed::UnofferedMethod(1)))
        ));
        // A wrong version fails on the first byte, without waiting.
        assert!(matches!(
            parse_method(b"H", true),
            Err(SocksError::Malformed(Malformed::Version {
                expected: 5,
                got: b'H'
            }))
        ));
    }

    #[test]
    fn auth_status_reply() {
        check_splits(&[1, 0], parse_auth_status, ());
        check_splits(&[5, 0], parse_auth_status, ());
        assert!(matches!(
            parse_auth_status(&[1, 1]),
            Err(SocksError::AuthFailed(1))
        ));
        assert!(matches!(
            parse_auth_status(&[1, 0xFF]),
            Err(SocksError::AuthFailed(0xFF))
        ));
        assert!(matches!(
            parse_auth_status(&[2]),
            Err(SocksError::Malformed(Malformed::Version { got: 2, .. }))
        ));
    }

    #[test]
    fn socks5_reply_every_address_type() {
        check_splits(
            &[5, 0, 0, 1, 10, 1, 2, 3, 0x1F, 0x90],
            parse_socks5_reply,
            BoundAddr::Ip("10.1.2.3:8080".parse().unwrap()),
        );
        let mut v6 = vec![5, 0, 0, 4];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&[0, 80]);
        check_splits(
            &v6,
            parse_socks5_reply,
            BoundAddr::Ip("[::1]:80".parse().unwrap()),
        );
        check_splits(
            b"\x05\x00\x00\x03\x07bound.x\x00\x50",
            parse_socks5_reply,
            BoundAddr::Domain(b"bound.x".to_vec(), 80),
        );
        // The longest reply there is.
        let mut longest = vec![5, 0, 0, 3, 255];
        longest.extend_from_slice(&[b'a'; 255]);
        longest.extend_from_slice(&[0, 1]);
        assert_eq!(longest.len(), MAX_REPLY);
        check_splits(
            &longest,
            parse_socks5_reply,
            BoundAddr::Domain(vec![b'a'; 255], 1),
        );
        // An empty bound domain is odd but harmless.
        check_splits(
            &[5, 0, 0, 3, 0, 0, 1],
            parse_socks5_reply,
            BoundAddr::Domain(Vec::new(), 1),
        );
    }

    #[test]
    fn socks5_reply_codes() {
        for code in 1..=u8::MAX {
            // Known as soon as the second byte arrives.
            let err = parse_socks5_reply(&[5, code]).unwrap_err();
            assert_eq!(err.reply_code(), Some(code), "{err:?}");
            let full = parse_socks5_reply(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap_err();
            assert_eq!(full.to_string(), err.to_string());
        }
        assert!(matches!(
            parse_socks5_reply(&[5, 4]),
            Err(SocksError::HostUnreachable)
        ));
        assert!(matches!(
            parse_socks5_reply(&[5, 9]),
            Err(SocksError::UnknownReply(9))
        ));
        assert!(matches!(
            parse_socks5_reply(&[5, 0, 0, 2, 0]),
            Err(SocksError::Malformed(Malformed::AddressType(2)))
        ));
        assert!(matches!(
            parse_socks5_reply(b"HTTP/1.1 400"),
            Err(SocksError::Malformed(Malformed::Version { got: b'H', .. }))
        ));
    }

    #[test]
    fn socks4_reply() {
        let expected = SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 80);
        check_splits(&[0, 0x5A, 0, 80, 1, 2, 3, 4], parse_socks4_reply, expected);
        check_splits(&[4, 0x5A, 0, 80, 1, 2, 3, 4], parse_socks4_reply, expected);
        for (code, want) in [
            (0x5B, "0x5b"),
            (0x5C, "0x5c"),
            (0x5D, "0x5d"),
            (0x01, "0x01"),
        ] {
            let err = parse_socks4_reply(&[0, code]).unwrap_err();
            assert_eq!(err.reply_code(), Some(code));
            assert!(
                err.to_string().ends_with(&format!("(reply {want})")),
                "{err}"
            );
        }
        assert!(matches!(
            parse_socks4_reply(&[5]),
            Err(SocksError::Malformed(Malformed::Version {
                expected: 0,
                got: 5
            }))
        ));
    }

    /// No input makes a parser panic or claim more than it was given; a
    /// bound is always past what it has and within a reply's maximum.
    #[test]
    fn parsers_survive_any_input() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            // xorshift64*: deterministic, no dependency.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        };
        let check = |buf: &[u8]| {
            fn sane<R>(r: Result<Parsed<R>, SocksError>, len: usize) {
                match r {
                    Ok(Parsed::Incomplete { needed }) => {
                        assert!(needed > len && needed <= MAX_REPLY)
                    }
                    Ok(Parsed::Complete(_, n)) => assert!(n <= len),
                    Err(e) => drop(e.to_string()),
                }
            }
            sane(parse_method(buf, true), buf.len());
            sane(parse_method(buf, false), buf.len());
            sane(parse_auth_status(buf), buf.len());
            sane(parse_socks5_reply(buf), buf.len());
            sane(parse_socks4_reply(buf), buf.len());
        };
        for a in 0..=u8::MAX {
            for b in 0..=u8::MAX {
                check(&[a, b]);
                check(&[5, 0, a, b]);
                check(&[5, 0, 0, a, b]);
            }
        }
        for _ in 0..20_000 {
            let len = usize::from(next()) + usize::from(next() & 7);
            let mut buf: Vec<u8> = (0..len).map(|_| next()).collect();
            // Bias towards valid prefixes so the deep paths run too.
            match next() % 4 {
                0 if buf.len() > 2 => buf[..2].copy_from_slice(&[5, 0]),
                1 if buf.len() > 2 => buf[..2].copy_from_slice(&[0, 0x5A]),
                _ => {}
            }
            check(&buf);
        }
    }

    proptest::proptest! {
        /// Any bytes: no panic, a bound past the input and within a reply,
        /// a length within the input; and a prefix of a complete reply is
        /// never itself complete.
        #[test]
        fn proptest_parsers(buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            type Parser = fn(&[u8]) -> Result<Parsed<()>, SocksError>;
            let parsers: [Parser; 4] = [
                |b| parse_method(b, true).map(drop_value),
                |b| parse_auth_status(b),
                |b| parse_socks5_reply(b).map(drop_value),
                |b| parse_socks4_reply(b).map(drop_value),
            ];
            for parse in parsers {
                match parse(&buf) {
                    Ok(Parsed::Incomplete { needed }) => {
                        proptest::prop_assert!(needed > buf.len() && needed <= MAX_REPLY);
                    }
                    Ok(Parsed::Complete((), n)) => {
                        proptest::prop_assert!(n <= buf.len());
                        for cut in 0..n {
                            let partial = parse(&buf[..cut]);
                            proptest::prop_assert!(
                                matches!(partial, Ok(Parsed::Incomplete { .. })),
                                "prefix {} of a complete reply: {:?}", cut, partial
                            );
                        }
                    }
                    Err(e) => drop(e.to_string()),
                }
            }
        }
    }

    fn drop_value<R>(p: Parsed<R>) -> Parsed<()> {
        match p {
            Parsed::Incomplete { needed } => Parsed::Incomplete { needed },
            Parsed::Complete(_, n) => Parsed::Complete((), n),
        }
    }

    #[test]
    fn display_texts() {
        let cases: Vec<(SocksError, &str)> = vec![
            (SocksError::GeneralFailure, "SOCKS5 proxy refused the connection: general failure (reply 0x01)"),
            (SocksError::NotAllowed, "SOCKS5 proxy refused the connection: not allowed by its ruleset (reply 0x02)"),
            (SocksError::NetworkUnreachable, "SOCKS5 proxy refused the connection: network unreachable (reply 0x03)"),
            (SocksError::HostUnreachable, "SOCKS5 proxy refused the connection: host unreachable (reply 0x04)"),
            (SocksError::ConnectionRefused, "SOCKS5 proxy refused the connection: connection refused by the target (reply 0x05)"),
            (SocksError::TtlExpired, "SOCKS5 proxy refused the connection: TTL expired (reply 0x06)"),
            (SocksError::CommandNotSupported, "SOCKS5 proxy refused the connection: command not supported (reply 0x07)"),
            (SocksError::AddressTypeNotSupported, "SOCKS5 proxy refused the connection: address type not supported (reply 0x08)"),
            (SocksError::UnknownReply(0x2a), "SOCKS5 proxy refused the connection: unknown reply code (reply 0x2a)"),
            (SocksError::NoAcceptableMethods, "SOCKS5 proxy accepts none of the offered authentication methods (method 0xff): it may require credentials"),
            (SocksError::AuthRequired, "SOCKS5 proxy requires username/password authentication, and no credentials were given"),
            (SocksError::AuthFailed(1), "SOCKS5 proxy rejected the username and password (status 0x01)"),
            (SocksError::Socks4Rejected, "SOCKS4 proxy refused the connection: request rejected or failed (reply 0x5b)"),
            (SocksError::Socks4IdentdUnreachable, "SOCKS4 proxy refused the connection: it could not reach identd on the client (reply 0x5c)"),
            (SocksError::Socks4IdentdMismatch, "SOCKS4 proxy refused the connection: identd reported a different user id (reply 0x5d)"),
            (SocksError::Socks4UnknownReply(0x42), "SOCKS4 proxy refused the connection: unknown reply code (reply 0x42)"),
            (SocksError::Malformed(Malformed::Version { expected: 5, got: 0x48 }), "SOCKS proxy sent a malformed reply: version 0x48, expected 0x05"),
            (SocksError::Malformed(Malformed::UnofferedMethod(3)), "SOCKS5 proxy sent a malformed reply: it chose authentication method 0x03, which was not offered"),
            (SocksError::Malformed(Malformed::AddressType(9)), "SOCKS5 proxy sent a malformed reply: unknown address type 0x09"),
            (SocksError::Closed { received: 0 }, "SOCKS proxy closed the connection before replying"),
            (SocksError::Closed { received: 3 }, "SOCKS proxy closed the connection in the middle of its reply (after 3 bytes)"),
            (SocksError::InvalidDomain { len: 256 }, "target host name of 256 bytes cannot be sent over SOCKS (1 to 255 bytes, no NUL)"),
            (SocksError::InvalidCredentials, "SOCKS credentials cannot be sent: username and password are at most 255 bytes each, and a SOCKS4 user id has no NUL byte"),
            (SocksError::Socks4Ipv6(Ipv6Addr::LOCALHOST), "SOCKS4 cannot carry the IPv6 address ::1"),
            (SocksError::Io(io::Error::other("boom")), "SOCKS handshake failed reading or writing"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text, "{err:?}");
        }
        let io = SocksError::from(io::Error::other("boom"));
        assert_eq!(
            std::error::Error::source(&io)
                .map(|s| s.to_string())
                .as_deref(),
            Some("boom")
        );
    }

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
        socks5_handshake(&mut io, domain("example.com", 443), None)
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
                socks5_handshake(&mut io, domain("example.com", 443), None),
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
        socks5_handshake(&mut io, v4([10, 9, 8, 7], 80), Some(("alice", "s3cr3t")))
            .await
            .unwrap();
        drop(io);
        assert!(server.await.unwrap().is_empty());
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
        socks5_handshake(&mut io, domain("example.com", 443), Some(("a", "b")))
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
            let err = socks5_handshake(&mut io, domain("example.com", 443), None)
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
        let err = socks5_handshake(&mut io, domain("example.com", 443), None)
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
        let err = socks5_handshake(&mut io, domain("example.com", 443), None)
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
        let fut = socks5_handshake(&mut io, domain("example.com", 443), None);
        let res = tokio::time::timeout(std::time::Duration::from_millis(200), fut).await;
        assert!(res.is_err(), "returned {res:?}");

        // An HTTP proxy where a SOCKS one was expected.
        let (addr, _server) = scripted(vec![
            Step::Expect(&[5, 1, 0]),
            Step::Send(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        ])
        .await;
        let mut io = dial(addr).await;
        let err = socks5_handshake(&mut io, domain("example.com", 443), None)
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
        let err = socks5_handshake(&mut io, domain(&"a".repeat(256), 443), None)
            .await
            .unwrap_err();
        assert!(matches!(err, SocksError::InvalidDomain { len: 256 }));
        let err = socks5_handshake(&mut io, domain("ok", 1), Some((&"u".repeat(300), "p")))
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
        socks5_handshake(&mut io, domain("localhost", 8080), None)
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
        socks5_handshake(&mut io, domain("example.com", 443), None)
            .await
            .unwrap();
        let mut tunnel = TokioIo::new(io);
        let mut banner = [0; 12];
        tunnel.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"220 banner\r\n");
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

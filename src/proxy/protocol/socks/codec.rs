//! The SOCKS messages: pure encoders, and parsers over `&[u8]` that say how
//! many bytes a reply still needs.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

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

/// A SOCKS5 reply code other than success (RFC 1928 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Socks5Reply {
    /// 0x01.
    GeneralFailure,
    /// 0x02: the proxy's rules forbid this connection.
    NotAllowed,
    /// 0x03.
    NetworkUnreachable,
    /// 0x04.
    HostUnreachable,
    /// 0x05: the target refused the proxy's connection.
    ConnectionRefused,
    /// 0x06.
    TtlExpired,
    /// 0x07: the proxy does not support CONNECT.
    CommandNotSupported,
    /// 0x08: the proxy does not take this kind of address (often: a
    /// domain name sent to a proxy that wants `socks5://`).
    AddressTypeNotSupported,
    /// A code RFC 1928 does not define.
    Unknown(u8),
}

impl Socks5Reply {
    pub(crate) fn from_code(code: u8) -> Self {
        match code {
            0x01 => Socks5Reply::GeneralFailure,
            0x02 => Socks5Reply::NotAllowed,
            0x03 => Socks5Reply::NetworkUnreachable,
            0x04 => Socks5Reply::HostUnreachable,
            0x05 => Socks5Reply::ConnectionRefused,
            0x06 => Socks5Reply::TtlExpired,
            0x07 => Socks5Reply::CommandNotSupported,
            0x08 => Socks5Reply::AddressTypeNotSupported,
            other => Socks5Reply::Unknown(other),
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Socks5Reply::GeneralFailure => 0x01,
            Socks5Reply::NotAllowed => 0x02,
            Socks5Reply::NetworkUnreachable => 0x03,
            Socks5Reply::HostUnreachable => 0x04,
            Socks5Reply::ConnectionRefused => 0x05,
            Socks5Reply::TtlExpired => 0x06,
            Socks5Reply::CommandNotSupported => 0x07,
            Socks5Reply::AddressTypeNotSupported => 0x08,
            Socks5Reply::Unknown(code) => code,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Socks5Reply::GeneralFailure => "general failure",
            Socks5Reply::NotAllowed => "not allowed by its ruleset",
            Socks5Reply::NetworkUnreachable => "network unreachable",
            Socks5Reply::HostUnreachable => "host unreachable",
            Socks5Reply::ConnectionRefused => "connection refused by the target",
            Socks5Reply::TtlExpired => "TTL expired",
            Socks5Reply::CommandNotSupported => "command not supported",
            Socks5Reply::AddressTypeNotSupported => "address type not supported",
            Socks5Reply::Unknown(_) => "unknown reply code",
        }
    }
}

impl fmt::Display for Socks5Reply {
    /// `host unreachable (reply 0x04)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (reply {:#04x})", self.reason(), self.code())
    }
}

/// A SOCKS4 reply code other than 0x5A, granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Socks4Reply {
    /// 0x5B: request rejected or failed.
    Rejected,
    /// 0x5C: the proxy could not reach identd on the client.
    IdentdUnreachable,
    /// 0x5D: identd reported a different user id.
    IdentdMismatch,
    /// A code the protocol does not define.
    Unknown(u8),
}

impl Socks4Reply {
    pub(crate) fn from_code(code: u8) -> Self {
        match code {
            0x5B => Socks4Reply::Rejected,
            0x5C => Socks4Reply::IdentdUnreachable,
            0x5D => Socks4Reply::IdentdMismatch,
            other => Socks4Reply::Unknown(other),
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Socks4Reply::Rejected => 0x5B,
            Socks4Reply::IdentdUnreachable => 0x5C,
            Socks4Reply::IdentdMismatch => 0x5D,
            Socks4Reply::Unknown(code) => code,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Socks4Reply::Rejected => "request rejected or failed",
            Socks4Reply::IdentdUnreachable => "it could not reach identd on the client",
            Socks4Reply::IdentdMismatch => "identd reported a different user id",
            Socks4Reply::Unknown(_) => "unknown reply code",
        }
    }
}

impl fmt::Display for Socks4Reply {
    /// `request rejected or failed (reply 0x5b)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (reply {:#04x})", self.reason(), self.code())
    }
}

/// Why a SOCKS handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum SocksError {
    /// A SOCKS5 reply other than success.
    Socks5Refused(Socks5Reply),
    /// A SOCKS4 reply other than granted.
    Socks4Refused(Socks4Reply),
    /// The proxy accepts none of the offered authentication methods
    /// (method 0xFF): it wants credentials this client did not offer.
    NoAcceptableMethods,
    /// The proxy chose username/password authentication, and no
    /// credentials were configured.
    AuthRequired,
    /// The proxy rejected the username and password (RFC 1929 status).
    AuthFailed(u8),
    /// The proxy's answer breaks the protocol.
    Malformed(Malformed),
    /// The proxy closed the connection; `received` bytes of the current
    /// reply had arrived.
    Closed {
        /// Bytes of the reply read before the close.
        received: usize,
    },
    /// The proxy reset the connection (or a write met a broken pipe) while
    /// a reply was awaited: a close as much as an end of stream is, like
    /// [`SocksError::Closed`], with the `io::Error` kept as the source.
    Reset {
        /// Bytes of the reply read before the reset.
        received: usize,
        /// The read's error.
        source: io::Error,
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
    /// For SOCKS4, the target's name resolved to IPv6 addresses only.
    NoIpv4Address,
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
    /// The reply code, for a refusal.
    #[cfg(test)]
    pub(crate) fn reply_code(&self) -> Option<u8> {
        match self {
            SocksError::Socks5Refused(reply) => Some(reply.code()),
            SocksError::Socks4Refused(reply) => Some(reply.code()),
            _ => None,
        }
    }

    /// The short reason of a refusal: `host unreachable (reply 0x04)`.
    pub(crate) fn refusal(&self) -> Option<String> {
        match self {
            SocksError::Socks5Refused(reply) => Some(reply.to_string()),
            SocksError::Socks4Refused(reply) => Some(reply.to_string()),
            _ => None,
        }
    }
}

impl fmt::Display for SocksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocksError::Socks5Refused(reply) => {
                write!(f, "SOCKS5 proxy refused the connection: {reply}")
            }
            SocksError::Socks4Refused(reply) => {
                write!(f, "SOCKS4 proxy refused the connection: {reply}")
            }
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
            SocksError::Closed { received: 0 } | SocksError::Reset { received: 0, .. } => {
                f.write_str("SOCKS proxy closed the connection before replying")
            }
            SocksError::Closed { received } | SocksError::Reset { received, .. } => write!(
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
            SocksError::NoIpv4Address => f.write_str(
                "the target resolved to IPv6 addresses only, and SOCKS4 carries IPv4 alone \
                 (socks4a:// or socks5h:// let the proxy resolve it)",
            ),
            SocksError::Io(_) => f.write_str("SOCKS handshake failed reading or writing"),
        }
    }
}

impl std::error::Error for SocksError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SocksError::Io(e) | SocksError::Reset { source: e, .. } => Some(e),
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

/// `VER 1 METHOD`: the one method pipelined messages assume, username and
/// password when credentials are set, else none.
pub(crate) fn encode_single_method_greeting(with_credentials: bool) -> Vec<u8> {
    let method = if with_credentials {
        METHOD_USER_PASS
    } else {
        METHOD_NONE
    };
    vec![SOCKS5, 1, method]
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
        Some(&code) => return Err(SocksError::Socks5Refused(Socks5Reply::from_code(code))),
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
        Some(&code) => return Err(SocksError::Socks4Refused(Socks4Reply::from_code(code))),
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

/// An IPv4 target, for the tests of this module and of the handshakes.
#[cfg(test)]
pub(crate) fn v4(a: [u8; 4], port: u16) -> TargetAddr {
    TargetAddr::Ip(SocketAddr::from((a, port)))
}

/// A domain target, for the tests of this module and of the handshakes.
#[cfg(test)]
pub(crate) fn domain(host: &str, port: u16) -> TargetAddr {
    TargetAddr::Domain(host.to_owned(), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::SocketAddrV6;

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
            Err(SocksError::Socks5Refused(Socks5Reply::HostUnreachable))
        ));
        assert!(matches!(
            parse_socks5_reply(&[5, 9]),
            Err(SocksError::Socks5Refused(Socks5Reply::Unknown(9)))
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
            (SocksError::Socks5Refused(Socks5Reply::GeneralFailure), "SOCKS5 proxy refused the connection: general failure (reply 0x01)"),
            (SocksError::Socks5Refused(Socks5Reply::NotAllowed), "SOCKS5 proxy refused the connection: not allowed by its ruleset (reply 0x02)"),
            (SocksError::Socks5Refused(Socks5Reply::NetworkUnreachable), "SOCKS5 proxy refused the connection: network unreachable (reply 0x03)"),
            (SocksError::Socks5Refused(Socks5Reply::HostUnreachable), "SOCKS5 proxy refused the connection: host unreachable (reply 0x04)"),
            (SocksError::Socks5Refused(Socks5Reply::ConnectionRefused), "SOCKS5 proxy refused the connection: connection refused by the target (reply 0x05)"),
            (SocksError::Socks5Refused(Socks5Reply::TtlExpired), "SOCKS5 proxy refused the connection: TTL expired (reply 0x06)"),
            (SocksError::Socks5Refused(Socks5Reply::CommandNotSupported), "SOCKS5 proxy refused the connection: command not supported (reply 0x07)"),
            (SocksError::Socks5Refused(Socks5Reply::AddressTypeNotSupported), "SOCKS5 proxy refused the connection: address type not supported (reply 0x08)"),
            (SocksError::Socks5Refused(Socks5Reply::Unknown(0x2a)), "SOCKS5 proxy refused the connection: unknown reply code (reply 0x2a)"),
            (SocksError::NoAcceptableMethods, "SOCKS5 proxy accepts none of the offered authentication methods (method 0xff): it may require credentials"),
            (SocksError::AuthRequired, "SOCKS5 proxy requires username/password authentication, and no credentials were given"),
            (SocksError::AuthFailed(1), "SOCKS5 proxy rejected the username and password (status 0x01)"),
            (SocksError::Socks4Refused(Socks4Reply::Rejected), "SOCKS4 proxy refused the connection: request rejected or failed (reply 0x5b)"),
            (SocksError::Socks4Refused(Socks4Reply::IdentdUnreachable), "SOCKS4 proxy refused the connection: it could not reach identd on the client (reply 0x5c)"),
            (SocksError::Socks4Refused(Socks4Reply::IdentdMismatch), "SOCKS4 proxy refused the connection: identd reported a different user id (reply 0x5d)"),
            (SocksError::Socks4Refused(Socks4Reply::Unknown(0x42)), "SOCKS4 proxy refused the connection: unknown reply code (reply 0x42)"),
            (SocksError::Malformed(Malformed::Version { expected: 5, got: 0x48 }), "SOCKS proxy sent a malformed reply: version 0x48, expected 0x05"),
            (SocksError::Malformed(Malformed::UnofferedMethod(3)), "SOCKS5 proxy sent a malformed reply: it chose authentication method 0x03, which was not offered"),
            (SocksError::Malformed(Malformed::AddressType(9)), "SOCKS5 proxy sent a malformed reply: unknown address type 0x09"),
            (SocksError::Closed { received: 0 }, "SOCKS proxy closed the connection before replying"),
            (SocksError::Closed { received: 3 }, "SOCKS proxy closed the connection in the middle of its reply (after 3 bytes)"),
            (SocksError::Reset { received: 0, source: io::ErrorKind::ConnectionReset.into() }, "SOCKS proxy closed the connection before replying"),
            (SocksError::Reset { received: 4, source: io::ErrorKind::ConnectionReset.into() }, "SOCKS proxy closed the connection in the middle of its reply (after 4 bytes)"),
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
}

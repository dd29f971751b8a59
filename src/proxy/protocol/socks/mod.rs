//! SOCKS5 (RFC 1928) with username/password authentication (RFC 1929),
//! SOCKS4 and SOCKS4a.
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

mod codec;
mod handshake;

#[cfg(feature = "__fuzz")]
pub(crate) use self::codec::{
    parse_auth_status, parse_method, parse_socks4_reply, parse_socks5_reply,
};
pub(crate) use self::codec::{Parsed, SocksError, TargetAddr, MAX_REPLY};
pub(crate) use self::handshake::{
    closed_or_io, resolve, resolve_v4, socks4a_handshake, socks4a_start, socks5_handshake,
    socks5_start, Reply,
};

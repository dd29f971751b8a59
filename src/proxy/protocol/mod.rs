//! The wire protocols spoken to proxies: HTTP/1.1 `CONNECT` with its bounded
//! answer reader, HTTP/2 `CONNECT`, the Digest authentication scheme, and
//! SOCKS. Pure codecs and handshakes over a stream; nothing here dials or
//! decides a route.

pub(crate) mod digest;
pub(crate) mod http1;
pub(crate) mod http2;
pub(crate) mod ntlm;
pub(crate) mod socks;

//! The wire protocols spoken to proxies: HTTP/1.1 `CONNECT` with its bounded
//! answer reader, HTTP/2 `CONNECT`, the authentication schemes (the choice
//! among them, Digest, NTLM, and Negotiate with its feature), and SOCKS.
//! Pure codecs and handshakes over a stream; nothing here dials or decides
//! a route.

pub(crate) mod auth;
pub(crate) mod digest;
pub(crate) mod http1;
pub(crate) mod http2;
#[cfg(test)]
mod lab_tests;
#[cfg(all(feature = "negotiate", unix))]
pub(crate) mod negotiate;
pub(crate) mod ntlm;
pub(crate) mod socks;

//! [`ProxyConnectLayer`]: the route to the target, established before TLS.
//!
//! The layer sits directly above a base connector (hyper-util's
//! `HttpConnector`, or any `Service<Uri>` whose stream implements
//! [`Transport`](crate::Transport)). For each target URI it dials the first
//! hop, and when a proxy is configured, sends
//!
//! ```text
//! CONNECT example.com:443 HTTP/1.1
//! Host: example.com:443
//! Proxy-Authorization: Basic ...      (when credentials are set)
//! ```
//!
//! and reads the answer with a bounded buffer. On any 2xx it yields a
//! [`Routed`] stream: the same connection, now a tunnel to the target. Only
//! [`TlsLayer`](crate::TlsLayer) accepts a `Routed` stream, so TLS to the
//! target can never start on a connection whose tunnel does not exist.
//!
//! The base connector is asked for `http://host:port/` of the first hop
//! (the proxy, or the target for a direct route), with the port explicit,
//! so `HttpConnector::new()` works as it is for `https://` targets. After
//! the dial the layer turns Nagle's algorithm off on the stream
//! ([`Transport::set_nodelay`](crate::Transport::set_nodelay); opt out with
//! [`ProxyConnectLayer::with_nodelay`]).
//!
//! # Example
//!
//! ```
//! use hyper_util::client::legacy::connect::HttpConnector;
//! use tower::ServiceBuilder;
//! use tower_tunnel::{Proxy, ProxyConnectLayer};
//!
//! let proxy = Proxy::new("http://user:secret@127.0.0.1:3128")?;
//! let routed = ServiceBuilder::new()
//!     .layer(ProxyConnectLayer::new(proxy))
//!     .service(HttpConnector::new());
//! # let _ = routed;
//! # Ok::<(), tower_tunnel::Error>(())
//! ```
//!
//! # Errors
//!
//! | what happened | [`ErrorKind`](crate::ErrorKind) |
//! |---|---|
//! | the proxy could not be reached | `Dial` |
//! | an `https://` proxy, and no [`with_proxy_tls`](ProxyConnectLayer::with_proxy_tls) | `ProxyTlsNotConfigured` (nothing dialed) |
//! | the TLS handshake with an `https://` proxy failed | `ProxyTls` |
//! | a phase took longer than its timeout | `Timeout` |
//! | `407 Proxy Authentication Required` | `ProxyAuthRequired` (challenges kept) |
//! | any other non-2xx (`403`, `502`, ...) | `ProxyRefused` (status, reason, headers kept) |
//! | closed before answering / in the middle | `ProxyClosed` / `ProxyTruncated` |
//! | more than 16 KiB or 64 headers | `ProxyHeadersTooLarge` |
//! | not HTTP (garbage, a TLS record) | `ProxyMalformed` |
//! | `HTTP/2.0` or `HTTP/9.9` status line | `ProxyBadVersion` |
//!
//! # Optimistic data
//!
//! With [`Proxy::with_optimistic_data`](crate::Proxy::with_optimistic_data),
//! the layer does not wait for the answer: the `CONNECT` (or the SOCKS
//! request) is queued in the [`Routed`] stream and leaves in the same write
//! as the first bytes written to it, the target's `ClientHello`, and the
//! answer is read before the first byte read from it. On an HTTP/2
//! connection to the proxy the `CONNECT` stream's HEADERS go at once and
//! what is written to the stream follows as DATA, without waiting for the
//! `:status`. Every error of the table above then arrives through
//! [`TlsLayer`](crate::TlsLayer), as the same [`Error`](crate::Error); a
//! layer of your own reading a `Routed` stream gets it inside an
//! `io::Error` (`get_ref()` downcasts to it). An HTTP/2 stream the proxy
//! never processed is sent again once, bytes included, to the same proxy;
//! nothing else is ever sent twice.
//!
//! # `https://` proxies
//!
//! TLS to the proxy belongs to the route, so the layer does it itself, with
//! the config given to [`ProxyConnectLayer::with_proxy_tls`]: SNI and the
//! certificate name are the proxy's, the `CONNECT` runs inside that TLS,
//! and the target's own TLS ([`TlsLayer`](crate::TlsLayer)) inside the
//! tunnel. A route through an `https://` proxy with no proxy TLS config
//! fails before anything is dialed.
//!
//! # HTTP/2 to the proxy
//!
//! An `https://` proxy whose TLS handshake selects ALPN `h2` gets each
//! `CONNECT` as an HTTP/2 request (RFC 9113 §8.5), and the tunnels through
//! it share one connection, as many at once as the proxy's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` allow (another connection opens past
//! that); the tunnel is the stream. The layer keeps these connections,
//! shared by its clones and keyed by the proxy's address and credentials.
//! A refusal on one stream fails that tunnel alone, with the same errors as
//! HTTP/1.1. After a `GOAWAY` the open tunnels run on and new ones go to a
//! new connection; a `CONNECT` the proxy says it never processed is sent
//! again once; a connection on which a `CONNECT` went unanswered past the
//! connect timeout takes no new tunnel.
//! [`ProxyConnectLayer::with_h2_keep_alive`] pings the connections and
//! closes one that stops answering. [`Proxy::with_http2`](crate::Proxy::with_http2) requires or forbids it per
//! proxy; the route reads `tunnel via h2 proxy 127.0.0.1:8443 (stream 5)`.
//!
//! Lenient where curl is: bare LF line endings, `HTTP/1.0`, interim `1xx`
//! responses before the final one, and `Content-Length` on the 2xx (which
//! RFC 9110 §9.3.6 says to ignore) are all accepted.

mod connect;
pub mod future;
mod handshake;
mod layer;
mod optimistic;
mod optimistic_h2;
mod pool;
pub(crate) mod protocol;
mod proxy_tls;
mod routed;
mod service;

use std::time::Duration;

pub use self::layer::ProxyConnectLayer;
pub(crate) use self::optimistic::unwrap_error;
pub use self::routed::{Routed, Tunnel};
pub use self::service::ProxyConnect;

use self::proxy_tls::ProxyTlsConfig;
use crate::route::Proxies;

/// What a [`ProxyConnectLayer`] was configured with; shared by its
/// services.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) proxies: Proxies,
    pub(crate) dial_timeout: Option<Duration>,
    pub(crate) proxy_tls_timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) max_response_bytes: usize,
    pub(crate) nodelay: bool,
    pub(crate) proxy_tls: Option<ProxyTlsConfig>,
    pub(crate) h2_keep_alive: Option<Duration>,
}

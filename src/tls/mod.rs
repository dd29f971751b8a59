//! [`TlsLayer`]: rustls to the target, over the route, with ALPN.
//!
//! The layer accepts only [`Routed`](crate::Routed) streams, made by
//! [`ProxyConnectLayer`](crate::ProxyConnectLayer), so it always runs inside
//! the tunnel. For `https://` targets it performs the TLS handshake with the
//! target's host as SNI and as the name the certificate must carry (never
//! the proxy's), offering ALPN `h2` and `http/1.1` unless told otherwise.
//! `http://` targets pass through as plain streams.
//!
//! One `Arc<rustls::ClientConfig>` serves every connection the layer makes,
//! so TLS sessions resume across connections.
//!
//! The resulting [`TlsStream`] implements hyper's `rt::Read` and `rt::Write`
//! and hyper-util's `Connection` (with `negotiated_h2()` when ALPN said
//! `h2`), so a stack that ends here is a connector for
//! `hyper_util::client::legacy::Client` and for tonic's
//! `Endpoint::connect_with_connector`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use hyper_util::client::legacy::connect::HttpConnector;
//! use tower::ServiceBuilder;
//! use tower_tunnel::{ProxyConnectLayer, TlsLayer};
//!
//! # fn config() -> Arc<rustls::ClientConfig> {
//! #     let provider = Arc::new(rustls::crypto::ring::default_provider());
//! #     Arc::new(rustls::ClientConfig::builder_with_provider(provider)
//! #         .with_safe_default_protocol_versions().unwrap()
//! #         .with_root_certificates(rustls::RootCertStore::empty())
//! #         .with_no_client_auth())
//! # }
//! let tls: Arc<rustls::ClientConfig> = config();
//! let connector = ServiceBuilder::new()
//!     .layer(TlsLayer::new(tls).with_http1_only())
//!     .layer(ProxyConnectLayer::direct())
//!     .service(HttpConnector::new());
//! # let _ = connector;
//! ```
//!
//! # Errors
//!
//! [`ErrorKind::Tls`](crate::ErrorKind::Tls) when the handshake fails (the
//! rustls error is the source), [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)
//! in [`Phase::Tls`](crate::Phase::Tls) when it takes too long, and
//! [`ErrorKind::AlpnMismatch`](crate::ErrorKind::AlpnMismatch) when HTTP/2
//! alone was offered and the target did not select it.

pub mod future;
mod layer;
mod service;
mod stream;

pub use self::layer::TlsLayer;
pub use self::service::TlsConnect;
pub use self::stream::{MaybeTlsStream, TlsStream};

pub(crate) const H2: &[u8] = b"h2";
pub(crate) const HTTP11: &[u8] = b"http/1.1";

//! Tower middleware that takes outbound HTTP clients through proxies:
//! `CONNECT` tunnels, TLS to the target and ALPN dispatch, in an order the
//! compiler enforces.
//!
//! Three layers, stacked with `tower::ServiceBuilder`. The first layer added
//! to the builder is the outermost, so a correct stack reads top-down:
//!
//! ```text
//! AlpnDispatchLayer   ALPN said h2 -> HTTP/2, else HTTP/1.1 -> a ready HttpConnection
//! TlsLayer            rustls to the target (SNI = target host), ALPN offer
//! ProxyConnectLayer   the route: direct, or a CONNECT tunnel through the proxy
//! base connector      TCP to the first hop (hyper-util's HttpConnector, or your own)
//! ```
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "test-util")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::connect::HttpConnector;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_tunnel::test_util::{TestOrigin, TestProxy};
//! use tower_tunnel::{AlpnDispatchLayer, Proxy, ProxyConnectLayer, TlsLayer};
//!
//! // An in-process CONNECT proxy and TLS origin on 127.0.0.1.
//! let proxy = TestProxy::start().await?;
//! let origin = TestOrigin::start().await?;
//!
//! let connect = ServiceBuilder::new()
//!     .layer(AlpnDispatchLayer::new())
//!     .layer(TlsLayer::new(origin.client_config()))
//!     .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url())?))
//!     .service(HttpConnector::new());
//!
//! let mut conn = connect.oneshot(origin.https_url().parse()?).await?;
//! let req = http::Request::get("/").body(Empty::<Bytes>::new())?;
//! let res = conn.send_request(req).await?;
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.version(), http::Version::HTTP_2);
//! assert!(!conn.info().route().is_direct());
//! assert_eq!(origin.direct_connections(), 0);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "test-util"))]
//! # fn main() {}
//! ```
//!
//! # Order in the types
//!
//! Each layer accepts only what the layer below produces: a [`Transport`]
//! for [`ProxyConnectLayer`], a [`Routed`] stream for [`TlsLayer`], a
//! [`TlsStream`] for [`AlpnDispatchLayer`]. TLS to the target therefore
//! cannot start before the tunnel exists, which is the mistake that turns a
//! proxy's `407` into "not an SSL/TLS record". A misordered stack fails to
//! compile where it is used, with a message that names the rule:
//!
//! ```text
//! error[E0277]: `TokioIo<TcpStream>` has no route: TlsLayer must sit above ProxyConnectLayer
//! ```
//!
//! See [`stage`] for the traits and the table of stages.
//!
//! # Other clients
//!
//! The stack up to [`TlsLayer`] is a hyper-util connector (its stream
//! implements `Connection` and reports `negotiated_h2()`), so hyper-util's
//! pooled `Client` and tonic's `Endpoint::connect_with_connector` take it
//! as it is.
//!
//! # Errors and connection info
//!
//! Every failure is an [`Error`] that says which [`Phase`] failed and why,
//! naming the proxy and the target; proxy credentials never appear in any
//! `Debug` or `Display`. Every connection carries a [`ConnectionInfo`]:
//! route, ALPN, TLS version, resumption and per-phase timings.
//!
//! # Features
//!
//! - `test-util`: an in-process CONNECT proxy and TLS origin on loopback
//!   ([`test_util`]), for your tests and this crate's.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod dispatch;
pub mod error;
pub mod info;
pub mod proxy;
pub mod stage;
mod target;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
pub mod tls;

/// A boxed error, as tower and hyper use: `Box<dyn Error + Send + Sync>`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// The README's example is compiled as a doc test, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use crate::dispatch::{AlpnDispatch, AlpnDispatchLayer, HttpConnection};
pub use crate::error::{Error, ErrorKind, Phase, ProxyResponse};
pub use crate::info::{ConnectionInfo, Route, Timings};
pub use crate::proxy::{Proxy, ProxyConnect, ProxyConnectLayer, Routed};
pub use crate::stage::{Negotiated, RoutedStream, Transport};
pub use crate::tls::{TlsConnect, TlsLayer, TlsStream};

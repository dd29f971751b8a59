//! [`ForwardProxyLayer`]: the proxy's headers on each request forwarded to
//! an HTTP proxy.
//!
//! An `http://` target through an HTTP proxy is not tunnelled: each request
//! goes to the proxy in absolute-form (`GET http://example.com/ HTTP/1.1`),
//! and the proxy reads its `Proxy-Authorization` on every request. The
//! connector stack cannot add it, since the request is written by the
//! client above it; so this layer does, around hyper-util's `Client` or any
//! other `Service<http::Request<B>>`. It asks
//! [`Proxies::forward_headers`](crate::Proxies::forward_headers) (the same
//! rules as the [`ProxyConnectLayer`](crate::ProxyConnectLayer) below the
//! client) and sets the proxy's headers on the requests that are forwarded;
//! requests that are tunnelled or go direct pass through untouched.
//!
//! [`HttpConnection`](crate::HttpConnection), the connection
//! [`AlpnDispatchLayer`](crate::AlpnDispatchLayer) hands out, does the same
//! for its own route and needs no layer.
//!
//! # Digest
//!
//! A proxy that answers `407` with a Digest challenge (RFC 7616) is
//! answered: when the request has an empty body (`GET`, `HEAD`, ...) it is
//! sent again at once with the Digest answer; a request with a body is not
//! replayed (the `407` comes back), and the challenge is kept, so the next
//! request to that proxy carries the answer up front. The nonce count goes
//! up by one per request, and a `stale=true` challenge replaces the kept
//! one.
//!
//! # Example
//!
//! ```no_run
//! # async fn doc() -> Result<(), tower_tunnel::BoxError> {
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::{connect::HttpConnector, Client};
//! use hyper_util::rt::TokioExecutor;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_tunnel::{ForwardProxyLayer, Proxies, ProxyConnectLayer};
//! # let tls: std::sync::Arc<rustls::ClientConfig> = unimplemented!();
//!
//! let route = ProxyConnectLayer::from_proxies(Proxies::from_env()?);
//! let connector = ServiceBuilder::new()
//!     .layer(tower_tunnel::TlsLayer::new(tls))
//!     .layer(route.clone())
//!     .service(HttpConnector::new());
//! let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
//! let mut client = ServiceBuilder::new()
//!     .layer(ForwardProxyLayer::from(&route))
//!     .service(client);
//! let req = http::Request::get("http://example.com/").body(Empty::new())?;
//! let res = client.ready().await?.call(req).await?;
//! # let _ = res; Ok(()) }
//! ```
//!
//! # Errors
//!
//! The inner service's, unchanged: this layer fails nothing on its own.

pub mod future;
mod layer;
mod service;

pub use self::layer::ForwardProxyLayer;
pub use self::service::ForwardProxy;

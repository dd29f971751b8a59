//! [`AlpnDispatchLayer`]: HTTP/2 if ALPN said `h2`, else HTTP/1.1.
//!
//! The top of the stack. It accepts only negotiated streams (made by
//! [`TlsLayer`](crate::TlsLayer)), runs hyper's HTTP/2 or HTTP/1.1 client
//! handshake on them, spawns the connection task (on tokio unless
//! [`AlpnDispatchLayer::with_executor`] says otherwise) and yields a ready
//! [`HttpConnection`]: a `tower::Service<http::Request<B>>`.
//!
//! Use it when you want one connection at a time as a tower service. For a
//! pool of connections, hand the stack below it (ending at `TlsLayer`) to
//! hyper-util's `Client` instead.
//!
//! # Example
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::connect::HttpConnector;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_tunnel::{AlpnDispatchLayer, Proxy, ProxyConnectLayer, TlsLayer};
//!
//! # async fn doc(tls: std::sync::Arc<rustls::ClientConfig>) -> Result<(), tower_tunnel::Error> {
//! let connect = ServiceBuilder::new()
//!     .layer(AlpnDispatchLayer::new())
//!     .layer(TlsLayer::new(tls))
//!     .layer(ProxyConnectLayer::new(Proxy::new("http://127.0.0.1:3128")?))
//!     .service(HttpConnector::new());
//! let mut conn = connect.oneshot("https://example.com".parse().unwrap()).await?;
//! let req = http::Request::get("/").body(Empty::<Bytes>::new()).unwrap();
//! let res = conn.send_request(req).await?;
//! println!("{:?} {} via {}", res.version(), res.status(), conn.info().route());
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! [`ErrorKind::Handshake`](crate::ErrorKind::Handshake) when the HTTP
//! handshake fails, [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) in
//! [`Phase::Dispatch`](crate::Phase::Dispatch) when it takes too long, and
//! [`ErrorKind::Request`](crate::ErrorKind::Request) for a failed request
//! on the connection. Errors from the layers below pass through unchanged.

mod connection;
mod exec;
pub mod future;
mod layer;
mod service;

pub use self::connection::HttpConnection;
pub use self::exec::BoxTask;
pub use self::layer::AlpnDispatchLayer;
pub use self::service::AlpnDispatch;

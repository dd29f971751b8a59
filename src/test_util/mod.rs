//! Loopback fixtures for testing proxy-aware clients: an HTTP proxy and a TLS origin.
//!
//! Available with the `test-util` feature. These are the fixtures the crate's own tests run
//! on, and they work for any client, not only this crate's stack:
//!
//! - [`TestProxy`]: a CONNECT and forward proxy on `127.0.0.1` that records every request
//!   head, can require Basic credentials, and can misbehave on purpose ([`Fault`]).
//! - [`TestOrigin`]: an HTTPS server on `127.0.0.1` with a certificate from a test CA,
//!   configurable ALPN, and counters that tell connections a `TestProxy` carried from
//!   direct ones, so a test can prove a request did not bypass the proxy.
//! - [`TestH2Proxy`]: an `https://` CONNECT proxy speaking HTTP/2 and HTTP/1.1, counting
//!   connections and streams, for clients that share one proxy connection among tunnels.
//! - [`FaultRelay`]: a TCP relay in front of any of them that resets, stalls, half-closes
//!   or drops a connection at a chosen byte of either direction, or drips it
//!   ([`RelayFault`]), and counts connections and bytes each way.
//! - [`client_config`], [`ca_pem`], [`tls_acceptor`] and friends: the same test CA and
//!   certificate, for clients and for servers of your own (a tonic server, say).
//!
//! Every fixture binds port 0 on loopback, runs on the current tokio runtime, and stops
//! when dropped. The proxy only dials loopback targets.
//!
//! # Example
//!
//! An HTTPS request through a CONNECT tunnel, by hand:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tower_tunnel::test_util::{client_config, TestOrigin, TestProxy};
//!
//! let origin = TestOrigin::builder().alpn(vec![b"http/1.1".to_vec()]).start().await?;
//! let proxy = TestProxy::start().await?;
//!
//! let mut tcp = tokio::net::TcpStream::connect(proxy.addr()).await?;
//! let target = origin.authority();
//! tcp.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes()).await?;
//! let mut answer = [0; 39];
//! tcp.read_exact(&mut answer).await?;
//! assert!(answer.starts_with(b"HTTP/1.1 200"));
//!
//! let tls = tokio_rustls::TlsConnector::from(client_config());
//! let mut tls = tls.connect("localhost".try_into()?, tcp).await?;
//! tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await?;
//! let mut response = String::new();
//! tls.read_to_string(&mut response).await?;
//! assert!(response.contains("x-origin-via-proxy: true"));
//! assert_eq!(origin.proxied_connections(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! Starting a fixture fails only if no loopback port can be bound. Everything that goes
//! wrong on a connection afterwards (a client's garbage, a reset) ends that connection
//! alone; the fixtures never panic on what they receive.

mod certs;
mod h2_proxy;
mod origin;
mod proxy;
mod relay;
mod server;

pub use certs::{ca_der, ca_pem, client_config, root_store, server_config, tls_acceptor};
pub use h2_proxy::{H2StreamLog, TestH2Proxy, TestH2ProxyBuilder};
pub use origin::{TestOrigin, TestOriginBuilder, HELLO_BODY};
pub use proxy::{Fault, RecordedRequest, TestProxy, TestProxyBuilder};
pub use relay::{Chunk, Direction, FaultRelay, FaultRelayBuilder, RelayFault};

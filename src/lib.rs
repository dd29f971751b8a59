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
//! [`TlsStream`] for [`AlpnDispatchLayer`]. Each stage hands the next its
//! stream and its [`ConnectionInfo`] by value. TLS to the target therefore
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
//! # Routes
//!
//! [`ProxyConnectLayer`] picks the route per target from [`Proxies`]: a
//! proxy per scheme, a fallback, a [`NoProxy`] bypass list and a custom
//! matcher, or the environment read as curl reads it
//! ([`ProxyConnectLayer::from_env`]) or as gRPC core does
//! ([`Proxies::from_grpc_env`]), or the operating system's proxy settings
//! ([`ProxyConnectLayer::from_system`]: the environment, then GNOME, KDE,
//! Windows or macOS settings, read into a [`SystemSettings`]; a decision
//! the desktop's settings made carries a [`Rule::System`] naming the setting
//! that chose).
//!
//! | proxy | `https://` target | `http://` target |
//! |---|---|---|
//! | none, or bypassed | direct | direct |
//! | `http://` | `CONNECT` tunnel | forwarded in absolute-form ([`Proxy::with_http_tunneling`] tunnels instead) |
//! | `https://` | `CONNECT` inside TLS to the proxy ([`ProxyConnectLayer::with_proxy_tls`]), target TLS inside that; over HTTP/2 when the proxy selects `h2`, many tunnels sharing one proxy connection ([`Http2Mode`]) | forwarded inside TLS to the proxy |
//! | `socks5://`, `socks5h://`, `socks4a://`, `socks4://` (and `socks://`, SOCKS4 as curl reads it) | SOCKS tunnel | SOCKS tunnel |
//! | any of these [`with_preproxy`](Proxy::with_preproxy) (curl's `--preproxy`) | the same, reaching the proxy through a tunnel of the pre-proxy (SOCKS or `CONNECT`; an `https://` proxy gets its TLS inside it) | the same |
//!
//! `ws://` and `wss://` targets take the routes of `http://` and `https://`,
//! except that a WebSocket is never forwarded: an HTTP proxy gets a
//! `CONNECT`, and `wss://` is offered ALPN `http/1.1` alone (RFC 6455 runs
//! over HTTP/1.1). Put tokio-tungstenite's `client_async` on the stack up to
//! [`TlsLayer`]; `examples/fetch.rs` does for `ws://` URLs.
//!
//! Credentials go in the proxy URL or [`Proxy::with_basic_auth`]: Basic up
//! front, Digest (RFC 7616, MD5 and SHA-256) answered on a `407` that asks
//! for it, RFC 1929 for SOCKS5. `Proxy-Authorization` only ever goes to the
//! proxy: [`HttpConnection`] removes it from requests sent through a tunnel.
//!
//! A forwarded `http://` request carries the proxy's headers itself, so they
//! are a concern of the request, not of the connection:
//! [`Proxies::forward_headers`] says what they are, [`HttpConnection`] adds
//! them for its own route, and [`ForwardProxyLayer`] adds them (and answers
//! Digest) for hyper-util's `Client` or any other request service.
//!
//! [`Proxy`] is a plain value; the HTTP/2 connections to `https://` proxies
//! belong to the [`ProxyConnectLayer`] (shared by its clones), and Nagle's
//! algorithm is turned off after every dial
//! ([`ProxyConnectLayer::with_nodelay`]).
//!
//! # Corporate proxies
//!
//! Proxies of large organisations ask for NTLM or Kerberos. Pick the
//! scheme with [`Proxy::with_auth`] ([`ProxyAuth`]):
//!
//! | mode | pick it when | what goes on the wire |
//! |---|---|---|
//! | `Basic` (default) | the proxy takes Basic, over a network you trust | `Proxy-Authorization: Basic` on the first `CONNECT`; a Digest challenge is answered |
//! | `Any` | you do not know, or do not want a password sent before the proxy asks (curl's `--proxy-anyauth`) | nothing first; then the strongest scheme the `407` offers: Negotiate, NTLM, Digest, Basic |
//! | `Ntlm` | the proxy asks for NTLM (Windows domains) | NTLM negotiate, challenge and NTLMv2 authenticate, on one connection; user as `DOMAIN\user` (`DOMAIN%5Cuser` in a URL) or `user@domain` |
//! | `Negotiate` | Kerberos, with a ticket from `kinit` (feature `negotiate`, Unix GSSAPI) | an SPNEGO token for `HTTP@proxy-host`; no password in the program |
//! | `Digest` | the proxy must never see a clear-text password | Digest only |
//!
//! NTLM and Negotiate authenticate the connection: each `407`'s body is
//! read to its end and the next step sent on the same connection, which is
//! dialed again once when the proxy closes it mid-handshake. HTTP/2 has no
//! connection-bound authentication, so an `https://` proxy is spoken to in
//! HTTP/1.1 in those modes. In every mode but `Basic`, `http://` targets
//! are tunnelled, so the handshake runs once, on the `CONNECT`.
//! [`ConnectionInfo::proxy_auth`] says which scheme the proxy accepted.
//! Tokens and NTLM messages never appear in errors (challenges show as
//! `NTLM <token>`) or traces. Interop: squid with `ntlm_fake_auth`, squid
//! with `negotiate_kerberos_auth` against an MIT KDC on loopback, and a
//! squid that refuses Basic outright (`.ci/interop`).
//!
//! # Proxy lists and failover
//!
//! A rule may give an ordered [`ProxyList`] (`PROXY a:3128; PROXY b:3128;
//! DIRECT`, the form PAC scripts answer with) wherever it takes a
//! [`Proxy`]. The connector tries the hops in order and moves on only when
//! a hop cannot be reached (dial refused or timed out, proxy TLS failed,
//! closed or silent before answering); a proxy's answer, a `403` or a
//! `407`, is the error and never falls through to the next hop or to
//! `DIRECT`. A hop that could not be reached is tried last for five
//! minutes. [`Decision::skipped`] and [`ConnectionInfo::skipped`] say which
//! hops were passed over and why; see [`Proxies`], "Proxy lists and
//! failover". Tests: `tests/failover.rs`.
//!
//! Such lists usually come from a PAC script (feature `pac`):
//! `Proxies::from_pac_url`, `Proxies::from_pac_script`, or WPAD's DNS
//! method, `Proxies::from_wpad` (feature `wpad`); or from the desktop's
//! settings, [`Proxies::from_system`]. The script runs on an embedded
//! QuickJS off the async runtime, within a time budget and a memory limit,
//! and its answers are cached per target; a script that fails is an error,
//! never a silent direct connection. See the `route::pac` module; tests:
//! `tests/pac.rs`, `tests/pac_conformance.rs` (Chromium's and pacparser's
//! suites, and a cross-check against pacparser), `tests/pac_interop.rs`
//! (real squid and tinyproxy). `cargo run --features pac --example fetch --
//! --proxy-pac URL|FILE URL` shows a script's answer, the hop used and the
//! hops skipped.
//!
//! # Where it plugs in
//!
//! The same layers serve every client shape:
//!
//! | client | stack | shown in |
//! |---|---|---|
//! | a tower service per connection | `AlpnDispatchLayer` over `TlsLayer` over `ProxyConnectLayer` | the example above, `examples/demo.rs` |
//! | hyper-util's pooled `Client` | `TlsLayer` over `ProxyConnectLayer`, as the connector | `examples/hyper_util_client.rs` |
//! | tonic (gRPC) | `TlsLayer::with_http2_only()` over `ProxyConnectLayer`, in `Endpoint::connect_with_connector` | `examples/grpc_via_proxy.rs` |
//! | an axum handler calling out | the tower stack with `TimeoutLayer` and `ConcurrencyLimitLayer` on top | `examples/axum_outbound.rs` |
//!
//! hyper-util's `Client`, with the stack that ends at [`TlsLayer`] (its
//! stream implements `Connection`, reports `negotiated_h2()`, and
//! `proxy(true)` for forwarded `http://` targets; each response carries the
//! [`ConnectionInfo`] in its extensions), and [`ForwardProxyLayer`] around
//! the client for the proxy's credentials on forwarded `http://` requests:
//!
//! ```no_run
//! # async fn doc(tls: std::sync::Arc<rustls::ClientConfig>) -> Result<(), tower_tunnel::BoxError> {
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::{connect::HttpConnector, Client};
//! use hyper_util::rt::TokioExecutor;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_tunnel::{ConnectionInfo, ForwardProxyLayer, ProxyConnectLayer, TlsLayer};
//!
//! let route = ProxyConnectLayer::from_env()?;
//! let connector = ServiceBuilder::new()
//!     .layer(TlsLayer::new(tls))
//!     .layer(route.clone())
//!     .service(HttpConnector::new());
//! let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
//! let mut client = ServiceBuilder::new()
//!     .layer(ForwardProxyLayer::from(&route))
//!     .service(client);
//! let req = http::Request::get("https://example.com/").body(Empty::new())?;
//! let res = client.ready().await?.call(req).await?;
//! println!("{}", res.extensions().get::<ConnectionInfo>().unwrap());
//! # Ok(()) }
//! ```
//!
//! tonic, with the same stack speaking HTTP/2 only (use tonic without its
//! `tls-*` features: the TLS here is the stack's):
//!
//! ```no_run
//! # async fn doc(tls: std::sync::Arc<rustls::ClientConfig>) -> Result<(), tower_tunnel::BoxError> {
//! # use hyper_util::client::legacy::connect::HttpConnector;
//! # use tower::ServiceBuilder;
//! # use tower_tunnel::{Proxy, ProxyConnectLayer, TlsLayer};
//! let channel = tonic::transport::Endpoint::from_static("https://grpc.example.com")
//!     .connect_with_connector(
//!         ServiceBuilder::new()
//!             .layer(TlsLayer::new(tls).with_http2_only())
//!             .layer(ProxyConnectLayer::new(Proxy::new("http://proxy.corp:3128")?))
//!             .service(HttpConnector::new()),
//!     )
//!     .await?;
//! # let _ = channel; Ok(()) }
//! ```
//!
//! # Tracing
//!
//! Each connection gets one `tower_tunnel::connect` span with the target,
//! the proxy (`scheme://host:port`, never its credentials), the rule that
//! chose it and, once known, the route; every phase logs a `DEBUG` event
//! with its duration under it:
//!
//! ```text
//! DEBUG tower_tunnel::connect{target=localhost:43299 proxy=http://127.0.0.1:41699 rule=the proxy for all schemes (all_proxy)}: tower_tunnel::proxy::connect: dialed first hop elapsed=554.419µs
//! DEBUG tower_tunnel::connect{..}: tower_tunnel::proxy::connect: proxy opened CONNECT tunnel elapsed=894.237µs
//! DEBUG tower_tunnel::connect{.. route=tunnel via 127.0.0.1:41699}: tower_tunnel::proxy::connect: route established route=tunnel via 127.0.0.1:41699
//! DEBUG tower_tunnel::connect{..}: tower_tunnel::tls::future: TLS handshake done tls_version=Some(TLSv1_3) alpn="h2" resumed=false elapsed=3.208516ms
//! DEBUG tower_tunnel::connect{..}: tower_tunnel::dispatch::service: HTTP handshake done version="HTTP/2" elapsed=334.777µs
//! ```
//!
//! # Errors and connection info
//!
//! Every failure is an [`Error`] that says which [`Phase`] failed and why,
//! naming the proxy and the target; proxy credentials never appear in any
//! `Debug` or `Display`. Every connection carries a [`ConnectionInfo`]:
//! route, ALPN, TLS version, resumption and per-phase timings.
//!
//! # Failure modes
//!
//! What a misbehaving proxy or network looks like to your code. Every case is an
//! [`Error`] naming the proxy `P` and the target `T`; [`Error::kind`] is in
//! brackets. CONNECT failures have [`Phase::ProxyConnect`], and TLS to the target
//! never starts after one. Each row is a test in `tests/faults.rs` (the rows of
//! `https://` proxies: `tests/routes.rs`, the unreachable proxy: `tests/redesign.rs`).
//!
//! | failure | message the user sees | what to do |
//! |---|---|---|
//! | `407`, with or without a challenge | `proxy P refused CONNECT to T: 407 Proxy Authentication Required (Basic realm="corp")` \[`ProxyAuthRequired`\] | set credentials in the proxy URL or with [`Proxy::with_basic_auth`]; the challenges are in [`ProxyResponse::challenges`] |
//! | `403`, `502` (an HTML body is ignored), `504`, `101`, any non-2xx | `proxy P refused CONNECT to T: 502 Bad Gateway` \[`ProxyRefused`\] | the proxy's policy or its upstream: status, reason and headers are in [`Error::proxy_response`] |
//! | not HTTP (an SSH banner, garbage) | `proxy P sent a malformed answer to CONNECT to T: not an HTTP response` \[`ProxyMalformed`\] | the address is not an HTTP proxy |
//! | a TLS record instead of HTTP | `proxy P sent a malformed answer to CONNECT to T: it sent a TLS record, not HTTP: is it an https:// proxy?` \[`ProxyMalformed`\] | the proxy expects TLS itself: write it as `https://` and give [`ProxyConnectLayer::with_proxy_tls`] a config |
//! | closed (or reset) before answering | `proxy P closed the connection without answering CONNECT to T` \[`ProxyClosed`\] | proxy overloaded, or an access rule that drops clients; the `io::Error` of a reset is the source |
//! | closed mid-answer (truncated status line, no final blank line) | `proxy P closed the connection in the middle of its answer to CONNECT to T` \[`ProxyTruncated`\] | a broken proxy or middlebox; retry, then report it |
//! | silence, or an answer dripped slowly | `proxy P did not answer CONNECT to T within 30s` \[`Timeout`\] | one deadline covers the whole exchange ([`ProxyConnectLayer::with_connect_timeout`]), so a drip fails on time |
//! | endless headers | `proxy P answer to CONNECT to T is too large: more than 64 headers` (or `more than 16384 bytes of headers`) \[`ProxyHeadersTooLarge`\] | reading stops at the cap, memory stays bounded by it; raise it with [`ProxyConnectLayer::with_max_response_bytes`] only for a proxy known to be verbose |
//! | `HTTP/9.9 200`, `HTTP/2.0 200` | `proxy P answered CONNECT to T with an unsupported HTTP version: HTTP/9.9` \[`ProxyBadVersion`\] | the proxy speaks something else; check the port |
//! | the proxy is unreachable | `could not connect to proxy P for T` \[`Dial`\] | check the proxy URL and that it is up; the `io::Error` is the source |
//! | an `https://` proxy and no proxy TLS config | `proxy P for T is an https:// proxy, and ProxyConnectLayer has no TLS config for proxies (...)` \[`ProxyTlsNotConfigured`\], nothing dialed | [`ProxyConnectLayer::with_proxy_tls`] |
//! | the proxy's own certificate | `TLS handshake with proxy P failed` \[`ProxyTls`\] | the rustls error is the source; give `with_proxy_tls` the proxy's roots |
//! | the target's certificate | `TLS handshake with T via proxy P failed` \[`Tls`\] | the rustls error is the source; a TLS-intercepting proxy needs its CA in your roots |
//!
//! Accepted, as curl accepts them: `HTTP/1.0 200`, interim `1xx` answers before the
//! final one (`101` is final, and a refusal), any `2xx` (`204`, `299`), `Content-Length`
//! on the `2xx` (ignored: RFC 9110 §9.3.6), bare LF line endings, and tunnel bytes in
//! the same read as the answer (replayed, never dropped). Proxy credentials never
//! appear in any `Debug`, `Display`, error source or tracing output.
//!
//! An `https://` proxy speaking HTTP/2 carries many tunnels on one connection
//! (`tests/h2_proxy.rs`):
//!
//! | failure | what happens | what to do |
//! |---|---|---|
//! | the proxy's `SETTINGS_MAX_CONCURRENT_STREAMS` reached, or lowered below the open tunnels | the next tunnel opens another connection to the proxy | nothing |
//! | `GOAWAY` (a graceful reload) | open tunnels run on; new ones open a new connection; a `CONNECT` above its last stream id, or reset with `REFUSED_STREAM`, is sent again once ([`ConnectionInfo::is_h2_retried`]) | nothing |
//! | a second `GOAWAY` for the same tunnel | `proxy P closed the connection without answering CONNECT to T: its HTTP/2 connection is going away (GOAWAY NO_ERROR) and did not process the stream` \[`ProxyClosed`\] | retry later: the proxy is shutting down |
//! | the connection goes silent (no FIN, no RST: a NAT or firewall forgot it, the proxy's host is gone) | the tunnel being opened fails with `proxy P did not answer CONNECT to T within D` \[`Timeout`\]; that connection takes no new tunnel, and the next connect opens a fresh one; with [`ProxyConnectLayer::with_h2_keep_alive`] the connection is closed within two intervals, its tunnels failing as when the proxy dies (next row), before any new tunnel pays the timeout | retry; turn keep-alive on where NATs or firewalls drop idle connections |
//! | the proxy dies (killed, or a reset at any byte) with tunnels open | each tunnel's next request fails with `request to T via proxy P failed` \[`Request`\]; its reads and writes fail with an `io::Error` carrying `I/O error with T via proxy P: the proxy's HTTP/2 connection under the tunnel failed` \[`Io`\]; the next connect opens a fresh connection | reconnect |
//!
//! A connection to the first hop that breaks at any byte of a handshake (reset,
//! stalled, half-closed or closed, either way) ends in an [`Error`] of the phase it
//! hit, within the timeouts of the phases so far: `tests/fault_walk.rs` walks the
//! `CONNECT`, SOCKS5, proxy TLS (`CONNECT` over HTTP/1.1 and HTTP/2) and target TLS
//! exchanges byte by byte with `test_util::FaultRelay`.
//!
//! # Modules
//!
//! Imports point down the stack, so each module can be read knowing only
//! the ones below it:
//!
//! | module | what it holds |
//! |---|---|
//! | [`dispatch`] | [`AlpnDispatchLayer`] and [`HttpConnection`] |
//! | [`forward`] | [`ForwardProxyLayer`]: the proxy's headers on forwarded requests |
//! | [`tls`] | [`TlsLayer`] and the [`TlsStream`] |
//! | [`proxy`] | [`ProxyConnectLayer`], the [`Routed`] stream, and the wire protocols spoken to proxies |
//! | [`stage`] | the stage traits that order the layers |
//! | [`info`] | [`ConnectionInfo`]: how a connection was made |
//! | [`route`] | where routes come from: [`Proxy`], [`Proxies`], [`NoProxy`], PAC scripts (`Pac`, feature `pac`) |
//! | [`error`] | [`Error`], [`ErrorKind`], [`Phase`] |
//!
//! # Features
//!
//! - `test-util`: an in-process CONNECT proxy and TLS origin on loopback, and a
//!   fault-injecting TCP relay (`test_util`), for your tests and this crate's.
//! - `negotiate` (Unix only): Negotiate (SPNEGO/Kerberos) proxy
//!   authentication from the user's ticket cache, through the system's
//!   GSSAPI. Building it needs the Kerberos headers, `pkg-config` and
//!   libclang (Debian: `libkrb5-dev pkg-config libclang-dev`).
//! - `wpad` (takes in `pac`): WPAD's DNS method, `Proxies::from_wpad` and
//!   `Pac::from_wpad`, over the URLs `route::wpad_urls` gives, kept
//!   below the registrable domain with the Public Suffix List (the `psl`
//!   crate, about 3 s to build).
//! - `pac`: proxy auto-config scripts (`Pac`, `Proxies::from_pac_url`),
//!   run on an embedded QuickJS (`rquickjs`) with a time budget per call
//!   and a memory limit; see the `route::pac` module. QuickJS's C sources
//!   are built with the system's C compiler (about 90 s on two cores), and
//!   add about 1 MiB to a release binary.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

mod macros;

#[cfg(feature = "__fuzz")]
#[doc(hidden)]
pub mod __fuzz;
pub mod dispatch;
pub mod error;
pub mod forward;
pub mod info;
pub mod proxy;
pub mod route;
pub mod stage;
mod target;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
mod timeout;
pub mod tls;

/// A boxed error, as tower and hyper use: `Box<dyn Error + Send + Sync>`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// The README's example is compiled as a doc test, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use crate::dispatch::{AlpnDispatch, AlpnDispatchLayer, HttpConnection};
pub use crate::error::{Error, ErrorKind, Phase, ProxyResponse};
pub use crate::forward::{ForwardProxy, ForwardProxyLayer};
pub use crate::info::{ConnectionInfo, Route, Timings};
pub use crate::proxy::{ProxyConnect, ProxyConnectLayer, Routed, Tunnel};
#[cfg(feature = "pac")]
#[cfg_attr(docsrs, doc(cfg(feature = "pac")))]
pub use crate::route::Pac;
pub use crate::route::{
    Decision, Hop, Http2Mode, MacProxy, MacProxySettings, NoProxy, Proxies, Proxy, ProxyAuth,
    ProxyKind, ProxyList, Rule, SkipReason, Skipped, SystemSettings, WinInetSettings,
};
pub use crate::stage::{Negotiated, RoutedStream, Transport};
pub use crate::tls::{MaybeTlsStream, TlsConnect, TlsLayer, TlsStream};

//! An axum service that calls an upstream HTTPS service through an HTTP CONNECT proxy.
//!
//! The handler's outbound connector is composed in one `tower::ServiceBuilder`, outermost
//! first: tower's `TimeoutLayer` (each upstream connection must be ready in time) and
//! `ConcurrencyLimitLayer` (at most N connections being made at once), then
//! `AlpnDispatchLayer`, `TlsLayer` and `ProxyConnectLayer` over `HttpConnector`. Each call
//! yields a ready `HttpConnection`, a tower `Service<http::Request<B>>`. The app and its
//! stack live in `tests/common/outbound.rs`, shared with `tests/axum.rs`.
//!
//! ```text
//! cargo run --example axum_outbound
//! ```
//!
//! It runs with no arguments: the in-process `TestProxy` and `TestOrigin` stand in for the
//! corporate proxy and the upstream, the app listens on `127.0.0.1:0`, and the example calls
//! it a few times and prints what came back.

#[path = "../tests/common/outbound.rs"]
mod outbound;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_tunnel::test_util::{self, TestOrigin, TestProxy};
use tower_tunnel::Proxy;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let origin = TestOrigin::start().await?;
    let proxy = TestProxy::start().await?;

    let upstream = outbound::upstream(
        Proxy::new(&proxy.url())?,
        test_util::client_config(),
        Duration::from_secs(10),
        4,
    );
    let app = outbound::app(upstream, origin.https_url().parse()?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("app      http://{addr}  (GET /upstream/{{*path}})");
    println!("proxy    {}", proxy.url());
    println!("upstream {}\n", origin.https_url());

    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for path in ["/upstream/", "/upstream/bytes/100000"] {
        let res = client.get(format!("http://{addr}{path}").parse()?).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        println!("GET {path} -> {} ({} bytes)", parts.status, body.len());
        println!(
            "  upstream answered over {} (ALPN {}), {}; origin says via proxy: {}",
            header("x-upstream-version"),
            header("x-upstream-alpn"),
            header("x-upstream-route"),
            header("x-origin-via-proxy"),
        );
        assert!(parts.status.is_success());
        assert_eq!(header("x-origin-via-proxy"), "true");
    }

    println!();
    for request in proxy.requests() {
        println!("proxy saw: {} {}", request.method, request.target);
    }
    println!(
        "origin connections: {} through the proxy, {} direct",
        origin.proxied_connections(),
        origin.direct_connections()
    );
    assert_eq!(origin.direct_connections(), 0);
    server.abort();
    Ok(())
}

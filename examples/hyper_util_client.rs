//! hyper-util's pooled `Client` through an HTTP CONNECT proxy.
//!
//! The tower-tunnel stack up to `TlsLayer` is a hyper-util connector: its stream implements
//! `Connection` and reports `negotiated_h2()`, so the legacy `Client` pools tunnels as it
//! pools any connection. Over HTTP/2 every request shares one tunnel; over HTTP/1.1 each
//! tunnel is kept alive and reused for the next request.
//!
//! ```text
//! cargo run --example hyper_util_client
//! ```
//!
//! It runs with no arguments on the in-process `TestProxy` and `TestOrigin` on `127.0.0.1`.
//!
//! It runs on tokio's current-thread runtime so the HTTP/1.1 counts are exact. On a
//! multi-threaded runtime, hyper-util hands an HTTP/1.1 connection back to its pool from a
//! separate task once the response body has ended, so a request sent the instant the last
//! one finished can find the pool empty and open a second tunnel. That is the pool's
//! behaviour with any connector; the tunnel itself is reused like any kept-alive socket.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{TestOrigin, TestProxy};
use tower_tunnel::{ConnectionInfo, ForwardProxyLayer, Proxy, ProxyConnectLayer, TlsLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let origin = TestOrigin::start().await?;
    println!("origin {}\n", origin.https_url());

    for (label, tls) in [
        ("HTTP/2 (ALPN h2)", TlsLayer::new(origin.client_config())),
        (
            "HTTP/1.1 (ALPN http/1.1 only)",
            TlsLayer::new(origin.client_config()).with_http1_only(),
        ),
    ] {
        let proxy = TestProxy::start().await?;
        let before = origin.connections();

        // The connector ends at TlsLayer: hyper-util's Client does the HTTP part and the
        // pooling. Outermost first: TlsLayer, ProxyConnectLayer, TCP to the proxy.
        let connector = ServiceBuilder::new()
            .layer(tls)
            .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url())?))
            .service(HttpConnector::new());
        let client: Client<_, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(connector);

        println!("{label}, proxy {}", proxy.url());
        for path in ["/", "/bytes/1000", "/bytes/65536", "/"] {
            let res = client
                .get(format!("{}{path}", origin.https_url()).parse()?)
                .await?;
            let (parts, body) = res.into_parts();
            let len = body.collect().await?.to_bytes().len();
            // Each response carries how its connection was made.
            let info = parts
                .extensions
                .get::<ConnectionInfo>()
                .ok_or("no ConnectionInfo on the response")?;
            println!(
                "  GET {path:<12} {} {:?} {len:>6} bytes, {}, ALPN {}",
                parts.status,
                parts.version,
                info.route(),
                info.alpn().unwrap_or("none"),
            );
        }
        println!(
            "  4 requests, {} CONNECT, {} proxy connection, {} new origin connection\n",
            proxy.requests().len(),
            proxy.connections(),
            origin.connections() - before,
        );
        assert_eq!(proxy.connections(), 1);
        assert_eq!(origin.connections() - before, 1);
    }
    assert_eq!(origin.direct_connections(), 0);

    // An http:// target is forwarded, not tunnelled: the client writes each request to the
    // proxy, so the proxy's credentials are a concern of the request. ForwardProxyLayer,
    // around the client, puts them on (Basic here; Digest when a proxy asks for it).
    let plain = TestOrigin::builder().plain_http().start().await?;
    let proxy = TestProxy::builder()
        .basic_auth("user", "pass")
        .start()
        .await?;
    let route = ProxyConnectLayer::new(Proxy::new(&format!("http://user:pass@{}", proxy.addr()))?);
    let connector = ServiceBuilder::new()
        .layer(TlsLayer::new(origin.client_config()))
        .layer(route.clone())
        .service(HttpConnector::new());
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let mut client = ServiceBuilder::new()
        .layer(ForwardProxyLayer::from(&route))
        .service(client);
    let target = format!("http://127.0.0.1:{}/", plain.addr().port());
    let req = http::Request::get(&target).body(Empty::new())?;
    let res = client.ready().await?.call(req).await?;
    println!(
        "http:// target, proxy with Basic credentials\n  GET {target} {}, proxy saw Proxy-Authorization: {}",
        res.status(),
        proxy.requests()[0].headers.contains_key("proxy-authorization"),
    );
    assert_eq!(res.status(), 200);
    Ok(())
}

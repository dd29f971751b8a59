//! An axum app on `127.0.0.1:0` whose handler calls the `TestOrigin` through the `TestProxy`
//! with the tower-tunnel stack under tower's timeout and concurrency limit, called over a
//! real socket.

#[path = "common/outbound.rs"]
mod outbound;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;
use tower_tunnel::test_util::{self, Fault, TestOrigin, TestProxy, HELLO_BODY};
use tower_tunnel::Proxy;

/// The app, served on a loopback port; the server stops when this is dropped.
struct App {
    addr: SocketAddr,
    server: JoinHandle<()>,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl App {
    async fn start(proxy: &TestProxy, origin: &TestOrigin, timeout: Duration, limit: usize) -> App {
        Self::start_with(Proxy::new(&proxy.url()).unwrap(), origin, timeout, limit).await
    }

    async fn start_with(proxy: Proxy, origin: &TestOrigin, timeout: Duration, limit: usize) -> App {
        let upstream = outbound::upstream(proxy, test_util::client_config(), timeout, limit);
        let router = outbound::app(upstream, origin.https_url().parse().unwrap());
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let client = Client::builder(TokioExecutor::new()).build_http();
        App {
            addr,
            server,
            client,
        }
    }

    async fn get(&self, path: &str) -> (http::response::Parts, Bytes) {
        let uri = format!("http://{}{path}", self.addr).parse().unwrap();
        let res = tokio::time::timeout(Duration::from_secs(20), self.client.get(uri))
            .await
            .expect("the app answers")
            .unwrap();
        let (parts, body) = res.into_parts();
        (parts, body.collect().await.unwrap().to_bytes())
    }
}

#[tokio::test]
async fn handler_reaches_upstream_through_the_proxy() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let app = App::start(&proxy, &origin, Duration::from_secs(10), 4).await;

    let (parts, body) = app.get("/upstream/").await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, HELLO_BODY);
    // The upstream's own headers came through: it was reached over HTTP/2 via the proxy.
    assert_eq!(parts.headers["x-origin-via-proxy"], "true");
    assert_eq!(parts.headers["x-origin-protocol"], "HTTP/2.0");
    assert_eq!(
        parts.headers["x-upstream-route"],
        format!("tunnel via {}", proxy.addr()).as_str()
    );
    assert_eq!(parts.headers["x-upstream-alpn"], "h2");

    let requests = proxy.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "CONNECT");
    assert_eq!(requests[0].target, origin.authority());
    assert_eq!(origin.proxied_connections(), 1);
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn large_upstream_body_streams_through_the_handler() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let app = App::start(&proxy, &origin, Duration::from_secs(10), 4).await;

    let n = 3 * 1024 * 1024 + 7;
    let (parts, body) = app.get(&format!("/upstream/bytes/{n}")).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body.len(), n);
    assert!(body.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn concurrent_calls_pass_the_concurrency_limit() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    // Two connections at a time; twelve callers queue for a permit and all get through.
    let app = std::sync::Arc::new(App::start(&proxy, &origin, Duration::from_secs(10), 2).await);
    let mut calls = Vec::new();
    for i in 0..12 {
        let app = app.clone();
        calls.push(tokio::spawn(async move {
            app.get(&format!("/upstream/bytes/{i}")).await
        }));
    }
    for (i, call) in calls.into_iter().enumerate() {
        let (parts, body) = call.await.unwrap();
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(body.len(), i);
    }
    // One connection per call, each through its own CONNECT.
    assert_eq!(proxy.requests().len(), 12);
    assert_eq!(origin.proxied_connections(), 12);
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn silent_proxy_is_cut_by_the_timeout_layer() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::builder()
        .fault(Fault::Silence)
        .start()
        .await
        .unwrap();
    let app = App::start(&proxy, &origin, Duration::from_millis(300), 4).await;

    let started = Instant::now();
    let (parts, body) = app.get("/upstream/").await;
    assert_eq!(parts.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body, "upstream connection timed out");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(proxy.requests()[0].method, "CONNECT");
    assert_eq!(origin.connections(), 0);
}

#[tokio::test]
async fn proxy_refusal_is_a_502_that_names_the_proxy_answer() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::builder()
        .basic_auth("app", "s3cret")
        .start()
        .await
        .unwrap();
    let app = App::start(&proxy, &origin, Duration::from_secs(10), 4).await;

    let (parts, body) = app.get("/upstream/").await;
    assert_eq!(parts.status, StatusCode::BAD_GATEWAY);
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(body.contains("407"), "{body}");
    assert!(body.contains(&proxy.addr().to_string()), "{body}");
    assert_eq!(origin.connections(), 0);

    // The same app with credentials gets through.
    let with_auth = Proxy::new(&proxy.url())
        .unwrap()
        .with_basic_auth("app", "s3cret");
    let app = App::start_with(with_auth, &origin, Duration::from_secs(10), 4).await;
    let (parts, body) = app.get("/upstream/").await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, HELLO_BODY);
    assert!(!String::from_utf8_lossy(&body).contains("s3cret"));
}

//! hyper-util's pooled legacy `Client` on the stack up to `TlsLayer`: HTTPS through a CONNECT
//! tunnel, with the pool reusing tunnels (HTTP/2 multiplexing, HTTP/1.1 keep-alive).

use bytes::Bytes;
use http::{Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::ServiceBuilder;
use tower_tunnel::test_util::{TestOrigin, TestProxy, HELLO_BODY};
use tower_tunnel::{ConnectionInfo, Proxy, ProxyConnect, ProxyConnectLayer, TlsConnect, TlsLayer};

type Body = Empty<Bytes>;
type Connector = TlsConnect<ProxyConnect<HttpConnector>>;

fn connector(tls: TlsLayer, proxy: &TestProxy) -> Connector {
    ServiceBuilder::new()
        .layer(tls)
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new())
}

fn url(origin: &TestOrigin, path: &str) -> Uri {
    format!("{}{path}", origin.https_url()).parse().unwrap()
}

/// GETs `uri`, checks it came through the proxy at `version`, and returns the body.
async fn get(client: &Client<Connector, Body>, uri: Uri, version: Version) -> Bytes {
    let res = client.get(uri).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), version);
    assert_eq!(res.headers()["x-origin-via-proxy"], "true");
    let info = res.extensions().get::<ConnectionInfo>().unwrap();
    assert!(!info.route().is_direct());
    res.into_body().collect().await.unwrap().to_bytes()
}

/// Tunnels the proxy opened, as the proxy, its CONNECT log and the origin all count them.
fn assert_tunnels(proxy: &TestProxy, origin: &TestOrigin, n: usize) {
    let requests = proxy.requests();
    assert_eq!(requests.len(), n, "{requests:?}");
    assert!(requests
        .iter()
        .all(|r| r.method == "CONNECT" && r.target == origin.authority()));
    assert_eq!(proxy.connections(), n);
    assert_eq!(origin.connections(), n);
    assert_eq!(origin.proxied_connections(), n);
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn http2_many_requests_share_one_pooled_tunnel() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let client = Client::builder(TokioExecutor::new())
        .build(connector(TlsLayer::new(origin.client_config()), &proxy));

    // The first request opens the tunnel and ALPN says h2; the pool then knows it can
    // multiplex, and every later request, concurrent or not, rides the same connection.
    assert_eq!(
        get(&client, url(&origin, "/"), Version::HTTP_2).await,
        HELLO_BODY
    );
    let mut requests = Vec::new();
    for i in 0..32 {
        let client = client.clone();
        let uri = url(&origin, &format!("/bytes/{}", 1000 + i));
        requests.push(tokio::spawn(async move {
            get(&client, uri, Version::HTTP_2).await.len()
        }));
    }
    for (i, request) in requests.into_iter().enumerate() {
        assert_eq!(request.await.unwrap(), 1000 + i);
    }
    for _ in 0..8 {
        get(&client, url(&origin, "/"), Version::HTTP_2).await;
    }
    assert_tunnels(&proxy, &origin, 1);
}

#[tokio::test]
async fn http2_only_client_opens_one_tunnel_for_a_cold_burst() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    // With `http2_only` the pool knows before dialing that connections multiplex, so a burst
    // of requests on an empty pool waits for one tunnel instead of opening one each.
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector(
            TlsLayer::new(origin.client_config()).with_http2_only(),
            &proxy,
        ));
    let mut requests = Vec::new();
    for _ in 0..16 {
        let client = client.clone();
        let uri = url(&origin, "/");
        requests.push(tokio::spawn(async move {
            get(&client, uri, Version::HTTP_2).await
        }));
    }
    for request in requests {
        assert_eq!(request.await.unwrap(), HELLO_BODY);
    }
    assert_tunnels(&proxy, &origin, 1);
}

// `#[tokio::test]` runs on the current-thread runtime, where hyper-util's task that returns
// an HTTP/1.1 connection to the pool runs before the next request checks the pool out. On a
// multi-threaded runtime the two race, and a request sent the instant the last body ended
// may dial a second tunnel: hyper-util's pool behaviour with any connector.
#[tokio::test]
async fn http1_keep_alive_reuses_one_tunnel_for_sequential_requests() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let client = Client::builder(TokioExecutor::new()).build(connector(
        TlsLayer::new(origin.client_config()).with_http1_only(),
        &proxy,
    ));
    for i in 0..10 {
        let body = get(
            &client,
            url(&origin, &format!("/bytes/{i}")),
            Version::HTTP_11,
        )
        .await;
        assert_eq!(body.len(), i);
    }
    let res = client.get(url(&origin, "/")).await.unwrap();
    assert_eq!(res.headers()["x-origin-protocol"], "HTTP/1.1");
    let info = res.extensions().get::<ConnectionInfo>().unwrap().clone();
    assert_eq!(info.alpn(), Some("http/1.1"));
    res.into_body().collect().await.unwrap();
    assert_tunnels(&proxy, &origin, 1);
}

#[tokio::test]
async fn http1_concurrent_requests_each_get_their_own_tunnel_then_are_reused() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let client = Client::builder(TokioExecutor::new()).build(connector(
        TlsLayer::new(origin.client_config()).with_http1_only(),
        &proxy,
    ));

    // Bodies are held until all three responses are in, so the three requests are in flight
    // together: HTTP/1.1 cannot multiplex, so each needs a connection, each a CONNECT.
    let mut responses = Vec::new();
    for _ in 0..3 {
        responses.push(client.get(url(&origin, "/")));
    }
    let responses = futures_util::future::join_all(responses).await;
    for res in responses {
        let res = res.unwrap();
        assert_eq!(res.version(), Version::HTTP_11);
        assert_eq!(
            res.into_body().collect().await.unwrap().to_bytes(),
            HELLO_BODY
        );
    }
    assert_tunnels(&proxy, &origin, 3);

    // Back in the pool, the three tunnels serve sequential requests without new CONNECTs.
    for _ in 0..6 {
        get(&client, url(&origin, "/"), Version::HTTP_11).await;
    }
    assert_tunnels(&proxy, &origin, 3);
}

#[tokio::test]
async fn request_bodies_stream_through_the_pooled_tunnel() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let connector = connector(TlsLayer::new(origin.client_config()), &proxy);
    let client: Client<_, http_body_util::Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let payload = Bytes::from(vec![7u8; 256 * 1024]);
    for _ in 0..3 {
        let req = http::Request::post(url(&origin, "/echo"))
            .body(http_body_util::Full::new(payload.clone()))
            .unwrap();
        let res = client.request(req).await.unwrap();
        assert_eq!(res.version(), Version::HTTP_2);
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), payload);
    }
    assert_tunnels(&proxy, &origin, 1);
}

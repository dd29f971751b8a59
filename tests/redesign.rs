//! What the route layer promises since proxy TLS, forward headers and TCP_NODELAY moved to
//! where they belong: forward-proxy credentials reach the proxy under hyper-util's `Client`,
//! an unreachable proxy is named as the proxy, Nagle is off after every dial, vectored
//! writes pass through every stream wrapper, and the proxy's answer to `CONNECT` is kept.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::rt::Write as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{client_config, Fault, TestH2Proxy, TestOrigin, TestProxy};
use tower_tunnel::{
    ErrorKind, ForwardProxyLayer, Phase, Proxies, Proxy, ProxyConnectLayer, TlsLayer,
};

type Body = Empty<Bytes>;

/// A loopback port nothing listens on: bound, read back, and released.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn plain_target(origin: &TestOrigin, path: &str) -> Uri {
    format!("http://127.0.0.1:{}{path}", origin.addr().port())
        .parse()
        .unwrap()
}

#[tokio::test]
async fn hyper_util_client_sends_forward_proxy_credentials() {
    let origin = TestOrigin::builder().plain_http().start().await.unwrap();
    let proxy = TestProxy::builder()
        .basic_auth("fwd", "pa55")
        .start()
        .await
        .unwrap();
    let route =
        ProxyConnectLayer::new(Proxy::new(&format!("http://fwd:pa55@{}", proxy.addr())).unwrap());
    // The connector stack the docs show for hyper-util's `Client`.
    let connector = ServiceBuilder::new()
        .layer(TlsLayer::new(client_config()))
        .layer(route.clone())
        .service(HttpConnector::new());
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(connector);
    let target = plain_target(&origin, "/hello?x=1");

    // The connector alone cannot put a header on a request the client writes: the proxy
    // refuses it, as before the request layer existed.
    let bare = client.get(target.clone()).await.unwrap();
    assert_eq!(bare.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);

    let mut client = ServiceBuilder::new()
        .layer(ForwardProxyLayer::from(&route))
        .service(client);
    for _ in 0..2 {
        let req = Request::get(target.clone()).body(Body::new()).unwrap();
        let res = client.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-origin-via-proxy"], "true");
        res.into_body().collect().await.unwrap();
    }
    let recorded = proxy.requests();
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    for r in &recorded[1..] {
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, target.to_string());
        assert_eq!(r.headers["proxy-authorization"], "Basic ZndkOnBhNTU=");
    }
    assert_eq!(origin.direct_connections(), 0);
}

/// A forwarding proxy that answers every request `407` with `challenge` and records each
/// request head it reads. Bounded: a few connections, a few requests each.
async fn refusing_proxy(
    challenge: &'static str,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for _ in 0..8 {
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head: Vec<u8> = buf.drain(..end).collect();
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let answer = format!(
                        "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: {challenge}\r\nContent-Length: 0\r\n\r\n"
                    );
                    if tcp.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, heads)
}

/// The value of `name` in a recorded request head.
fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {head}"))
}

#[tokio::test]
async fn forwarded_digest_challenge_is_answered_and_kept() {
    let (addr, heads) =
        refusing_proxy(r#"Digest realm="corp", nonce="0a4f113b", qop="auth""#).await;
    let proxies =
        Proxies::from(Proxy::new(&format!("http://Mufasa:Circle%20of%20Life@{addr}")).unwrap());
    let connector = ServiceBuilder::new()
        .layer(TlsLayer::new(client_config()))
        .layer(ProxyConnectLayer::from_proxies(proxies.clone()))
        .service(HttpConnector::new());
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(connector);
    let mut client = ServiceBuilder::new()
        .layer(ForwardProxyLayer::new(proxies))
        .service(client);
    let target: Uri = "http://origin.test:8080/dir/index.html".parse().unwrap();

    // This proxy refuses every answer: Basic, then one retry with Digest, then its 407.
    let req = Request::get(target.clone()).body(Body::new()).unwrap();
    let res = client.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    let seen = heads.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].starts_with(&format!("GET {target} HTTP/1.1")),
        "{}",
        seen[0]
    );
    let basic = header(&seen[0], "proxy-authorization");
    assert!(basic.starts_with("Basic "), "{basic}");
    let digest = header(&seen[1], "proxy-authorization");
    for part in [
        "Digest username=\"Mufasa\"".to_owned(),
        "realm=\"corp\"".to_owned(),
        "nonce=\"0a4f113b\"".to_owned(),
        format!("uri=\"{target}\""),
        "qop=auth".to_owned(),
        "nc=00000001".to_owned(),
    ] {
        assert!(digest.contains(&part), "{part} missing from {digest}");
    }

    // The challenge is kept: the next request answers it up front with the next nonce
    // count, and the same nonce refused again is not retried.
    let req = Request::get(target).body(Body::new()).unwrap();
    let res = client.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    let seen = heads.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let digest = header(&seen[2], "proxy-authorization");
    assert!(digest.contains("nc=00000002"), "{digest}");
}

#[tokio::test]
async fn tunnelled_requests_get_no_forward_headers() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::builder()
        .basic_auth("u", "p")
        .start()
        .await
        .unwrap();
    let route =
        ProxyConnectLayer::new(Proxy::new(&format!("http://u:p@{}", proxy.addr())).unwrap());
    let connector = ServiceBuilder::new()
        .layer(TlsLayer::new(origin.client_config()))
        .layer(route.clone())
        .service(HttpConnector::new());
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(connector);
    let mut client = ServiceBuilder::new()
        .layer(ForwardProxyLayer::from(&route))
        .service(client);
    let req = Request::get(origin.https_url()).body(Body::new()).unwrap();
    let res = client.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(res.status(), 200);
    // The proxy saw only the CONNECT (with its credentials); the origin, reached through
    // the tunnel, answers the path it was asked for and never sees proxy headers.
    let recorded = proxy.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "CONNECT");
    assert_eq!(recorded[0].headers["proxy-authorization"], "Basic dTpw");
    assert_eq!(origin.proxied_connections(), 1);
}

#[tokio::test]
async fn unreachable_proxy_is_named_with_proxy_tls_configured() {
    let port = closed_port().await;
    // The stack `examples/fetch.rs` builds: proxy TLS configured for https:// proxies,
    // an http:// proxy in use.
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(client_config()))
        .layer(
            ProxyConnectLayer::new(Proxy::new(&format!("http://127.0.0.1:{port}")).unwrap())
                .with_proxy_tls(client_config()),
        )
        .service(HttpConnector::new());
    for target in ["http://example.test/", "https://example.test/"] {
        let err = connect
            .clone()
            .oneshot(target.parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dial);
        assert_eq!(err.phase(), Some(Phase::Dial));
        let default_port = if target.starts_with("https") { 443 } else { 80 };
        assert_eq!(
            err.to_string(),
            format!("could not connect to proxy 127.0.0.1:{port} for example.test:{default_port}")
        );
    }
}

#[tokio::test]
async fn unreachable_https_proxy_is_named_too() {
    let port = closed_port().await;
    let connect = ServiceBuilder::new()
        .layer(
            ProxyConnectLayer::new(Proxy::new(&format!("https://localhost:{port}")).unwrap())
                .with_proxy_tls(client_config()),
        )
        .service(HttpConnector::new());
    let err = connect
        .oneshot("https://example.test/".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Dial);
    assert_eq!(
        err.to_string(),
        format!("could not connect to proxy localhost:{port} for example.test:443")
    );
}

#[tokio::test]
async fn nagle_is_off_after_every_dial_unless_told_otherwise() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let h2_proxy = TestH2Proxy::start().await.unwrap();
    let https_proxy = Proxy::new(&h2_proxy.url())
        .unwrap()
        .with_http2(tower_tunnel::Http2Mode::Never);
    let cases = [
        ("direct", ProxyConnectLayer::direct()),
        (
            "CONNECT",
            ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()),
        ),
        (
            "https:// proxy",
            ProxyConnectLayer::new(https_proxy).with_proxy_tls(client_config()),
        ),
    ];
    for (name, layer) in cases {
        for on in [true, false] {
            // `HttpConnector::new()` leaves Nagle on.
            let connect = ServiceBuilder::new()
                .layer(layer.clone().with_nodelay(on))
                .service(HttpConnector::new());
            let routed = connect
                .oneshot(origin.https_url().parse().unwrap())
                .await
                .unwrap();
            let stream = routed.tunnel().get_ref().unwrap().inner();
            assert_eq!(stream.nodelay().unwrap(), on, "{name}, with_nodelay({on})");
        }
    }
}

#[tokio::test]
async fn vectored_writes_pass_through_every_stream_wrapper() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let h2_proxy = TestH2Proxy::start().await.unwrap();
    let https_proxy = Proxy::new(&h2_proxy.url())
        .unwrap()
        .with_http2(tower_tunnel::Http2Mode::Never);
    let layers = [
        ProxyConnectLayer::direct(),
        ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()),
        ProxyConnectLayer::new(https_proxy).with_proxy_tls(client_config()),
    ];
    for layer in layers {
        let routed = ServiceBuilder::new()
            .layer(layer.clone())
            .service(HttpConnector::new())
            .oneshot(origin.https_url().parse().unwrap())
            .await
            .unwrap();
        let route = routed.info().route().to_string();
        assert!(routed.is_write_vectored(), "routed stream, {route}");
        assert!(routed.tunnel().is_write_vectored(), "tunnel, {route}");
        let tls = ServiceBuilder::new()
            .layer(TlsLayer::new(origin.client_config()))
            .layer(layer)
            .service(HttpConnector::new())
            .oneshot(origin.https_url().parse().unwrap())
            .await
            .unwrap();
        assert!(tls.is_tls());
        assert!(tls.is_write_vectored(), "TLS stream, {route}");
    }
}

#[tokio::test]
async fn the_proxy_answer_to_connect_is_kept() {
    let origin = TestOrigin::start().await.unwrap();
    // `BareLf` answers `200 OK` with a `Via` field, then tunnels.
    let proxy = TestProxy::builder()
        .fault(Fault::BareLf)
        .start()
        .await
        .unwrap();
    let conn = ServiceBuilder::new()
        .layer(tower_tunnel::AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new())
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap();
    let answer = conn.info().proxy_response().expect("the CONNECT answer");
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers().contains_key("via"),
        "{:?}",
        answer.headers()
    );
    assert_eq!(
        conn.info().proxy().unwrap().authority().as_str(),
        proxy.addr().to_string()
    );
}

#[tokio::test]
async fn the_h2_proxy_answer_is_kept_and_the_pool_is_the_layers() {
    let origin = TestOrigin::start().await.unwrap();
    let h2_proxy = TestH2Proxy::start().await.unwrap();
    let url = h2_proxy.url();
    // A matcher that builds a fresh `Proxy` for every call: the tunnels still share one
    // HTTP/2 connection, since the layer keys it by address and credentials.
    let proxies = Proxies::new().with_custom(move |_| Proxy::new(&url).ok());
    let connect = ServiceBuilder::new()
        .layer(tower_tunnel::AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::from_proxies(proxies).with_proxy_tls(client_config()))
        .service(HttpConnector::new());
    let target: Uri = origin.https_url().parse().unwrap();
    let a = connect.clone().oneshot(target.clone()).await.unwrap();
    let b = connect.oneshot(target).await.unwrap();
    for conn in [&a, &b] {
        assert!(conn.info().route().is_h2_tunnel(), "{}", conn.info());
        assert_eq!(conn.info().proxy_response().unwrap().status(), 200);
    }
    assert_eq!(b.info().shared_tunnels(), Some(2));
    assert_eq!(h2_proxy.connections(), 1);
    // The TLS handshake with the proxy happened once, for the first tunnel.
    assert!(a.info().timings().proxy_tls().is_some());
    assert!(b.info().timings().proxy_tls().is_none());
}

//! The routes other than a plain CONNECT tunnel, over loopback: forward
//! proxying of `http://` targets, `https://` proxies (TLS in TLS), the
//! Digest retry, and routing by `Proxies`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{client_config, tls_acceptor, Fault, TestOrigin, TestProxy};
use tower_tunnel::{
    AlpnDispatchLayer, ErrorKind, NoProxy, Proxies, Proxy, ProxyConnectLayer, Route, Rule, TlsLayer,
};

type Body = Empty<Bytes>;

#[tokio::test]
async fn http_targets_are_forwarded_in_absolute_form_with_credentials() {
    let origin = TestOrigin::builder().plain_http().start().await.unwrap();
    let proxy = TestProxy::builder()
        .basic_auth("fwd", "pa55")
        .start()
        .await
        .unwrap();
    let p = Proxy::new(&format!("http://fwd:pa55@{}", proxy.addr())).unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(client_config()))
        .layer(ProxyConnectLayer::new(p))
        .service(HttpConnector::new());
    let target: Uri = format!("http://127.0.0.1:{}/hello?x=1", origin.addr().port())
        .parse()
        .unwrap();
    let mut conn = connect.oneshot(target.clone()).await.unwrap();
    assert!(conn.info().route().is_forward());
    assert_eq!(conn.version(), Version::HTTP_11);
    let req = Request::get("/hello?x=1").body(Body::new()).unwrap();
    let res = conn.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-origin-via-proxy"], "true");

    let recorded = proxy.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "GET");
    assert_eq!(recorded[0].target, target.to_string());
    assert_eq!(
        recorded[0].headers["proxy-authorization"].to_str().unwrap(),
        "Basic ZndkOnBhNTU="
    );
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn hyper_util_client_forwards_http_targets() {
    let origin = TestOrigin::builder().plain_http().start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new());
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(connect);
    let target: Uri = format!("http://127.0.0.1:{}/pooled", origin.addr().port())
        .parse()
        .unwrap();
    let res = client.get(target.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap();
    // `Connected::proxy(true)` made the client write absolute-form.
    let recorded = proxy.requests();
    assert_eq!(recorded[0].method, "GET");
    assert_eq!(recorded[0].target, target.to_string());
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn http_tunneling_switch_uses_connect_for_http_targets() {
    let origin = TestOrigin::builder().plain_http().start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let p = Proxy::new(&proxy.url()).unwrap().with_http_tunneling(true);
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(client_config()))
        .layer(ProxyConnectLayer::new(p))
        .service(HttpConnector::new());
    let target: Uri = format!("http://127.0.0.1:{}/", origin.addr().port())
        .parse()
        .unwrap();
    let mut conn = connect.oneshot(target).await.unwrap();
    assert!(matches!(conn.info().route(), Route::Tunnel { .. }));
    let res = conn
        .send_request(Request::get("/").body(Body::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(proxy.requests()[0].method, "CONNECT");
}

/// A TLS terminator in front of a `TestProxy`: an `https://` proxy.
struct HttpsProxy {
    addr: std::net::SocketAddr,
    handshakes: Arc<AtomicUsize>,
    sni: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

async fn https_proxy(inner: &TestProxy) -> HttpsProxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = inner.addr();
    let acceptor = tls_acceptor(vec![b"http/1.1".to_vec()]);
    let handshakes = Arc::new(AtomicUsize::new(0));
    let sni = Arc::new(Mutex::new(Vec::new()));
    let (h, s) = (handshakes.clone(), sni.clone());
    let task = tokio::spawn(async move {
        // Bounded: the test makes a handful of connections.
        for _ in 0..16 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, h, s) = (acceptor.clone(), h.clone(), s.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                h.fetch_add(1, Ordering::SeqCst);
                if let Some(name) = tls.get_ref().1.server_name() {
                    s.lock().unwrap().push(name.to_owned());
                }
                let Ok(mut up) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    HttpsProxy {
        addr,
        handshakes,
        sni,
        _task: task,
    }
}

#[tokio::test]
async fn https_proxy_tls_in_tls() {
    let origin = TestOrigin::start().await.unwrap();
    let inner = TestProxy::builder()
        .basic_auth("u", "secret")
        .start()
        .await
        .unwrap();
    let front = https_proxy(&inner).await;
    let p = Proxy::new(&format!("https://u:secret@localhost:{}", front.addr.port())).unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(p).with_proxy_tls(client_config()))
        .service(HttpConnector::new());
    let mut conn = connect
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap();
    // h2 to the target inside TLS to the proxy's http/1.1 CONNECT.
    assert_eq!(conn.version(), Version::HTTP_2);
    let res = conn
        .send_request(Request::get("/").body(Body::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(front.handshakes.load(Ordering::SeqCst), 1);
    assert_eq!(front.sni.lock().unwrap().as_slice(), ["localhost"]);
    assert_eq!(inner.requests()[0].method, "CONNECT");
    assert_eq!(inner.requests()[0].target, origin.authority());
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn https_proxy_without_proxy_tls_fails_before_dialing() {
    // A listener that counts connections: nothing may reach it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(client_config()))
        .layer(ProxyConnectLayer::new(
            Proxy::new(&format!("https://u:secret@localhost:{port}")).unwrap(),
        ))
        .service(HttpConnector::new());
    let err = connect
        .oneshot("https://localhost:1".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyTlsNotConfigured);
    assert_eq!(err.phase(), None);
    let shown = err.to_string();
    assert_eq!(
        shown,
        format!("proxy localhost:{port} for localhost:1 is an https:// proxy, and ProxyConnectLayer has no TLS config for proxies (set one with ProxyConnectLayer::with_proxy_tls)")
    );
    assert!(!format!("{shown} {err:?}").contains("secret"));
    let accepted =
        tokio::time::timeout(std::time::Duration::from_millis(50), listener.accept()).await;
    assert!(accepted.is_err(), "the proxy was dialed");
}

#[tokio::test]
async fn proxy_tls_failure_is_its_own_error() {
    // A TLS proxy whose certificate the proxy roots do not trust.
    let inner = TestProxy::start().await.unwrap();
    let front = https_proxy(&inner).await;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let trusts_nothing = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(client_config()))
        .layer(
            ProxyConnectLayer::new(
                Proxy::new(&format!("https://localhost:{}", front.addr.port())).unwrap(),
            )
            .with_proxy_tls(Arc::new(trusts_nothing)),
        )
        .service(HttpConnector::new());
    let err = connect
        .oneshot("https://localhost:1".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyTls);
    assert_eq!(
        err.to_string(),
        format!(
            "TLS handshake with proxy localhost:{} failed",
            front.addr.port()
        )
    );
    assert!(inner.requests().is_empty(), "no CONNECT went out");
}

#[tokio::test]
async fn digest_challenge_is_answered_once_on_a_fresh_connection() {
    let challenge = r#"Digest realm="corp", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop="auth", algorithm=SHA-256"#;
    let proxy = TestProxy::builder()
        .fault(Fault::Status(
            407,
            vec![("Proxy-Authenticate".into(), challenge.into())],
            Vec::new(),
        ))
        .start()
        .await
        .unwrap();
    let p = Proxy::new(&format!(
        "http://Mufasa:Circle%20of%20Life@{}",
        proxy.addr()
    ))
    .unwrap();
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(client_config()))
        .layer(ProxyConnectLayer::new(p))
        .service(HttpConnector::new());
    let err = connect
        .oneshot("https://localhost:1".parse().unwrap())
        .await
        .unwrap_err();
    // This proxy refuses every answer: one retry, then its 407.
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired);
    let recorded = proxy.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(proxy.connections(), 2, "the retry used a fresh connection");
    let first = recorded[0].headers["proxy-authorization"].to_str().unwrap();
    assert!(first.starts_with("Basic "), "{first}");
    let second = recorded[1].headers["proxy-authorization"].to_str().unwrap();
    for part in [
        "Digest username=\"Mufasa\"",
        "realm=\"corp\"",
        "uri=\"localhost:1\"",
        "algorithm=SHA-256",
        "qop=auth",
        "nc=00000001",
    ] {
        assert!(second.contains(part), "{part} missing from {second}");
    }
    assert!(!format!("{err} {err:?}").contains("Circle"));
}

#[tokio::test]
async fn proxies_route_each_target_by_its_rules() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let proxies = Proxies::new()
        .with_https(Proxy::new(&proxy.url()).unwrap())
        .with_no_proxy(NoProxy::parse("127.0.0.1"));
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::from_proxies(proxies.clone()))
        .service(HttpConnector::new());

    // `localhost` is not in the bypass list: through the proxy.
    let via_name: Uri = origin.https_url().parse().unwrap();
    assert_eq!(
        proxies.decide(&via_name).unwrap().rule(),
        &Rule::Scheme("https_proxy")
    );
    let conn = connect.clone().oneshot(via_name).await.unwrap();
    assert!(!conn.info().route().is_direct());

    // The bypassed IP literal goes direct.
    let via_ip: Uri = format!("https://127.0.0.1:{}", origin.addr().port())
        .parse()
        .unwrap();
    assert_eq!(
        proxies.decide(&via_ip).unwrap().rule(),
        &Rule::NoProxy("127.0.0.1".into())
    );
    let conn = connect.oneshot(via_ip).await.unwrap();
    assert!(conn.info().route().is_direct());
    assert_eq!(origin.direct_connections(), 1);
    assert_eq!(origin.proxied_connections(), 1);
}

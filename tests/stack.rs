//! The whole stack over real loopback sockets: the in-process CONNECT proxy,
//! a rustls origin with ALPN, real HTTP/2 and HTTP/1.1.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{Fault, TestOrigin, TestProxy};
use tower_tunnel::{
    AlpnDispatchLayer, ErrorKind, HttpConnection, Phase, Proxy, ProxyConnectLayer, Route, TlsLayer,
};

type Body = Empty<Bytes>;

async fn get(conn: &mut HttpConnection<Body>, path: &str) -> (http::response::Parts, String) {
    let req = Request::get(path).body(Body::new()).unwrap();
    let res = conn.send_request(req).await.expect("request");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts, String::from_utf8(body.to_vec()).unwrap())
}

fn url(origin: &TestOrigin) -> Uri {
    origin.https_url().parse().unwrap()
}

#[tokio::test]
async fn https_through_tunnel_over_http2() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new());

    let mut conn = connect.oneshot(url(&origin)).await.unwrap();
    assert_eq!(conn.version(), Version::HTTP_2);
    let (parts, body) = get(&mut conn, "/").await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.version, Version::HTTP_2);
    assert_eq!(parts.headers["x-origin-protocol"], "HTTP/2.0");
    assert_eq!(parts.headers["x-origin-via-proxy"], "true");
    assert_eq!(body, tower_tunnel::test_util::HELLO_BODY);

    // The proxy saw exactly one CONNECT, for the target's authority.
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "CONNECT");
    assert_eq!(requests[0].target, origin.authority());
    assert_eq!(requests[0].headers["host"], origin.authority().as_str());
    // And the origin saw nothing that bypassed it.
    assert_eq!(origin.direct_connections(), 0);
    assert_eq!(origin.proxied_connections(), 1);

    let info = conn.info();
    assert_eq!(
        info.route(),
        &Route::Tunnel {
            proxy: proxy.addr().to_string().parse().unwrap()
        }
    );
    assert_eq!(info.alpn(), Some("h2"));
    assert_eq!(info.tls_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let t = info.timings();
    for phase in [t.dial(), t.proxy_connect(), t.tls(), t.http_handshake()] {
        assert!(phase.is_some(), "{t:?}");
    }
    assert!(t.total() >= t.tls().unwrap());
}

#[tokio::test]
async fn https_through_tunnel_over_http1_when_forced() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(origin.client_config()).with_http1_only())
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new());

    let mut conn = connect.oneshot(url(&origin)).await.unwrap();
    assert_eq!(conn.version(), Version::HTTP_11);
    assert_eq!(conn.info().alpn(), Some("http/1.1"));
    for _ in 0..3 {
        // Keep-alive: three requests on the one connection.
        let (parts, _) = get(&mut conn, "/").await;
        assert_eq!(parts.status, 200);
        assert_eq!(parts.headers["x-origin-protocol"], "HTTP/1.1");
    }
    assert_eq!(origin.connections(), 1);
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn origin_without_alpn_gets_http1() {
    let origin = TestOrigin::builder().alpn(vec![]).start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::direct())
        .service(HttpConnector::new());
    let mut conn = connect.oneshot(url(&origin)).await.unwrap();
    assert_eq!(conn.info().alpn(), None);
    assert_eq!(conn.version(), Version::HTTP_11);
    assert_eq!(get(&mut conn, "/").await.0.status, 200);
}

#[tokio::test]
async fn http2_only_against_http1_origin_is_an_alpn_error() {
    let origin = TestOrigin::builder().alpn(vec![]).start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(origin.client_config()).with_http2_only())
        .layer(ProxyConnectLayer::direct())
        .service(HttpConnector::new());
    let err = connect.oneshot(url(&origin)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlpnMismatch);
    assert_eq!(
        err.to_string(),
        format!(
            "{} selected no usable ALPN protocol: offered h2",
            origin.authority()
        )
    );
}

#[tokio::test]
async fn proxy_407_without_credentials_then_success_with_them() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::builder()
        .basic_auth("alice", "s3cret pass")
        .start()
        .await
        .unwrap();
    let stack = |p: Proxy| {
        ServiceBuilder::new()
            .layer(AlpnDispatchLayer::<Body>::new())
            .layer(TlsLayer::new(origin.client_config()))
            .layer(ProxyConnectLayer::new(p))
            .service(HttpConnector::new())
    };

    let err = stack(Proxy::new(&proxy.url()).unwrap())
        .oneshot(url(&origin))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired);
    assert_eq!(err.phase(), Some(Phase::ProxyConnect));
    assert_eq!(
        err.status(),
        Some(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED)
    );
    let challenges: Vec<_> = err.proxy_response().unwrap().challenges().collect();
    assert_eq!(challenges, ["Basic realm=\"tower-tunnel-test\""]);
    assert_eq!(
        err.to_string(),
        format!(
            "proxy {} refused CONNECT to {}: 407 Proxy Authentication Required \
             (Basic realm=\"tower-tunnel-test\")",
            proxy.addr(),
            origin.authority()
        )
    );
    // The proxy's plain-text 407 never reached TLS: the origin saw nothing.
    assert_eq!(origin.connections(), 0);

    let with_creds = format!("http://alice:s3cret%20pass@{}", proxy.addr());
    let mut conn = stack(Proxy::new(&with_creds).unwrap())
        .oneshot(url(&origin))
        .await
        .unwrap();
    assert_eq!(get(&mut conn, "/").await.0.status, 200);
    let last = proxy.requests().pop().unwrap();
    assert_eq!(
        last.headers["proxy-authorization"].to_str().unwrap(),
        "Basic YWxpY2U6czNjcmV0IHBhc3M="
    );
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn extra_headers_reach_the_proxy() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let p = Proxy::new(&proxy.url()).unwrap().with_header(
        http::HeaderName::from_static("x-client"),
        http::HeaderValue::from_static("tower-tunnel-tests"),
    );
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(p))
        .service(HttpConnector::new());
    let stream = connect.oneshot(url(&origin)).await.unwrap();
    assert!(stream.is_tls());
    assert_eq!(
        proxy.requests()[0].headers["x-client"],
        "tower-tunnel-tests"
    );
}

// Tunnel bytes that arrive in the same read as the 200 are replayed, never
// lost: `ok_coalesced_with_tunnel_bytes_keeps_them` in tests/faults.rs.

#[tokio::test]
async fn no_leftover_means_no_buffer() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new());
    let routed = connect.oneshot(url(&origin)).await.unwrap();
    assert_eq!(routed.tunnel().buffered(), 0);
    let (tunnel, _info) = routed.into_parts();
    let (_io, rest) = tunnel.into_inner();
    assert_eq!(rest.capacity(), 0, "the read buffer was not kept");
}

#[tokio::test]
async fn direct_route() {
    let origin = TestOrigin::start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::direct())
        .service(HttpConnector::new());
    let mut conn = connect.oneshot(url(&origin)).await.unwrap();
    assert_eq!(conn.info().route(), &Route::Direct);
    assert_eq!(conn.info().timings().proxy_connect(), None);
    let (parts, _) = get(&mut conn, "/").await;
    assert_eq!(parts.headers["x-origin-via-proxy"], "false");
    assert_eq!(origin.direct_connections(), 1);
}

#[tokio::test]
async fn plain_http_target_passes_through_tls_layer() {
    let origin = TestOrigin::builder().plain_http().start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(tower_tunnel::test_util::client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new());
    let mut conn = connect
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap();
    assert!(conn.info().tls_version().is_none());
    assert_eq!(conn.version(), Version::HTTP_11);
    assert_eq!(get(&mut conn, "/").await.0.status, 200);
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn hyper_util_client_pools_two_http2_requests_on_one_connection() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new());
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(connect);

    for _ in 0..2 {
        let res = client.get(url(&origin)).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), Version::HTTP_2);
        // The connection info rides along in the response extensions.
        let info = res
            .extensions()
            .get::<tower_tunnel::ConnectionInfo>()
            .unwrap();
        assert!(info.is_h2());
        assert!(!info.route().is_direct());
        res.into_body().collect().await.unwrap();
    }
    assert_eq!(origin.connections(), 1);
    assert_eq!(proxy.connections(), 1);
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn second_connection_resumes_the_tls_session() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new());
    let mut first = connect.clone().oneshot(url(&origin)).await.unwrap();
    assert!(!first.info().is_resumed());
    // TLS 1.3 tickets arrive after the handshake; a request makes sure the
    // client has read them.
    get(&mut first, "/").await;
    let second = connect.oneshot(url(&origin)).await.unwrap();
    assert!(second.info().is_resumed(), "{}", second.info());
}

#[tokio::test]
async fn connect_timeout_fires_when_the_proxy_never_answers() {
    let proxy = TestProxy::builder()
        .fault(Fault::Silence)
        .start()
        .await
        .unwrap();
    let connect = ServiceBuilder::new()
        .layer(
            ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap())
                .with_connect_timeout(Some(Duration::from_millis(300))),
        )
        .service(HttpConnector::new());
    let started = Instant::now();
    let err = connect
        .oneshot("https://localhost:1".parse().unwrap())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.phase(), Some(Phase::ProxyConnect));
    assert!(err.is_timeout());
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "proxy {} did not answer CONNECT to localhost:1 within 300ms",
            proxy.addr()
        )
    );
}

#[tokio::test]
async fn tls_timeout_is_its_own_error() {
    // A TCP server that accepts and never speaks TLS.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = mute.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let (_sock, _) = mute.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let connect = ServiceBuilder::new()
        .layer(
            TlsLayer::new(tower_tunnel::test_util::client_config())
                .with_handshake_timeout(Some(Duration::from_millis(200))),
        )
        .layer(ProxyConnectLayer::direct())
        .service(HttpConnector::new());
    let err = connect
        .oneshot(
            format!("https://localhost:{}", addr.port())
                .parse()
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.phase()),
        (ErrorKind::Timeout, Some(Phase::Tls))
    );
    assert_eq!(
        err.to_string(),
        format!(
            "TLS handshake with localhost:{} timed out after 200ms",
            addr.port()
        )
    );
}

#[tokio::test]
async fn sni_is_the_target_name_not_the_proxy() {
    // A TLS server that records the SNI it was sent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tower_tunnel::test_util::tls_acceptor(vec![b"http/1.1".to_vec()]);
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(sock).await.unwrap();
        tls.get_ref().1.server_name().map(str::to_owned)
    });
    let proxy = TestProxy::start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(tower_tunnel::test_util::client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new());
    let stream = connect
        .oneshot(format!("https://localhost:{port}").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(stream.info().alpn(), Some("http/1.1"));
    assert_eq!(server.await.unwrap().as_deref(), Some("localhost"));
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_error_naming_both_ends() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let trusts_nothing = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(std::sync::Arc::new(trusts_nothing)))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new());
    let err = connect.oneshot(url(&origin)).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.phase()),
        (ErrorKind::Tls, Some(Phase::Tls))
    );
    assert_eq!(
        err.to_string(),
        format!(
            "TLS handshake with {} via proxy {} failed",
            origin.authority(),
            proxy.addr()
        )
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("certificate"), "{source}");
}

#[tokio::test]
async fn unreachable_proxy_is_a_dial_error() {
    // Bind then drop, so the port is (almost certainly) closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let connect = ServiceBuilder::new()
        .layer(ProxyConnectLayer::new(
            Proxy::new(&format!("http://user:hunter2@127.0.0.1:{port}")).unwrap(),
        ))
        .service(HttpConnector::new());
    let err = connect
        .oneshot("https://example.com".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.phase()),
        (ErrorKind::Dial, Some(Phase::Dial))
    );
    let shown = format!("{err} {err:?}");
    assert!(shown.starts_with(&format!(
        "could not connect to proxy 127.0.0.1:{port} for example.com:443"
    )));
    assert!(!shown.contains("hunter2"), "{shown}");
}

/// A user's own IO type goes below `ProxyConnectLayer` by implementing
/// `Transport`.
mod own_transport {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use hyper::rt::{Read, ReadBufCursor, Write};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpStream;

    use super::*;

    /// Counts the bytes written through it.
    struct Metered {
        io: TokioIo<TcpStream>,
        written: Arc<AtomicUsize>,
    }

    impl tower_tunnel::Transport for Metered {}

    impl Read for Metered {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: ReadBufCursor<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_read(cx, buf)
        }
    }

    impl Write for Metered {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, buf))?;
            self.written.fetch_add(n, Ordering::Relaxed);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn own_connector_below_proxy_connect() {
        let origin = TestOrigin::start().await.unwrap();
        let proxy = TestProxy::start().await.unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let counter = written.clone();
        let dialer = tower::service_fn(move |uri: Uri| {
            let written = counter.clone();
            async move {
                let host = uri.host().unwrap_or_default().to_owned();
                let port = uri.port_u16().unwrap_or(80);
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                Ok::<_, std::io::Error>(Metered {
                    io: TokioIo::new(tcp),
                    written,
                })
            }
        });
        let connect = ServiceBuilder::new()
            .layer(AlpnDispatchLayer::new())
            .layer(TlsLayer::new(origin.client_config()))
            .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
            .service(dialer);
        let mut conn = connect.oneshot(url(&origin)).await.unwrap();
        assert_eq!(get(&mut conn, "/").await.0.status, 200);
        assert!(written.load(Ordering::Relaxed) > 100);
        assert_eq!(origin.direct_connections(), 0);
    }
}

//! HTTP/2 to the proxy itself (RFC 9113 §8.5): `CONNECT` streams over one TLS
//! connection to an `https://` proxy, many tunnels sharing it, over loopback.

use bytes::Bytes;
use http::{Request, Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{client_config, TestH2Proxy, TestOrigin};
use tower_tunnel::Http2Mode;
use tower_tunnel::{
    AlpnDispatchLayer, ErrorKind, HttpConnection, Proxy, ProxyConnectLayer, Route, TlsLayer,
};

type Body = Empty<Bytes>;

fn stack(
    proxy: Proxy,
) -> impl Service<Uri, Response = HttpConnection<Body>, Error = tower_tunnel::Error, Future: Send>
       + Clone
       + Send
       + 'static {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(client_config()))
        .layer(ProxyConnectLayer::new(proxy).with_proxy_tls(client_config()))
        .service(HttpConnector::new())
}

fn target(origin: &TestOrigin) -> Uri {
    format!("https://localhost:{}/", origin.addr().port())
        .parse()
        .unwrap()
}

async fn get(conn: &mut HttpConnection<Body>) -> http::StatusCode {
    let req = Request::get("/").body(Body::new()).unwrap();
    let res = conn.send_request(req).await.unwrap();
    let status = res.status();
    assert_eq!(res.headers()["x-origin-via-proxy"], "true");
    res.into_body().collect().await.unwrap();
    status
}

#[tokio::test]
async fn h2_and_http11_inside_an_h2_proxy_stream() {
    let proxy = TestH2Proxy::start().await.unwrap();
    let h2_origin = TestOrigin::start().await.unwrap();
    let h1_origin = TestOrigin::builder()
        .alpn(vec![b"http/1.1".to_vec()])
        .start()
        .await
        .unwrap();
    let connect = stack(Proxy::new(&proxy.url()).unwrap());

    let mut h2 = connect.clone().oneshot(target(&h2_origin)).await.unwrap();
    assert_eq!(h2.version(), Version::HTTP_2);
    assert_eq!(get(&mut h2).await, 200);
    let mut h1 = connect.clone().oneshot(target(&h1_origin)).await.unwrap();
    assert_eq!(h1.version(), Version::HTTP_11);
    assert_eq!(get(&mut h1).await, 200);

    let info = h2.info();
    assert!(info.route().is_h2_tunnel(), "{}", info.route());
    assert_eq!(
        info.route().to_string(),
        format!("tunnel via h2 proxy {} (stream 1)", proxy.addr())
    );
    assert!(matches!(
        h1.info().route(),
        Route::H2Tunnel { stream: 3, .. }
    ));
    assert_eq!(info.shared_tunnels(), Some(2));
    assert_eq!(proxy.connections(), 1);
    assert_eq!(proxy.h2_connections(), 1);
    assert_eq!(proxy.streams(), 2);
    assert_eq!(
        h2_origin.direct_connections() + h1_origin.direct_connections(),
        0
    );
    // The tunnel's slot is freed when its connection task ends.
    drop(h1);
    for _ in 0..100 {
        if h2.info().shared_tunnels() == Some(1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(h2.info().shared_tunnels(), Some(1));
}

#[tokio::test]
async fn a_hundred_concurrent_tunnels_share_one_proxy_connection() {
    let proxy = TestH2Proxy::builder()
        .max_concurrent_streams(100)
        .start()
        .await
        .unwrap();
    let origin = TestOrigin::start().await.unwrap();
    let connect = stack(Proxy::new(&proxy.url()).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (connect, uri) = (connect.clone(), target(&origin));
        tasks.spawn(async move {
            let mut conn = connect.oneshot(uri).await.unwrap();
            assert_eq!(get(&mut conn).await, 200);
            conn
        });
    }
    let mut conns = Vec::new();
    while let Some(conn) = tasks.join_next().await {
        conns.push(conn.unwrap());
    }
    assert_eq!(proxy.connections(), 1, "one TLS connection to the proxy");
    assert_eq!(proxy.streams(), 100);
    assert_eq!(origin.proxied_connections(), 100);
    assert_eq!(conns[0].info().shared_tunnels(), Some(100));
    // The 101st opens a second connection: the proxy's SETTINGS allow 100.
    let extra = connect.clone().oneshot(target(&origin)).await.unwrap();
    assert_eq!(proxy.connections(), 2);
    drop(conns);
    drop(extra);
    // Slots are free again: the first connection takes the next tunnel.
    let mut again = connect.oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut again).await, 200);
    assert_eq!(proxy.connections(), 2);
}

#[tokio::test]
async fn a_407_on_one_stream_leaves_the_other_tunnels_running() {
    let origin = TestOrigin::start().await.unwrap();
    let refused = TestOrigin::start().await.unwrap();
    let refused_authority = format!("localhost:{}", refused.addr().port());
    let proxy = TestH2Proxy::builder()
        .refuse_with_407(&refused_authority)
        .start()
        .await
        .unwrap();
    let connect = stack(Proxy::new(&proxy.url()).unwrap());
    let mut before = connect.clone().oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut before).await, 200);

    let err = connect.clone().oneshot(target(&refused)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired, "{err}");
    assert_eq!(
        err.status(),
        Some(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED)
    );
    assert_eq!(
        err.to_string(),
        format!(
            "proxy {} refused CONNECT to {refused_authority}: 407 Proxy Authentication Required (Basic realm=\"tower-tunnel-test\")",
            proxy.addr()
        )
    );

    // The tunnel opened before still works, and a new one shares the connection.
    assert_eq!(get(&mut before).await, 200);
    let mut after = connect.oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut after).await, 200);
    assert_eq!(proxy.connections(), 1);
    assert_eq!(proxy.streams(), 3);
    assert_eq!(refused.connections(), 0);
}

#[tokio::test]
async fn never_speaks_http11_connect_over_tls() {
    let proxy = TestH2Proxy::start().await.unwrap();
    let origin = TestOrigin::start().await.unwrap();
    let connect = stack(
        Proxy::new(&proxy.url())
            .unwrap()
            .with_http2(Http2Mode::Never),
    );
    let mut a = connect.clone().oneshot(target(&origin)).await.unwrap();
    let mut b = connect.oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut a).await, 200);
    assert_eq!(get(&mut b).await, 200);
    assert!(matches!(a.info().route(), Route::Tunnel { .. }));
    assert_eq!(a.info().shared_tunnels(), None);
    assert_eq!(proxy.connections(), 2);
    assert_eq!(proxy.h2_connections(), 0);
}

#[tokio::test]
async fn auto_falls_back_and_required_fails_on_an_http11_proxy() {
    let proxy = TestH2Proxy::builder()
        .alpn(vec![b"http/1.1".to_vec()])
        .start()
        .await
        .unwrap();
    let origin = TestOrigin::start().await.unwrap();
    let mut conn = stack(Proxy::new(&proxy.url()).unwrap())
        .oneshot(target(&origin))
        .await
        .unwrap();
    assert_eq!(get(&mut conn).await, 200);
    assert!(matches!(conn.info().route(), Route::Tunnel { .. }));

    let err = stack(
        Proxy::new(&proxy.url())
            .unwrap()
            .with_http2(Http2Mode::Required),
    )
    .oneshot(target(&origin))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyAlpnMismatch, "{err}");
    assert_eq!(proxy.h2_connections(), 0);
}

#[tokio::test]
async fn a_dropped_proxy_connection_fails_its_tunnels_and_the_next_connect_reopens() {
    let proxy = TestH2Proxy::start().await.unwrap();
    let origin = TestOrigin::start().await.unwrap();
    let connect = stack(Proxy::new(&proxy.url()).unwrap());
    let mut live = connect.clone().oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut live).await, 200);

    proxy.drop_connections();
    let req = Request::get("/").body(Body::new()).unwrap();
    let failed = tokio::time::timeout(std::time::Duration::from_secs(10), live.send_request(req))
        .await
        .expect("the live tunnel fails promptly");
    assert!(failed.is_err(), "{failed:?}");

    let mut fresh = connect.oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut fresh).await, 200);
    assert_eq!(proxy.connections(), 2);
    assert!(matches!(
        fresh.info().route(),
        Route::H2Tunnel { stream: 1, .. }
    ));
}

/// Flow control per stream: a tunnel whose reader has stopped (a 64 MiB
/// body left unread) fills its own stream window, and the other tunnels on
/// the same proxy connection carry on.
#[tokio::test]
async fn a_stalled_tunnel_does_not_stall_the_others() {
    let proxy = TestH2Proxy::start().await.unwrap();
    let origin = TestOrigin::start().await.unwrap();
    let connect = stack(
        Proxy::new(&proxy.url())
            .unwrap()
            .with_http2(Http2Mode::Required),
    );

    let mut stalled = connect.clone().oneshot(target(&origin)).await.unwrap();
    let req = Request::get("/bytes/67108864").body(Body::new()).unwrap();
    let res = stalled.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    // Hold the body without reading it: its stream window fills and stays full.
    let _unread = res.into_body();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let run = async {
        for _ in 0..20 {
            let mut conn = connect.clone().oneshot(target(&origin)).await.unwrap();
            assert_eq!(get(&mut conn).await, 200);
            let req = Request::get("/bytes/1048576").body(Body::new()).unwrap();
            let body = conn.send_request(req).await.unwrap().into_body();
            assert_eq!(body.collect().await.unwrap().to_bytes().len(), 1 << 20);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), run)
        .await
        .expect("a stalled tunnel stalled the proxy connection");
    assert_eq!(
        proxy.h2_connections(),
        1,
        "all tunnels shared one connection"
    );
}

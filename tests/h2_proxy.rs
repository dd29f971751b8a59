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

#[path = "common/raw_h2.rs"]
mod raw_h2;

use raw_h2::{Action, RawH2Proxy};
use std::time::Duration;

type Body = Empty<Bytes>;

/// The route stage alone: the raw proxy opens tunnels and carries nothing in them.
fn routes(
    proxy: &str,
) -> impl Service<
    Uri,
    Response = tower_tunnel::Routed<hyper_util::rt::TokioIo<tokio::net::TcpStream>>,
    Error = tower_tunnel::Error,
    Future: Send,
> + Clone
       + Send
       + 'static {
    ServiceBuilder::new()
        .layer(
            ProxyConnectLayer::new(Proxy::new(proxy).unwrap())
                .with_proxy_tls(client_config())
                .with_connect_timeout(Some(Duration::from_secs(10))),
        )
        .service(HttpConnector::new())
}

fn h2_stream(info: &tower_tunnel::ConnectionInfo) -> u32 {
    match info.route() {
        Route::H2Tunnel { stream, .. } => *stream,
        other => panic!("not an HTTP/2 tunnel: {other}"),
    }
}

const ANY: &str = "https://localhost:9/";

fn stack(
    proxy: Proxy,
) -> impl Service<Uri, Response = HttpConnection<Body>, Error = tower_tunnel::Error, Future: Send>
       + Clone
       + Send
       + 'static {
    stack_over(ProxyConnectLayer::new(proxy).with_proxy_tls(client_config()))
}

/// The whole stack over `route`.
fn stack_over(
    route: ProxyConnectLayer,
) -> impl Service<Uri, Response = HttpConnection<Body>, Error = tower_tunnel::Error, Future: Send>
       + Clone
       + Send
       + 'static {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(client_config()))
        .layer(route)
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

#[tokio::test]
async fn a_third_tunnel_opens_a_second_connection_when_the_proxy_allows_two() {
    let proxy = TestH2Proxy::builder()
        .max_concurrent_streams(2)
        .start()
        .await
        .unwrap();
    let origin = TestOrigin::start().await.unwrap();
    let connect = stack(Proxy::new(&proxy.url()).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..3 {
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
    assert_eq!(proxy.connections(), 2, "two streams per connection");
    assert_eq!(proxy.streams(), 3);
    let mut shared: Vec<_> = conns
        .iter()
        .map(|c| c.info().shared_tunnels().unwrap())
        .collect();
    shared.sort_unstable();
    assert_eq!(shared, [1, 2, 2]);
    // All three still carry requests.
    for conn in &mut conns {
        assert_eq!(get(conn).await, 200);
    }
}

#[tokio::test]
async fn a_connection_whose_proxy_lowered_its_limit_takes_no_new_streams() {
    // 10 streams allowed, lowered to 1 once the second tunnel is open.
    let proxy = RawH2Proxy::start(10, vec![vec![Action::Answer, Action::AnswerThenLower(1)]]).await;
    let connect = routes(&proxy.url());
    let a = connect.clone().oneshot(ANY.parse().unwrap()).await.unwrap();
    let b = connect.clone().oneshot(ANY.parse().unwrap()).await.unwrap();
    assert_eq!((h2_stream(a.info()), h2_stream(b.info())), (1, 3));
    assert_eq!(proxy.connections(), 1);
    // The SETTINGS came before the answer to b: the third goes elsewhere.
    let c = connect.clone().oneshot(ANY.parse().unwrap()).await.unwrap();
    assert_eq!(h2_stream(c.info()), 1, "{}", c.info());
    assert_eq!(proxy.connections(), 2);
    assert_eq!(c.info().shared_tunnels(), Some(1));
    assert_eq!(a.info().shared_tunnels(), Some(2));
}

/// Tunnels that arrive while a new connection waits for the proxy's `SETTINGS` do not
/// take h2's provisional limit (100) for the proxy's: they wait, then fill the
/// connection up to the proxy's limit and open another.
#[tokio::test]
async fn tunnels_wait_for_a_new_connections_settings_before_sharing_it() {
    let proxy = RawH2Proxy::start_with_settings_delay(2, vec![], Duration::from_millis(300)).await;
    let connect = routes(&proxy.url());
    let first = tokio::spawn(connect.clone().oneshot(ANY.parse().unwrap()));
    // The first tunnel's connection is open and waiting for the proxy's SETTINGS.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (b, c) = tokio::join!(
        connect.clone().oneshot(ANY.parse().unwrap()),
        connect.clone().oneshot(ANY.parse().unwrap())
    );
    let (a, b, c) = (first.await.unwrap().unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(proxy.connections(), 2, "two streams per connection");
    assert_eq!(proxy.streams(), 3);
    let mut shared: Vec<_> = [&a, &b, &c]
        .iter()
        .map(|t| t.info().shared_tunnels().unwrap())
        .collect();
    shared.sort_unstable();
    assert_eq!(shared, [1, 2, 2]);
}

#[tokio::test]
async fn a_stream_above_goaway_last_stream_id_is_sent_again_on_a_fresh_connection() {
    // The first connection answers stream 1, then goes away naming it last:
    // stream 3 was never processed.
    let proxy = RawH2Proxy::start(100, vec![vec![Action::Answer, Action::GoAway]]).await;
    let connect = routes(&proxy.url());
    let a = connect.clone().oneshot(ANY.parse().unwrap()).await.unwrap();
    assert!(!a.info().is_h2_retried());
    let b = connect.clone().oneshot(ANY.parse().unwrap()).await.unwrap();
    assert!(b.info().is_h2_retried(), "{}", b.info());
    assert_eq!(h2_stream(b.info()), 1, "on a fresh connection");
    assert_eq!(proxy.connections(), 2);
    // New tunnels never go to the connection going away.
    let c = connect.clone().oneshot(ANY.parse().unwrap()).await.unwrap();
    assert_eq!(h2_stream(c.info()), 3);
    assert!(!c.info().is_h2_retried());
    assert_eq!(proxy.connections(), 2);
    assert_eq!(proxy.streams(), 4);
    // The tunnel opened before the GOAWAY is still counted on its connection.
    assert_eq!(a.info().shared_tunnels(), Some(1));
}

#[tokio::test]
async fn a_refused_stream_is_sent_again_once() {
    let proxy = RawH2Proxy::start(100, vec![vec![Action::Refuse]]).await;
    let connect = routes(&proxy.url());
    let a = connect.clone().oneshot(ANY.parse().unwrap()).await.unwrap();
    assert!(a.info().is_h2_retried());
    // REFUSED_STREAM leaves the connection usable (RFC 9113 §8.7).
    assert_eq!(h2_stream(a.info()), 3);
    assert_eq!(proxy.connections(), 1);
    assert_eq!(proxy.streams(), 2);
}

#[tokio::test]
async fn a_second_goaway_fails_the_tunnel_with_a_typed_error_naming_the_proxy() {
    let proxy = RawH2Proxy::start(100, vec![vec![Action::GoAway], vec![Action::GoAway]]).await;
    let err = routes(&proxy.url())
        .oneshot(ANY.parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyClosed, "{err}");
    assert_eq!(
        err.proxy().map(|p| p.as_str()),
        Some(&*proxy.addr.to_string())
    );
    assert_eq!(
        err.to_string(),
        format!(
            "proxy {} closed the connection without answering CONNECT to localhost:9: \
             its HTTP/2 connection is going away (GOAWAY NO_ERROR) and did not process the stream",
            proxy.addr
        )
    );
    assert_eq!(proxy.connections(), 2, "sent again once, not more");
}

/// A graceful shutdown (a proxy reloading): the tunnel open before it keeps working, and
/// new tunnels open a new connection instead of going to the one going away.
#[tokio::test]
async fn after_a_graceful_goaway_open_tunnels_run_on_and_new_ones_use_a_new_connection() {
    let proxy = TestH2Proxy::start().await.unwrap();
    let origin = TestOrigin::start().await.unwrap();
    let connect = stack(Proxy::new(&proxy.url()).unwrap());
    let mut open = connect.clone().oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut open).await, 200);

    proxy.go_away();
    // Until the GOAWAY arrives a new tunnel may still share the old connection; every
    // one of them works either way. Bounded: 40 tries, 50 ms apart.
    let mut fresh = None;
    for _ in 0..40 {
        let mut conn = connect.clone().oneshot(target(&origin)).await.unwrap();
        assert_eq!(get(&mut conn).await, 200);
        if proxy.connections() == 2 {
            fresh = Some(conn);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh = fresh.expect("no new proxy connection after GOAWAY");
    assert_eq!(h2_stream(fresh.info()), 1);
    assert_eq!(get(&mut open).await, 200, "the open tunnel runs on");
    let mut next = connect.oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut next).await, 200);
    assert_eq!(proxy.connections(), 2);
    assert_eq!(h2_stream(next.info()), 3);
}

/// A proxy killed with tunnels open on it: each tunnel's next request fails with a
/// typed error that names the proxy, within the deadline, and the next connect dials
/// afresh.
#[tokio::test]
async fn a_killed_proxy_fails_every_tunnel_on_its_connection_naming_the_proxy() {
    let proxy = TestH2Proxy::start().await.unwrap();
    let origin = TestOrigin::start().await.unwrap();
    let proxy_addr = proxy.addr();
    let connect = stack(Proxy::new(&proxy.url()).unwrap());
    let mut a = connect.clone().oneshot(target(&origin)).await.unwrap();
    let mut b = connect.clone().oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut a).await, 200);
    assert_eq!(get(&mut b).await, 200);
    assert_eq!(proxy.connections(), 1);

    proxy.drop_connections();
    drop(proxy);
    for conn in [&mut a, &mut b] {
        let req = Request::get("/").body(Body::new()).unwrap();
        let err = tokio::time::timeout(Duration::from_secs(10), conn.send_request(req))
            .await
            .expect("a tunnel on a dead proxy connection fails promptly")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Request, "{err}");
        assert_eq!(
            err.proxy().map(|p| p.to_string()),
            Some(proxy_addr.to_string()),
            "{err}"
        );
    }
    // Nothing listens there any more: the next connect dials, and says so.
    let err = connect.oneshot(target(&origin)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Dial, "{err}");
    assert_eq!(
        err.proxy().map(|p| p.to_string()),
        Some(proxy_addr.to_string())
    );
}

/// Below the HTTP layer: a read on a tunnel whose proxy connection died fails with an
/// `io::Error` that carries the crate's error, naming the proxy and the target.
#[tokio::test]
async fn a_read_on_a_tunnel_whose_proxy_died_names_the_proxy() {
    use tokio::io::AsyncReadExt;

    let proxy = RawH2Proxy::start(100, vec![]).await;
    let addr = proxy.addr;
    let routed = routes(&proxy.url())
        .oneshot(ANY.parse().unwrap())
        .await
        .unwrap();
    drop(proxy);
    let mut io = hyper_util::rt::TokioIo::new(routed);
    let mut buf = [0; 16];
    let err = tokio::time::timeout(Duration::from_secs(10), io.read(&mut buf))
        .await
        .expect("the read fails promptly")
        .unwrap_err();
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<tower_tunnel::Error>())
        .unwrap_or_else(|| panic!("not a tower_tunnel::Error: {err:?}"));
    assert_eq!(inner.kind(), ErrorKind::Io);
    assert_eq!(
        inner.to_string(),
        format!(
            "I/O error with localhost:9 via proxy {addr}: the proxy's HTTP/2 connection under the tunnel failed"
        )
    );
}

/// A reset in the middle of the proxy connection's bytes (a `FaultRelay` between client
/// and proxy resets both ways half way through a 1 MiB download on one of two open
/// tunnels): both tunnels fail with typed errors naming the proxy, within the deadline,
/// and the next connect opens a fresh proxy connection.
#[tokio::test]
async fn a_reset_under_open_tunnels_fails_them_all_naming_the_proxy() {
    use tower_tunnel::test_util::{Direction, FaultRelay, RelayFault};

    let proxy = TestH2Proxy::start().await.unwrap();
    let origin = TestOrigin::start().await.unwrap();
    // Handshakes and two small answers take a few KiB down; 512 KiB lands inside the
    // download whatever TLS resumption saves.
    let relay = FaultRelay::builder(proxy.addr())
        .fault(RelayFault::Reset {
            direction: Direction::Down,
            at: 512 * 1024,
        })
        .start()
        .await
        .unwrap();
    let relay_addr = relay.addr().to_string();
    let connect = stack(Proxy::new(&format!("https://{relay_addr}")).unwrap());
    let mut a = connect.clone().oneshot(target(&origin)).await.unwrap();
    let mut b = connect.clone().oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut a).await, 200);
    assert_eq!(get(&mut b).await, 200);
    assert_eq!(relay.connections(), 1);

    let run = async {
        let req = Request::get("/bytes/1048576").body(Body::new()).unwrap();
        // The reset may hit before the response head or inside the body.
        let failed = match a.send_request(req).await {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Request, "{e}");
                assert_eq!(e.proxy().map(|p| p.to_string()), Some(relay_addr.clone()));
                e.to_string()
            }
            Ok(res) => res
                .into_body()
                .collect()
                .await
                .expect_err("a reset half way through the body")
                .to_string(),
        };
        let req = Request::get("/").body(Body::new()).unwrap();
        let err = b.send_request(req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Request, "{err}");
        assert_eq!(
            err.proxy().map(|p| p.to_string()),
            Some(relay_addr.clone()),
            "{err}"
        );
        failed
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the tunnels fail promptly after the reset");
    assert!(relay.bytes(Direction::Down) < 1024 * 1024);

    // The next connect opens a fresh connection (the relay resets only past 512 KiB).
    let mut fresh = connect.oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut fresh).await, 200);
    assert_eq!(relay.connections(), 2);
    assert_eq!(h2_stream(fresh.info()), 1);
}

/// A pooled proxy connection that goes silent (no FIN, no RST: a NAT or firewall that
/// forgot it, a proxy host gone) costs one tunnel its connect timeout, not every
/// tunnel after it: the connection whose `CONNECT` went unanswered takes no new
/// tunnel, and the next connect opens a fresh one. With and without optimistic data.
#[tokio::test]
async fn a_proxy_connection_gone_silent_takes_no_new_tunnels() {
    use tower_tunnel::{test_util::FaultRelay, Phase};

    for optimistic in [false, true] {
        let proxy = TestH2Proxy::start().await.unwrap();
        let origin = TestOrigin::start().await.unwrap();
        let relay = FaultRelay::start(proxy.addr()).await.unwrap();
        let relay_addr = relay.addr().to_string();
        let p = Proxy::new(&format!("https://{relay_addr}"))
            .unwrap()
            .with_optimistic_data(optimistic);
        let limit = Duration::from_millis(700);
        let connect = stack_over(
            ProxyConnectLayer::new(p)
                .with_proxy_tls(client_config())
                .with_connect_timeout(Some(limit)),
        );
        let mut first = connect.clone().oneshot(target(&origin)).await.unwrap();
        assert_eq!(get(&mut first).await, 200);
        assert_eq!(relay.connections(), 1);

        relay.stall_open();
        let started = std::time::Instant::now();
        let err = connect
            .clone()
            .oneshot(target(&origin))
            .await
            .expect_err("no answer comes through a stalled connection");
        assert_eq!(err.kind(), ErrorKind::Timeout, "{optimistic}: {err}");
        assert_eq!(
            err.phase(),
            Some(Phase::ProxyConnect),
            "{optimistic}: {err}"
        );
        assert_eq!(err.proxy().map(|p| p.to_string()), Some(relay_addr.clone()));
        assert!(
            started.elapsed() < limit + Duration::from_secs(3),
            "{optimistic}: {:?}",
            started.elapsed()
        );

        // The next tunnel does not wait on the silent connection: a fresh one.
        let mut next = tokio::time::timeout(
            Duration::from_secs(10),
            connect.clone().oneshot(target(&origin)),
        )
        .await
        .expect("the next connect does not hang")
        .unwrap_or_else(|e| panic!("{optimistic}: {e}"));
        assert_eq!(get(&mut next).await, 200);
        assert_eq!(relay.connections(), 2, "{optimistic}");
        assert_eq!(h2_stream(next.info()), 1, "{optimistic}");
        assert_eq!(next.info().shared_tunnels(), Some(1), "{optimistic}");
    }
}

/// With keep-alive, a proxy connection gone silent is closed within about two
/// intervals: the tunnel open on it fails with a typed error naming the proxy instead
/// of waiting on its reads, and the next tunnel opens a fresh connection at once
/// (the connect timeout, 30 s here, is not paid). A live connection answers the
/// `PING`s and is shared as before; once the layer and its tunnels are dropped, the
/// `PING`s stop.
#[tokio::test]
async fn keep_alive_closes_a_proxy_connection_gone_silent() {
    use tower_tunnel::test_util::{Direction, FaultRelay};

    let proxy = TestH2Proxy::start().await.unwrap();
    let origin = TestOrigin::start().await.unwrap();
    let relay = FaultRelay::start(proxy.addr()).await.unwrap();
    let relay_addr = relay.addr().to_string();
    let every = Duration::from_millis(200);
    let connect = stack_over(
        ProxyConnectLayer::new(Proxy::new(&format!("https://{relay_addr}")).unwrap())
            .with_proxy_tls(client_config())
            .with_h2_keep_alive(Some(every)),
    );

    // Alive: idle for five intervals, the PINGs go up and are answered; the
    // connection still takes the next tunnel.
    let mut first = connect.clone().oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut first).await, 200);
    let up = relay.bytes(Direction::Up);
    tokio::time::sleep(every * 5).await;
    assert!(relay.bytes(Direction::Up) > up, "no PING sent while idle");
    let mut second = connect.clone().oneshot(target(&origin)).await.unwrap();
    assert_eq!(get(&mut second).await, 200);
    assert_eq!(relay.connections(), 1);
    assert_eq!(second.info().shared_tunnels(), Some(2));

    // Silent: the open tunnels fail, without a request to find out.
    relay.stall_open();
    let started = std::time::Instant::now();
    let req = Request::get("/").body(Body::new()).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), first.send_request(req))
        .await
        .expect("the tunnel fails once the keep-alive gives up, not never")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Request, "{err}");
    assert_eq!(err.proxy().map(|p| p.to_string()), Some(relay_addr.clone()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The next tunnel opens a fresh connection, well inside the connect timeout.
    let started = std::time::Instant::now();
    let mut next = connect.clone().oneshot(target(&origin)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(get(&mut next).await, 200);
    assert_eq!(relay.connections(), 2);
    assert_eq!(h2_stream(next.info()), 1);

    // Dropped: the keep-alive holds neither the pool nor the connection.
    drop((first, second, next, connect));
    tokio::time::sleep(every * 3).await;
    let up = relay.bytes(Direction::Up);
    tokio::time::sleep(every * 5).await;
    assert_eq!(
        relay.bytes(Direction::Up),
        up,
        "PINGs go on after the layer was dropped"
    );
}

//! Optimistic tunnel data (`Proxy::with_optimistic_data`): the `CONNECT`
//! leaves in the same write as the target's `ClientHello`, the answer is
//! read before the `ServerHello`, and every refusal or broken answer is the
//! same error as without it.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{Fault, TestOrigin, TestProxy};
use tower_tunnel::{
    AlpnDispatchLayer, Error, HttpConnection, Proxy, ProxyAuth, ProxyConnectLayer, Route, TlsLayer,
};

type Body = Empty<Bytes>;

async fn connect(
    origin: &TestOrigin,
    proxy: Proxy,
    target: &str,
) -> Result<HttpConnection<Body>, Error> {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(proxy).with_connect_timeout(Some(Duration::from_secs(5))))
        .service(HttpConnector::new())
        .oneshot(target.parse::<Uri>().unwrap())
        .await
}

async fn get(conn: &mut HttpConnection<Body>) -> (http::StatusCode, String) {
    let req = Request::get("/").body(Body::new()).unwrap();
    let res = conn.send_request(req).await.expect("request");
    let status = res.status();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn tunnel_works_and_reports_the_answer() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let p = Proxy::new(&proxy.url()).unwrap().with_optimistic_data(true);
    assert!(p.is_optimistic_data());
    let mut conn = connect(&origin, p, &origin.https_url()).await.unwrap();
    assert_eq!(
        get(&mut conn).await,
        (
            http::StatusCode::OK,
            tower_tunnel::test_util::HELLO_BODY.to_owned()
        )
    );
    let info = conn.info();
    assert!(matches!(info.route(), Route::Tunnel { .. }));
    // Read during the TLS handshake, and filled in once it is done.
    assert_eq!(info.proxy_response().unwrap().status(), 200);
    let connect = info
        .timings()
        .proxy_connect()
        .expect("proxy_connect timing");
    assert!(connect <= info.timings().total());
    assert_eq!(proxy.requests().len(), 1);
    assert_eq!(proxy.requests()[0].method, "CONNECT");
    assert_eq!(origin.direct_connections(), 0);
    assert_eq!(origin.proxied_connections(), 1);
}

/// A proxy that reads until its first read holds the whole `CONNECT` head,
/// returns what that read held after the head, then answers `403`.
async fn first_read_proxy() -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let mut filled = 0;
        // Bounded: the head is a few hundred bytes, and the client's
        // writes stop after its first flight.
        for _ in 0..64 {
            let n = s.read(&mut buf[filled..]).await.unwrap();
            assert!(n > 0, "closed before the request");
            filled += n;
            if let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                let after = buf[end + 4..filled].to_vec();
                s.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    .await
                    .unwrap();
                return after;
            }
        }
        panic!("no CONNECT head");
    });
    (url, task)
}

#[tokio::test]
async fn connect_and_client_hello_leave_in_one_write() {
    let origin = TestOrigin::start().await.unwrap();
    let (url, task) = first_read_proxy().await;
    let p = Proxy::new(&url).unwrap().with_optimistic_data(true);
    let err = connect(&origin, p, &origin.https_url()).await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::FORBIDDEN));
    let after = task.await.unwrap();
    // A TLS handshake record (type 22, version 3.x) right after the head.
    assert!(
        after.len() > 5,
        "only {} bytes came with the CONNECT",
        after.len()
    );
    assert_eq!(&after[..2], &[0x16, 0x03]);
}

#[tokio::test]
async fn without_optimism_nothing_comes_with_the_connect() {
    let origin = TestOrigin::start().await.unwrap();
    let (url, task) = first_read_proxy().await;
    let err = connect(&origin, Proxy::new(&url).unwrap(), &origin.https_url())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::FORBIDDEN));
    assert!(task.await.unwrap().is_empty());
}

/// What an error says, for comparison.
fn facts(e: &Error) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {} {:?}",
        e.kind(),
        e.phase(),
        e.proxy(),
        e.target(),
        e,
        e.proxy_response().map(|r| (
            r.status(),
            r.reason().map(str::to_owned),
            r.headers().clone()
        )),
    )
}

#[tokio::test]
async fn every_refusal_and_broken_answer_is_the_same_error() {
    let origin = TestOrigin::start().await.unwrap();
    let faults = [
        Fault::Status(
            403,
            vec![("X-Reason".into(), "denied port".into())],
            b"no".to_vec(),
        ),
        Fault::Status(502, vec![], vec![]),
        Fault::Garbage,
        Fault::TlsAlert,
        Fault::CloseAfterRequest,
        Fault::TruncatedStatusLine,
        Fault::NoFinalBlankLine,
        Fault::BadVersion,
        Fault::SwitchingProtocols,
    ];
    for fault in faults {
        let proxy = TestProxy::builder()
            .fault(fault.clone())
            .start()
            .await
            .unwrap();
        let plain = connect(
            &origin,
            Proxy::new(&proxy.url()).unwrap(),
            &origin.https_url(),
        )
        .await
        .unwrap_err();
        let p = Proxy::new(&proxy.url()).unwrap().with_optimistic_data(true);
        let optimistic = connect(&origin, p, &origin.https_url()).await.unwrap_err();
        assert_eq!(facts(&optimistic), facts(&plain), "{fault:?}");
    }
    // Nothing reached the origin.
    assert_eq!(origin.tls_handshakes(), 0);
}

#[tokio::test]
async fn a_407_is_the_same_error_and_nothing_is_resent() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::builder()
        .basic_auth("alice", "right")
        .start()
        .await
        .unwrap();
    let wrong = format!("http://alice:wrong@{}", proxy.addr());
    let plain = connect(&origin, Proxy::new(&wrong).unwrap(), &origin.https_url())
        .await
        .unwrap_err();
    let before = proxy.connections();
    let p = Proxy::new(&wrong).unwrap().with_optimistic_data(true);
    let optimistic = connect(&origin, p, &origin.https_url()).await.unwrap_err();
    assert_eq!(facts(&optimistic), facts(&plain));
    assert_eq!(
        optimistic.status(),
        Some(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED)
    );
    // One connection, one request: no retry after the bytes went out.
    assert_eq!(proxy.connections(), before + 1);

    let right = format!("http://alice:right@{}", proxy.addr());
    let p = Proxy::new(&right).unwrap().with_optimistic_data(true);
    let mut conn = connect(&origin, p, &origin.https_url()).await.unwrap();
    assert_eq!(get(&mut conn).await.0, 200);
    assert_eq!(conn.info().proxy_auth(), Some("Basic"));
}

#[tokio::test]
async fn interim_answers_and_odd_successes_still_tunnel() {
    let origin = TestOrigin::start().await.unwrap();
    for fault in [
        Fault::ContinueThenOk,
        Fault::Http10Ok,
        Fault::BareLf,
        Fault::OkWithBody,
        Fault::Status2xx(204),
    ] {
        let proxy = TestProxy::builder()
            .fault(fault.clone())
            .start()
            .await
            .unwrap();
        let p = Proxy::new(&proxy.url()).unwrap().with_optimistic_data(true);
        let mut conn = connect(&origin, p, &origin.https_url()).await.unwrap();
        assert_eq!(get(&mut conn).await.0, 200, "{fault:?}");
    }
}

#[tokio::test]
async fn challenge_modes_and_plain_targets_are_never_optimistic() {
    let p = |mode| {
        Proxy::new("http://u:p@127.0.0.1:1")
            .unwrap()
            .with_auth(mode)
            .with_optimistic_data(true)
    };
    assert!(p(ProxyAuth::Basic).is_optimistic_data());
    for mode in [
        ProxyAuth::Any,
        ProxyAuth::Digest,
        ProxyAuth::Ntlm,
        ProxyAuth::Negotiate,
    ] {
        assert!(!p(mode).is_optimistic_data(), "{mode:?}");
    }
    assert!(!Proxy::new("http://127.0.0.1:1")
        .unwrap()
        .is_optimistic_data());

    // An http:// target tunnelled through the proxy: the request waits for
    // the answer, as without the setting.
    let origin = TestOrigin::builder().plain_http().start().await.unwrap();
    let (url, task) = first_read_proxy().await;
    let p = Proxy::new(&url)
        .unwrap()
        .with_http_tunneling(true)
        .with_optimistic_data(true);
    let target = format!("http://{}/", origin.authority());
    let err = connect(&origin, p, &target).await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::FORBIDDEN));
    assert!(task.await.unwrap().is_empty());
}

#[tokio::test]
async fn a_silent_proxy_is_a_tls_timeout_not_a_hang() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::builder()
        .fault(Fault::Silence)
        .start()
        .await
        .unwrap();
    let p = Proxy::new(&proxy.url()).unwrap().with_optimistic_data(true);
    let stack = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(
            TlsLayer::new(origin.client_config())
                .with_handshake_timeout(Some(Duration::from_millis(300))),
        )
        .layer(ProxyConnectLayer::new(p))
        .service(HttpConnector::new());
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        stack.oneshot(origin.https_url().parse::<Uri>().unwrap()),
    )
    .await
    .expect("bounded by the TLS handshake timeout")
    .unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

/// A SOCKS5 server that takes the greeting (no authentication), reads the
/// request, then refuses it with `REP` 5 (connection refused); returns how
/// many bytes came after the request in the read that completed it.
async fn refusing_socks5() -> (String, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("socks5h://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut greeting = [0u8; 3];
        s.read_exact(&mut greeting).await.unwrap();
        assert_eq!(greeting, [5, 1, 0]);
        s.write_all(&[5, 0]).await.unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let mut filled = 0;
        // Bounded: the request is at most 262 bytes.
        let len = loop {
            let n = s.read(&mut buf[filled..]).await.unwrap();
            assert!(n > 0, "closed before the request");
            filled += n;
            if filled >= 5 {
                let len = 4 + 1 + usize::from(buf[4]) + 2;
                if filled >= len {
                    break len;
                }
            }
        };
        s.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await.unwrap();
        filled - len
    });
    (url, task)
}

#[tokio::test]
async fn a_refused_socks5_request_is_the_same_error() {
    let origin = TestOrigin::start().await.unwrap();
    let (url, task) = refusing_socks5().await;
    let plain = connect(&origin, Proxy::new(&url).unwrap(), &origin.https_url())
        .await
        .unwrap_err();
    assert_eq!(
        task.await.unwrap(),
        0,
        "nothing comes with the request without the option"
    );
    let (url2, task) = refusing_socks5().await;
    let p = Proxy::new(&url2).unwrap().with_optimistic_data(true);
    let optimistic = connect(&origin, p, &origin.https_url()).await.unwrap_err();
    // The ClientHello came with the request.
    assert!(task.await.unwrap() > 5);
    assert_eq!(optimistic.kind(), tower_tunnel::ErrorKind::ProxyRefused);
    assert_eq!(optimistic.kind(), plain.kind());
    assert_eq!(optimistic.phase(), plain.phase());
    assert_eq!(optimistic.target(), plain.target());
    // The messages differ only in the proxy's port.
    assert_eq!(
        optimistic.to_string().replace(&url2[10..], "PROXY"),
        plain.to_string().replace(&url[10..], "PROXY")
    );
    assert_eq!(origin.tls_handshakes(), 0);
}

// --- HTTP/2 CONNECT streams ------------------------------------------------------------

#[path = "common/raw_h2.rs"]
mod raw_h2;

use raw_h2::{Action, RawH2Proxy};
use tower_tunnel::test_util::{client_config, TestH2Proxy};
use tower_tunnel::{ErrorKind, Phase, ProxyList};

/// The stack to an `https://` proxy, with its TLS trusting the test CA.
fn h2_stack(
    proxy: Proxy,
) -> impl tower::Service<Uri, Response = HttpConnection<Body>, Error = Error, Future: Send> + Clone
{
    h2_stack_from(ProxyConnectLayer::new(proxy))
}

fn h2_stack_from(
    layer: ProxyConnectLayer,
) -> impl tower::Service<Uri, Response = HttpConnection<Body>, Error = Error, Future: Send> + Clone
{
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(client_config()))
        .layer(
            layer
                .with_proxy_tls(client_config())
                .with_connect_timeout(Some(Duration::from_secs(5))),
        )
        .service(HttpConnector::new())
}

fn h2_target(origin: &TestOrigin) -> Uri {
    format!("https://localhost:{}/", origin.addr().port())
        .parse()
        .unwrap()
}

fn h2_stream(conn: &HttpConnection<Body>) -> u32 {
    match conn.info().route() {
        Route::H2Tunnel { stream, .. } => *stream,
        other => panic!("not an HTTP/2 tunnel: {other}"),
    }
}

/// A TLS handshake record (type 22, version 3.x): the start of a `ClientHello`.
fn is_client_hello(bytes: &[u8]) -> bool {
    bytes.len() > 5 && bytes[..2] == [0x16, 0x03]
}

#[tokio::test]
async fn h2_the_client_hello_goes_as_data_before_the_answer() {
    let origin = TestOrigin::start().await.unwrap();
    // The answer waits for the stream's first DATA (5 s at most): the log shows for
    // certain what came before it.
    let proxy = TestH2Proxy::builder()
        .hold_answers_for_data(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let p = Proxy::new(&proxy.url()).unwrap().with_optimistic_data(true);
    let started = std::time::Instant::now();
    let mut conn = h2_stack(p).oneshot(h2_target(&origin)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "held until the hold ran out"
    );
    assert_eq!(
        get(&mut conn).await,
        (
            http::StatusCode::OK,
            tower_tunnel::test_util::HELLO_BODY.to_owned()
        )
    );
    let log = proxy.streams_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].stream, 1);
    assert!(log[0].answered);
    assert!(
        is_client_hello(&log[0].before_answer),
        "before the answer: {:?}",
        log[0].before_answer
    );
    let info = conn.info();
    assert!(info.route().is_h2_tunnel(), "{}", info.route());
    assert_eq!(info.proxy_response().unwrap().status(), 200);
    let connect = info.timings().proxy_connect().expect("proxy_connect");
    assert!(connect <= info.timings().total());
    assert!(!info.is_h2_retried());
    assert_eq!(info.shared_tunnels(), Some(1));
    assert_eq!(origin.proxied_connections(), 1);
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn h2_without_optimism_nothing_comes_before_the_answer() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestH2Proxy::builder()
        .hold_answers_for_data(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let mut conn = h2_stack(Proxy::new(&proxy.url()).unwrap())
        .oneshot(h2_target(&origin))
        .await
        .unwrap();
    assert_eq!(get(&mut conn).await.0, 200);
    let log = proxy.streams_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].before_answer.is_empty(), "{log:?}");
}

#[tokio::test]
async fn h2_a_tunnel_on_the_pooled_connection_is_optimistic_too() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestH2Proxy::builder()
        .hold_answers_for_data(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let stack = h2_stack(Proxy::new(&proxy.url()).unwrap().with_optimistic_data(true));
    let mut first = stack.clone().oneshot(h2_target(&origin)).await.unwrap();
    assert_eq!(get(&mut first).await.0, 200);
    let started = std::time::Instant::now();
    let mut second = stack.clone().oneshot(h2_target(&origin)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(get(&mut second).await.0, 200);
    assert_eq!((h2_stream(&first), h2_stream(&second)), (1, 3));
    assert_eq!(second.info().shared_tunnels(), Some(2));
    assert_eq!(proxy.connections(), 1);
    let log = proxy.streams_log();
    assert_eq!(log.len(), 2, "{log:?}");
    for l in &log {
        assert_eq!(l.connection, 0);
        assert!(is_client_hello(&l.before_answer), "{l:?}");
    }
    // Both tunnels still work side by side.
    assert_eq!(get(&mut first).await.0, 200);
}

#[tokio::test]
async fn h2_refusals_are_the_same_errors_and_the_origin_sees_nothing() {
    let origin = TestOrigin::start().await.unwrap();
    let authority = format!("localhost:{}", origin.addr().port());
    let refusals = [
        (
            403,
            vec![
                ("X-Reason".to_owned(), "denied port".to_owned()),
                ("X-Reason".to_owned(), "twice".to_owned()),
            ],
        ),
        (
            407,
            vec![(
                "Proxy-Authenticate".to_owned(),
                "Basic realm=\"h2\"".to_owned(),
            )],
        ),
        (502, vec![]),
    ];
    for (status, headers) in refusals {
        let proxy = TestH2Proxy::builder()
            .refuse_with(&authority, status, headers.clone())
            .start()
            .await
            .unwrap();
        let plain = h2_stack(Proxy::new(&proxy.url()).unwrap())
            .oneshot(h2_target(&origin))
            .await
            .unwrap_err();
        let p = Proxy::new(&proxy.url()).unwrap().with_optimistic_data(true);
        let optimistic = h2_stack(p).oneshot(h2_target(&origin)).await.unwrap_err();
        assert_eq!(facts(&optimistic), facts(&plain), "{status}");
        assert_eq!(optimistic.status().map(|s| s.as_u16()), Some(status));
        let response = optimistic.proxy_response().unwrap();
        assert_eq!(response.reason(), None);
        for (name, value) in &headers {
            assert!(
                response.headers().get_all(name).iter().any(|v| v == value),
                "{name}: {value} in {:?}",
                response.headers()
            );
        }
        let kind = match status {
            407 => ErrorKind::ProxyAuthRequired,
            _ => ErrorKind::ProxyRefused,
        };
        assert_eq!(optimistic.kind(), kind);
        assert_eq!(optimistic.phase(), Some(Phase::ProxyConnect));
        // No retry: one stream each, on one connection.
        assert_eq!(proxy.streams(), 2);
        assert_eq!(proxy.connections(), 2);
    }
    // The ClientHello sent with the optimistic CONNECTs went nowhere.
    assert_eq!(origin.connections(), 0);
}

#[tokio::test]
async fn h2_a_silent_proxy_is_the_connect_timeout() {
    let raw = RawH2Proxy::start(100, vec![vec![Action::Silence]]).await;
    let origin = TestOrigin::start().await.unwrap();
    let p = Proxy::new(&raw.url()).unwrap().with_optimistic_data(true);
    let stack = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(client_config()).with_handshake_timeout(Some(Duration::from_secs(20))))
        .layer(
            ProxyConnectLayer::new(p)
                .with_proxy_tls(client_config())
                .with_connect_timeout(Some(Duration::from_millis(300))),
        )
        .service(HttpConnector::new());
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(10), stack.oneshot(h2_target(&origin)))
        .await
        .expect("bounded by the connect timeout")
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.phase(), Some(Phase::ProxyConnect), "{err}");
    assert_eq!(
        err.proxy().map(ToString::to_string),
        Some(raw.addr.to_string())
    );
    // The ClientHello did go out, behind the HEADERS.
    let data = raw.data();
    assert_eq!(data.len(), 1, "{data:?}");
    assert!(is_client_hello(&data[0].2));
}

#[tokio::test]
async fn h2_a_refused_stream_is_sent_again_once_with_the_same_bytes() {
    let origin = TestOrigin::start().await.unwrap();
    // Refused once the ClientHello is in: the proxy got the bytes and dropped them.
    let raw = RawH2Proxy::start(
        100,
        vec![vec![Action::RefuseAfterData, Action::Tunnel(origin.addr())]],
    )
    .await;
    let p = Proxy::new(&raw.url()).unwrap().with_optimistic_data(true);
    let mut conn = h2_stack(p).oneshot(h2_target(&origin)).await.unwrap();
    assert_eq!(get(&mut conn).await.0, 200);
    let info = conn.info();
    assert!(info.is_h2_retried(), "{info}");
    // REFUSED_STREAM leaves the connection usable: the next stream on it.
    assert_eq!(h2_stream(&conn), 3);
    assert_eq!(info.shared_tunnels(), Some(1));
    assert_eq!(info.proxy_response().unwrap().status(), 200);
    assert_eq!((raw.connections(), raw.streams()), (1, 2));
    // Stream 3 began with the very ClientHello the refused stream 1 carried.
    let data = raw.data();
    let first = data
        .iter()
        .find(|(_, s, _)| *s == 1)
        .expect("stream 1's data");
    let retried = data
        .iter()
        .find(|(_, s, _)| *s == 3)
        .expect("stream 3's data");
    assert!(is_client_hello(&first.2));
    assert!(retried.2.starts_with(&first.2), "{data:?}");
    assert_eq!(
        origin.proxied_connections(),
        0,
        "the raw proxy registers nothing"
    );
    assert_eq!(origin.tls_handshakes(), 1);
}

#[tokio::test]
async fn h2_a_stream_above_goaway_is_sent_again_on_a_fresh_connection() {
    let origin = TestOrigin::start().await.unwrap();
    let raw = RawH2Proxy::start(
        100,
        vec![
            vec![Action::Tunnel(origin.addr()), Action::GoAway],
            vec![Action::Tunnel(origin.addr())],
        ],
    )
    .await;
    let stack = h2_stack(Proxy::new(&raw.url()).unwrap().with_optimistic_data(true));
    let mut kept = stack.clone().oneshot(h2_target(&origin)).await.unwrap();
    assert_eq!(get(&mut kept).await.0, 200);
    let mut conn = stack.clone().oneshot(h2_target(&origin)).await.unwrap();
    assert_eq!(get(&mut conn).await.0, 200);
    assert!(conn.info().is_h2_retried(), "{}", conn.info());
    // Stream 1 of the second connection.
    assert_eq!(h2_stream(&conn), 1);
    assert_eq!(conn.info().shared_tunnels(), Some(1));
    assert_eq!((raw.connections(), raw.streams()), (2, 3));
    let data = raw.data();
    assert!(
        data.iter()
            .any(|(c, s, bytes)| (*c, *s) == (1, 1) && is_client_hello(bytes)),
        "{data:?}"
    );
    // The tunnel opened before the GOAWAY runs on.
    assert_eq!(get(&mut kept).await.0, 200);
}

#[tokio::test]
async fn h2_unprocessed_twice_is_the_error_and_no_other_hop_gets_the_bytes() {
    let origin = TestOrigin::start().await.unwrap();
    let raw = RawH2Proxy::start(100, vec![vec![Action::Refuse, Action::Refuse]]).await;
    let fallback = TestProxy::start().await.unwrap();
    let list = ProxyList::new([
        Proxy::new(&raw.url())
            .unwrap()
            .with_optimistic_data(true)
            .into(),
        Proxy::new(&fallback.url()).unwrap().into(),
    ])
    .unwrap();
    let layer = ProxyConnectLayer::from_proxies(tower_tunnel::Proxies::new().with_all(list));
    let err = h2_stack_from(layer)
        .oneshot(h2_target(&origin))
        .await
        .unwrap_err();
    assert_eq!(err.phase(), Some(Phase::ProxyConnect), "{err}");
    assert!(err.to_string().contains("REFUSED_STREAM"), "{err}");
    assert_eq!(raw.streams(), 2, "sent again once, not twice");
    assert_eq!(
        fallback.connections(),
        0,
        "failover never carries the bytes"
    );
    assert_eq!(origin.connections(), 0);
}

#[tokio::test]
async fn h2_a_stream_reset_otherwise_is_not_sent_again() {
    let origin = TestOrigin::start().await.unwrap();
    let raw = RawH2Proxy::start(100, vec![vec![Action::Reset]]).await;
    let p = Proxy::new(&raw.url()).unwrap().with_optimistic_data(true);
    let plain_raw = RawH2Proxy::start(100, vec![vec![Action::Reset]]).await;
    let plain = h2_stack(Proxy::new(&plain_raw.url()).unwrap())
        .oneshot(h2_target(&origin))
        .await
        .unwrap_err();
    let err = h2_stack(p).oneshot(h2_target(&origin)).await.unwrap_err();
    assert_eq!(err.kind(), plain.kind(), "{err}");
    assert_eq!(
        err.to_string().replace(&raw.addr.to_string(), "PROXY"),
        plain
            .to_string()
            .replace(&plain_raw.addr.to_string(), "PROXY")
    );
    assert!(err.to_string().contains("INTERNAL_ERROR"), "{err}");
    assert_eq!(raw.streams(), 1);
}

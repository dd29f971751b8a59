//! Proxy lists with failover, over loopback: the connector moves to the
//! next hop only while a hop cannot be reached, never on a proxy's answer,
//! remembers failed hops for the retry period (an injected clock moves it
//! on), and says which hops it passed over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::route::DEFAULT_RETRY_AFTER;
use tower_tunnel::test_util::{client_config, Fault, TestOrigin, TestProxy};
use tower_tunnel::{
    ErrorKind, Hop, Phase, Proxies, ProxyConnectLayer, ProxyList, SkipReason, TlsLayer, TlsStream,
    Tunnel,
};

/// A loopback port with nothing listening: bound, then closed.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A clock the test moves on by hand.
fn manual_clock() -> (tower_tunnel::route::Clock, Arc<AtomicU64>) {
    let start = Instant::now();
    let secs = Arc::new(AtomicU64::new(0));
    let read = secs.clone();
    let clock = Arc::new(move || start + Duration::from_secs(read.load(Ordering::SeqCst)));
    (clock, secs)
}

type Stream = TlsStream<Tunnel<TokioIo<TcpStream>>>;

fn stack(
    proxies: Proxies,
) -> impl Service<Uri, Response = Stream, Error = tower_tunnel::Error> + Clone {
    ServiceBuilder::new()
        .layer(TlsLayer::new(client_config()))
        .layer(
            ProxyConnectLayer::from_proxies(proxies)
                .with_connect_timeout(Some(Duration::from_secs(2))),
        )
        .service(HttpConnector::new())
}

fn shown(hops: &[Hop]) -> Vec<String> {
    hops.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn an_unreachable_hop_is_skipped_then_tried_last_until_the_period_ends() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let dead = closed_port().await;
    let list = ProxyList::parse(&format!(
        "PROXY 127.0.0.1:{dead}; PROXY {}; DIRECT",
        proxy.addr()
    ))
    .unwrap();
    let (clock, secs) = manual_clock();
    let proxies = Proxies::new().with_all(list.clone()).with_clock(clock);
    let connect = stack(proxies.clone());
    let target: Uri = origin.https_url().parse().unwrap();

    // First connection: the dead hop is tried, fails to dial, and the next
    // one carries the tunnel.
    let stream = connect.clone().oneshot(target.clone()).await.unwrap();
    let info = stream.info();
    assert_eq!(
        info.proxy().unwrap().authority().port_u16(),
        Some(proxy.addr().port())
    );
    assert_eq!(info.skipped().len(), 1, "{:?}", info.skipped());
    assert_eq!(info.skipped()[0].hop(), &list.hops()[0]);
    match info.skipped()[0].reason() {
        SkipReason::Failed { kind, message } => {
            assert_eq!(*kind, ErrorKind::Dial);
            assert!(message.contains(&format!("127.0.0.1:{dead}")), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let line = info.to_string();
    assert!(
        line.contains(&format!(
            "skipped PROXY 127.0.0.1:{dead} (failed: could not connect to proxy 127.0.0.1:{dead}"
        )),
        "{line}"
    );
    assert_eq!(proxy.connections(), 1);
    assert_eq!(origin.direct_connections(), 0);
    assert_eq!(origin.proxied_connections(), 1);

    // Within the retry period the decision puts the dead hop last, and
    // names it; the connection goes straight to the live proxy.
    secs.store(60, Ordering::SeqCst);
    let decision = proxies.decide(&target).unwrap();
    assert_eq!(
        shown(decision.hops()),
        [
            format!("PROXY {}", proxy.addr()),
            "DIRECT".to_owned(),
            format!("PROXY 127.0.0.1:{dead}")
        ]
    );
    assert_eq!(decision.skipped().len(), 1);
    assert!(matches!(
        decision.skipped()[0].reason(),
        SkipReason::RecentlyFailed { kind: ErrorKind::Dial, ago } if *ago == Duration::from_secs(60)
    ));
    let stream = connect.clone().oneshot(target.clone()).await.unwrap();
    assert!(matches!(
        stream.info().skipped(),
        [s] if matches!(s.reason(), SkipReason::RecentlyFailed { .. })
    ));
    assert_eq!(proxy.connections(), 2);

    // After the period it is tried first again (and fails again).
    secs.store(60 + DEFAULT_RETRY_AFTER.as_secs(), Ordering::SeqCst);
    assert!(proxies.decide(&target).unwrap().skipped().is_empty());
    let stream = connect.oneshot(target).await.unwrap();
    assert!(matches!(
        stream.info().skipped(),
        [s] if matches!(s.reason(), SkipReason::Failed { kind: ErrorKind::Dial, .. })
    ));
    assert_eq!(proxy.connections(), 3);
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn a_proxy_that_closes_or_goes_silent_before_answering_is_failed_over() {
    let origin = TestOrigin::start().await.unwrap();
    let live = TestProxy::start().await.unwrap();
    for fault in [
        Fault::CloseBeforeRead,
        Fault::CloseAfterRequest,
        Fault::Silence,
    ] {
        let bad = TestProxy::builder()
            .fault(fault.clone())
            .start()
            .await
            .unwrap();
        let list =
            ProxyList::parse(&format!("PROXY {}; PROXY {}", bad.addr(), live.addr())).unwrap();
        let connect = stack(Proxies::new().with_all(list));
        let started = Instant::now();
        let stream = connect
            .oneshot(origin.https_url().parse().unwrap())
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        let skipped = stream.info().skipped();
        assert_eq!(skipped.len(), 1, "{fault:?}");
        let SkipReason::Failed { kind, .. } = skipped[0].reason() else {
            panic!("{fault:?}: {skipped:?}")
        };
        match fault {
            Fault::Silence => {
                assert_eq!(*kind, ErrorKind::Timeout);
                assert!(started.elapsed() >= Duration::from_secs(2));
            }
            _ => assert!(
                matches!(kind, ErrorKind::ProxyClosed | ErrorKind::Io),
                "{fault:?}: {kind:?}"
            ),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{fault:?}");
    }
    assert_eq!(origin.direct_connections(), 0);
    assert_eq!(origin.proxied_connections(), 3);
}

#[tokio::test]
async fn a_proxy_answer_is_returned_never_failed_over() {
    let origin = TestOrigin::start().await.unwrap();
    let live = TestProxy::start().await.unwrap();
    for (status, kind) in [
        (403, ErrorKind::ProxyRefused),
        (407, ErrorKind::ProxyAuthRequired),
        (502, ErrorKind::ProxyRefused),
    ] {
        let headers = match status {
            407 => vec![(
                "Proxy-Authenticate".to_owned(),
                "Basic realm=\"corp\"".to_owned(),
            )],
            _ => Vec::new(),
        };
        let refusing = TestProxy::builder()
            .fault(Fault::Status(status, headers, Vec::new()))
            .start()
            .await
            .unwrap();
        let list = ProxyList::parse(&format!(
            "PROXY {}; PROXY {}; DIRECT",
            refusing.addr(),
            live.addr()
        ))
        .unwrap();
        let (clock, _) = manual_clock();
        let proxies = Proxies::new().with_all(list).with_clock(clock);
        let err = stack(proxies.clone())
            .oneshot(origin.https_url().parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{status}: {err}");
        assert_eq!(err.phase(), Some(Phase::ProxyConnect));
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(
            live.connections(),
            0,
            "{status}: fell through to the next proxy"
        );
        // An answer is no failure of the hop: it stays first.
        let decision = proxies
            .decide(&origin.https_url().parse().unwrap())
            .unwrap();
        assert!(decision.skipped().is_empty());
    }
    assert_eq!(origin.connections(), 0, "fell through to DIRECT");
}

#[tokio::test]
async fn direct_only_where_the_list_says_so_and_the_error_names_every_hop() {
    let origin = TestOrigin::start().await.unwrap();
    let (a, b) = (closed_port().await, closed_port().await);
    let list = ProxyList::parse(&format!("PROXY 127.0.0.1:{a}; SOCKS5 127.0.0.1:{b}")).unwrap();
    let err = stack(Proxies::new().with_all(list))
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Dial);
    assert_eq!(err.proxy().unwrap().port_u16(), Some(b));
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("after PROXY 127.0.0.1:{a} could not be reached")),
        "{shown}"
    );
    assert_eq!(origin.connections(), 0);

    // With DIRECT at the end, the target is reached directly.
    let list = ProxyList::parse(&format!("PROXY 127.0.0.1:{a}; DIRECT")).unwrap();
    let stream = stack(Proxies::new().with_all(list))
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap();
    assert!(stream.info().route().is_direct());
    assert_eq!(stream.info().skipped().len(), 1);
    assert_eq!(origin.direct_connections(), 1);
}

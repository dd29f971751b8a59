//! PAC scripts end to end (feature `pac`): a script's proxy list drives the
//! connector over loopback, with failover past a hop that cannot be reached.
#![cfg(feature = "pac")]

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{client_config, TestOrigin, TestProxy};
use tower_tunnel::{
    AlpnDispatchLayer, ErrorKind, Hop, Phase, Proxies, ProxyConnectLayer, Rule, SkipReason,
    TlsLayer,
};

#[tokio::test]
async fn a_pac_list_connects_through_the_second_proxy_and_names_the_first() {
    let origin = TestOrigin::builder()
        .alpn(vec![b"http/1.1".to_vec()])
        .start()
        .await
        .unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let answer = format!(
        "PROXY 127.0.0.1:{}; PROXY 127.0.0.1:{}; DIRECT",
        closed.port(),
        proxy.addr().port()
    );
    let proxies = Proxies::from_pac_script(format!(
        "function FindProxyForURL(u, h) {{ return '{answer}'; }}"
    ))
    .unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(client_config()))
        .layer(ProxyConnectLayer::from_proxies(proxies.clone()))
        .service(HttpConnector::new());
    let target: Uri = format!("https://localhost:{}/private?q=1", origin.addr().port())
        .parse()
        .unwrap();
    let mut conn = connect.clone().oneshot(target.clone()).await.unwrap();
    let info = conn.info().clone();
    assert_eq!(
        info.proxy().unwrap().authority().as_str(),
        format!("127.0.0.1:{}", proxy.addr().port())
    );
    assert_eq!(info.skipped().len(), 1);
    let skipped = &info.skipped()[0];
    assert_eq!(
        skipped.hop().to_string(),
        format!("PROXY 127.0.0.1:{}", closed.port())
    );
    assert!(
        matches!(skipped.reason(), SkipReason::Failed { .. }),
        "{skipped:?}"
    );
    let res = conn
        .send_request(Request::get("/").body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(origin.proxied_connections(), 1);
    assert_eq!(origin.direct_connections(), 0);
    assert_eq!(proxy.requests()[0].method, "CONNECT");

    // The decision names the script's answer, and the closed hop goes last now.
    let decision = proxies.decide(&target).unwrap();
    assert_eq!(decision.rule(), &Rule::Pac { answer });
    assert!(
        matches!(decision.hops().last(), Some(Hop::Proxy(p)) if p.authority().port_u16() == Some(closed.port()))
    );
}

#[tokio::test]
async fn a_failing_script_fails_the_connection_and_never_goes_direct() {
    let origin = TestOrigin::start().await.unwrap();
    let proxies = Proxies::from_pac_script(
        "function FindProxyForURL(u, h) { return 'PROXY a:1; BOGUS b:2'; }",
    )
    .unwrap();
    let connect = ServiceBuilder::new()
        .layer(ProxyConnectLayer::from_proxies(proxies))
        .service(HttpConnector::new());
    let target: Uri = format!("https://127.0.0.1:{}/", origin.addr().port())
        .parse()
        .unwrap();
    let err = connect.oneshot(target).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.phase()),
        (ErrorKind::PacAnswer, Some(Phase::Pac))
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the PAC script gave an unusable answer for 127.0.0.1:{}: `PROXY a:1; BOGUS b:2` (proxy list entry `BOGUS b:2`: unknown keyword)",
            origin.addr().port()
        )
    );
    assert_eq!(origin.connections(), 0);
}

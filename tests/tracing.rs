//! One `tower_tunnel::connect` span per connection, carrying the target,
//! the proxy and the route, and a debug event per phase with its duration.

#[path = "common/capture.rs"]
mod capture;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{TestOrigin, TestProxy};
use tower_tunnel::{AlpnDispatchLayer, Proxy, ProxyConnectLayer, TlsLayer};

use capture::Capture;

// Current-thread runtime: every task runs under the thread-default
// subscriber.
#[tokio::test]
async fn one_span_per_connection_with_an_event_per_phase() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::builder()
        .basic_auth("user", "tr4ce-secret")
        .start()
        .await
        .unwrap();
    let p = Proxy::new(&format!("http://user:tr4ce-secret@{}", proxy.addr())).unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Empty<Bytes>>::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(p))
        .service(HttpConnector::new());
    connect
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap();

    let text = capture.text();
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tower_tunnel::connect"))
        .collect();
    let span = format!(
        "tower_tunnel::connect{{target={} proxy=http://{} rule=the proxy for all schemes (all_proxy)",
        origin.authority(),
        proxy.addr()
    );
    for (event, field) in [
        ("dialed first hop", "elapsed="),
        ("proxy opened CONNECT tunnel", "elapsed="),
        ("route established", "route=tunnel via"),
        ("TLS handshake done", "alpn=\"h2\""),
        ("HTTP handshake done", "version=\"HTTP/2\""),
    ] {
        let line = ours
            .iter()
            .find(|l| l.contains(event))
            .unwrap_or_else(|| panic!("no `{event}` event in:\n{text}"));
        assert!(line.contains(&span), "{line}");
        assert!(line.contains(field), "{line}");
        assert!(line.contains("DEBUG"), "{line}");
    }
    assert!(!text.contains("tr4ce-secret"), "{text}");
    if std::env::var_os("SHOW_TRACE").is_some() {
        println!("{text}");
    }
}

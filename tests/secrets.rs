//! A proxy password, and its base64 `Proxy-Authorization` form, never appear in `Debug` of
//! any public type, in `Display`/`Debug` of any error or its sources, nor in tracing output
//! at TRACE.

#[path = "common/capture.rs"]
mod capture;

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{TestOrigin, TestProxy};
use tower_tunnel::{AlpnDispatchLayer, Error, ErrorKind, Proxy, ProxyConnectLayer, TlsLayer};

use capture::Capture;

type Body = Empty<Bytes>;

const USER: &str = "alice";
const PASSWORD: &str = "Xq7-Pa55w0rd-zZ9";
const WRONG: &str = "Wr0ng-Pa55w0rd-Kk4";

/// Every form a credential could leak in.
fn forbidden() -> Vec<String> {
    let mut out = Vec::new();
    for pass in [PASSWORD, WRONG] {
        let token = BASE64.encode(format!("{USER}:{pass}"));
        out.push(pass.to_owned());
        out.push(format!("Basic {token}"));
        out.push(token);
    }
    out
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for secret in forbidden() {
        assert!(!text.contains(&secret), "{what} shows {secret:?}:\n{text}");
    }
}

/// `Display` and `Debug` of an error and of every source below it.
fn error_chain(err: &Error) -> String {
    let mut out = format!("{err}\n{err:?}\n{err:#?}\n");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    out
}

/// A TRACE subscriber for this thread, writing into the returned capture.
fn trace_everything() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    (capture, tracing::subscriber::set_default(subscriber))
}

// Current-thread runtime: every task, the fixtures' included, runs on this thread, under
// the thread-default subscriber.
#[tokio::test]
async fn password_never_shown_in_debug_errors_or_trace() {
    let (capture, _guard) = trace_everything();

    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::builder()
        .basic_auth(USER, PASSWORD)
        .start()
        .await
        .unwrap();
    let good = Proxy::new(&format!("http://{USER}:{PASSWORD}@{}", proxy.addr())).unwrap();
    let bad = Proxy::new(&format!("http://{USER}:{WRONG}@{}", proxy.addr())).unwrap();
    assert_clean("Proxy", &format!("{good:?} {good:#?} {bad:?}"));

    let layer = ProxyConnectLayer::new(good.clone());
    assert_clean("ProxyConnectLayer", &format!("{layer:?} {layer:#?}"));
    let stack = |p: Proxy| {
        ServiceBuilder::new()
            .layer(AlpnDispatchLayer::<Body>::new())
            .layer(TlsLayer::new(origin.client_config()))
            .layer(ProxyConnectLayer::new(p))
            .service(HttpConnector::new())
    };

    // Success: every stage's service, future and stream.
    let mut full = stack(good.clone());
    assert_clean("AlpnDispatch stack", &format!("{full:?} {full:#?}"));
    let mut routed_only = ServiceBuilder::new()
        .layer(ProxyConnectLayer::new(good.clone()))
        .service(HttpConnector::new());
    let mut tls_only = ServiceBuilder::new()
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(good.clone()))
        .service(HttpConnector::new());
    assert_clean("ProxyConnect", &format!("{routed_only:?}"));
    assert_clean("TlsConnect", &format!("{tls_only:?}"));
    let uri: http::Uri = origin.https_url().parse().unwrap();

    let fut = routed_only.ready().await.unwrap().call(uri.clone());
    assert_clean("proxy ResponseFuture", &format!("{fut:?}"));
    let routed = fut.await.unwrap();
    assert_clean(
        "Routed",
        &format!("{routed:?} {routed:#?} {:?}", routed.info()),
    );
    drop(routed);

    let fut = tls_only.ready().await.unwrap().call(uri.clone());
    assert_clean("tls ResponseFuture", &format!("{fut:?}"));
    let tls = fut.await.unwrap();
    assert_clean("TlsStream", &format!("{tls:?} {tls:#?} {}", tls.info()));
    drop(tls);

    let fut = full.ready().await.unwrap().call(uri.clone());
    assert_clean("dispatch ResponseFuture", &format!("{fut:?}"));
    let mut conn = fut.await.unwrap();
    assert_clean("HttpConnection", &format!("{conn:?} {conn:#?}"));
    let res = conn
        .send_request(Request::get("/").body(Body::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap();
    // The proxy did receive the credentials (so they were really in play), and its
    // recorded header is sensitive, so even the fixture's Debug hides it.
    let recorded = proxy.requests();
    assert!(recorded
        .iter()
        .all(|r| r.headers["proxy-authorization"].is_sensitive()));
    assert_clean("RecordedRequest", &format!("{recorded:?}"));

    // Failure: a 407 for the wrong password, with the whole source chain.
    let err = stack(bad.clone()).oneshot(uri.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired);
    assert_clean("407 error", &error_chain(&err));
    assert_clean("ProxyResponse", &format!("{:?}", err.proxy_response()));

    // Failure in TLS (untrusted certificate) and at dial (closed port), with credentials.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let trusts_nothing = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let err = ServiceBuilder::new()
        .layer(TlsLayer::new(Arc::new(trusts_nothing)))
        .layer(ProxyConnectLayer::new(good.clone()))
        .service(HttpConnector::new())
        .oneshot(uri.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert_clean("TLS error", &error_chain(&err));

    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = Proxy::new(&format!("http://{USER}:{PASSWORD}@127.0.0.1:{closed_port}")).unwrap();
    let err = stack(dead).oneshot(uri.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Dial);
    assert_clean("dial error", &error_chain(&err));

    // Proxy URLs the parser rejects never echo the password either.
    for url in [
        format!("http://{USER}:{PASSWORD}@127.0.0.1:3128/path"),
        format!("ftp://{USER}:{PASSWORD}@127.0.0.1:3128"),
        format!("http://{USER}:{PASSWORD}@127.0.0.1:99999"),
        format!("http://{USER}:{PASSWORD}@:3128"),
    ] {
        let err = Proxy::new(&url).unwrap_err();
        assert_clean("InvalidProxy error", &error_chain(&err));
    }

    drop(conn);
    let trace = capture.text();
    // The capture really saw the connects at TRACE/DEBUG level.
    assert!(trace.contains("tower_tunnel::connect"), "{trace}");
    assert!(trace.contains(&proxy.addr().to_string()), "{trace}");
    assert_clean("tracing output", &trace);
}

/// An NTLM challenge message (MS-NLMP 2.2.1.2) with no target name and no target info:
/// Unicode, NTLM and extended session security, server challenge 0102030405060708.
fn ntlm_challenge() -> String {
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend(2u32.to_le_bytes());
    m.extend([0, 0, 0, 0, 48, 0, 0, 0]);
    m.extend((0x0000_0001u32 | 0x0000_0200 | 0x0008_0000).to_le_bytes());
    m.extend([1, 2, 3, 4, 5, 6, 7, 8]);
    m.extend([0; 8]);
    m.extend([0, 0, 0, 0, 48, 0, 0, 0]);
    BASE64.encode(m)
}

#[tokio::test]
async fn ntlm_messages_never_shown_in_errors_or_trace() {
    let (capture, _guard) = trace_everything();

    // Answers every CONNECT with the challenge, then closes: the client computes its
    // authenticate message, finds the connection gone, starts over once, and gives up.
    let challenge = ntlm_challenge();
    let proxy = TestProxy::builder()
        .fault(tower_tunnel::test_util::Fault::Status(
            407,
            vec![("Proxy-Authenticate".into(), format!("NTLM {challenge}"))],
            Vec::new(),
        ))
        .start()
        .await
        .unwrap();
    let ntlm = Proxy::new(&format!("http://CORP%5C{USER}:{PASSWORD}@{}", proxy.addr()))
        .unwrap()
        .with_auth(tower_tunnel::ProxyAuth::Ntlm);
    assert_clean("NTLM Proxy", &format!("{ntlm:?} {ntlm}"));
    let err = ServiceBuilder::new()
        .layer(ProxyConnectLayer::new(ntlm))
        .service(HttpConnector::new())
        .oneshot("https://localhost:1/".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired);
    let shown = error_chain(&err);
    // The scheme is named; the handshake's messages are not.
    assert!(shown.contains("NTLM <token>"), "{shown}");
    let recorded = proxy.requests();
    assert_eq!(recorded.len(), 2, "negotiate, then again after the close");
    let negotiate = recorded[0].headers["proxy-authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(negotiate.starts_with("NTLM TlRMTVNTUAAB"), "{negotiate}");
    let token = negotiate.trim_start_matches("NTLM ");
    for (what, text) in [("error", &shown), ("trace", &capture.text())] {
        assert_clean(what, text);
        for secret in [challenge.as_str(), token] {
            assert!(
                !text.contains(secret),
                "{what} shows an NTLM message:\n{text}"
            );
        }
    }
}

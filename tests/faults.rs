//! Hostile proxies: one test per `test_util::Fault`, through the full stack.
//!
//! Each failure asserts the exact `ErrorKind`, `Phase` and `Display` (naming the proxy and
//! the target), that it failed within the configured CONNECT timeout, and that the origin
//! saw no direct connection and no TLS handshake: target TLS never starts unless the
//! CONNECT succeeded. Each tolerated oddity completes a real HTTPS request through the
//! tunnel.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{Fault, TestOrigin, TestProxy, HELLO_BODY};
use tower_tunnel::{
    AlpnDispatchLayer, Error, ErrorKind, Phase, Proxy, ProxyConnectLayer, TlsLayer,
};

type Body = Empty<Bytes>;

/// The CONNECT phase's one deadline in these tests.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Slack for a loaded 2-core CI machine running debug builds. Still far below the 9.5 s a
/// slow drip takes to finish, so a per-read deadline would fail the drip test.
const SLACK: Duration = Duration::from_millis(1000);

/// What a fault must lead to.
enum Expect {
    /// A real HTTPS request through the tunnel works.
    Works,
    /// This error; the message is given the proxy and target authorities.
    Fails {
        kind: ErrorKind,
        message: fn(&str, &str) -> String,
        /// Whether this is the CONNECT timeout (so the elapsed time is at least it).
        timeout: bool,
    },
}

struct Outcome {
    err: Option<Error>,
    elapsed: Duration,
    proxy: TestProxy,
}

async fn run(fault: Fault, expect: Expect) -> Outcome {
    run_with(fault, expect, None).await
}

async fn run_with(fault: Fault, expect: Expect, max_response_bytes: Option<usize>) -> Outcome {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::builder().fault(fault).start().await.unwrap();
    let mut layer = ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap())
        .with_connect_timeout(Some(CONNECT_TIMEOUT));
    if let Some(max) = max_response_bytes {
        layer = layer.with_max_response_bytes(max);
    }
    // The full stack: dispatch over TLS over a CONNECT tunnel.
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(layer)
        .service(HttpConnector::new());
    let p = proxy.addr().to_string();
    let t = origin.authority();

    let started = Instant::now();
    let result = connect.oneshot(origin.https_url().parse().unwrap()).await;
    let elapsed = started.elapsed();
    match &result {
        Ok(_) => eprintln!("connected in {elapsed:?}"),
        Err(e) => eprintln!("{:?} in {elapsed:?}: {e}", e.kind()),
    }

    let err = match (expect, result) {
        (Expect::Works, Ok(mut conn)) => {
            let req = Request::get("/").body(Body::new()).unwrap();
            let res = conn
                .send_request(req)
                .await
                .expect("request through the tunnel");
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["x-origin-via-proxy"], "true");
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, HELLO_BODY.as_bytes());
            assert_eq!(origin.tls_handshakes(), 1);
            assert_eq!(origin.proxied_connections(), 1);
            assert!(!conn.info().route().is_direct());
            None
        }
        (Expect::Works, Err(e)) => panic!("expected success, got {e} ({e:?})"),
        (Expect::Fails { .. }, Ok(_)) => panic!("expected an error, the connection was made"),
        (
            Expect::Fails {
                kind,
                message,
                timeout,
            },
            Err(e),
        ) => {
            assert_eq!(e.kind(), kind, "{e} / {e:?}");
            assert_eq!(e.phase(), Some(Phase::ProxyConnect), "{e}");
            assert_eq!(e.to_string(), message(&p, &t));
            assert_eq!(e.proxy().map(|a| a.as_str()), Some(p.as_str()));
            assert_eq!(e.target().map(|a| a.as_str()), Some(t.as_str()));
            assert!(elapsed < CONNECT_TIMEOUT + SLACK, "{elapsed:?}");
            if timeout {
                assert!(elapsed >= CONNECT_TIMEOUT, "{elapsed:?}");
            }
            // Target TLS never started: no handshake at the origin at all.
            assert_eq!(origin.tls_handshakes(), 0, "TLS ran after a failed CONNECT");
            Some(e)
        }
    };

    // Never a direct connection. A tunnel the proxy opened but the client abandoned is
    // classified when its end reaches the origin, so wait (bounded) for every accepted
    // connection to be classified before counting.
    let deadline = Instant::now() + Duration::from_secs(10);
    while origin.direct_connections() + origin.proxied_connections() < origin.connections()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        origin.direct_connections(),
        0,
        "a connection bypassed the proxy"
    );
    assert_eq!(origin.tls_handshakes(), usize::from(err.is_none()));
    // The proxy saw exactly one CONNECT, for the target (CloseBeforeRead reads nothing).
    for r in proxy.requests() {
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("CONNECT", t.as_str())
        );
    }
    assert!(proxy.requests().len() <= 1);
    assert_eq!(proxy.connections(), 1);
    Outcome {
        err,
        elapsed,
        proxy,
    }
}

fn refused(status: &'static str) -> impl Fn(&str, &str) -> String {
    move |p, t| format!("proxy {p} refused CONNECT to {t}: {status}")
}

macro_rules! fails {
    ($kind:ident, $message:expr) => {
        Expect::Fails {
            kind: ErrorKind::$kind,
            message: $message,
            timeout: false,
        }
    };
}

fn status(code: u16, fields: &[(&str, &str)], body: &[u8]) -> Fault {
    Fault::Status(
        code,
        fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body.to_vec(),
    )
}

// ---- refusals: status, reason and headers kept ----

#[tokio::test]
async fn status_407_with_challenge() {
    let out = run(
        status(407, &[("Proxy-Authenticate", "Basic realm=\"corp\"")], b""),
        fails!(ProxyAuthRequired, |p, t| format!(
            "proxy {p} refused CONNECT to {t}: 407 Proxy Authentication Required \
             (Basic realm=\"corp\")"
        )),
    )
    .await;
    let err = out.err.unwrap();
    assert!(err.is_proxy_refusal());
    let challenges: Vec<_> = err.proxy_response().unwrap().challenges().collect();
    assert_eq!(challenges, ["Basic realm=\"corp\""]);
}

#[tokio::test]
async fn status_407_without_challenge() {
    let out = run(
        status(407, &[], b""),
        fails!(ProxyAuthRequired, |p, t| refused(
            "407 Proxy Authentication Required"
        )(p, t)),
    )
    .await;
    let err = out.err.unwrap();
    assert_eq!(err.proxy_response().unwrap().challenges().count(), 0);
}

#[tokio::test]
async fn status_403() {
    let out = run(
        status(403, &[], b""),
        fails!(ProxyRefused, |p, t| refused("403 Forbidden")(p, t)),
    )
    .await;
    assert_eq!(out.err.unwrap().status(), Some(http::StatusCode::FORBIDDEN));
}

#[tokio::test]
async fn status_502_with_html_body() {
    let html = b"<html><body><h1>502 Bad Gateway</h1>upstream unreachable</body></html>";
    let out = run(
        status(502, &[("Content-Type", "text/html")], html),
        fails!(ProxyRefused, |p, t| refused("502 Bad Gateway")(p, t)),
    )
    .await;
    let err = out.err.unwrap();
    let response = err.proxy_response().unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.reason(), Some("Bad Gateway"));
    assert_eq!(response.headers()["content-type"], "text/html");
    // The body is not part of the message.
    assert!(!err.to_string().contains("html"));
}

#[tokio::test]
async fn status_504() {
    run(
        status(504, &[], b""),
        fails!(ProxyRefused, |p, t| refused("504 Gateway Timeout")(p, t)),
    )
    .await;
}

#[tokio::test]
async fn switching_protocols_101_is_a_refusal() {
    run(
        Fault::SwitchingProtocols,
        fails!(ProxyRefused, |p, t| refused("101 Switching Protocols")(
            p, t
        )),
    )
    .await;
}

// ---- not HTTP, cut short, or never finished ----

#[tokio::test]
async fn garbage() {
    run(
        Fault::Garbage,
        fails!(ProxyMalformed, |p, t| format!(
            "proxy {p} sent a malformed answer to CONNECT to {t}: not an HTTP response"
        )),
    )
    .await;
}

#[tokio::test]
async fn tls_alert_is_a_proxy_protocol_error_not_a_tls_error() {
    let out = run(
        Fault::TlsAlert,
        fails!(ProxyMalformed, |p, t| format!(
            "proxy {p} sent a malformed answer to CONNECT to {t}: \
             it sent a TLS record, not HTTP: is it an https:// proxy?"
        )),
    )
    .await;
    assert_ne!(out.err.unwrap().kind(), ErrorKind::Tls);
}

fn closed(p: &str, t: &str) -> String {
    format!("proxy {p} closed the connection without answering CONNECT to {t}")
}

fn truncated(p: &str, t: &str) -> String {
    format!("proxy {p} closed the connection in the middle of its answer to CONNECT to {t}")
}

#[tokio::test]
async fn close_before_read() {
    // The proxy may close with a FIN or, having unread input, a reset: both are
    // `ProxyClosed` (a reset keeps its io::Error as the source).
    let out = run(Fault::CloseBeforeRead, fails!(ProxyClosed, closed)).await;
    assert!(out.proxy.requests().is_empty());
}

#[tokio::test]
async fn close_after_request() {
    let out = run(Fault::CloseAfterRequest, fails!(ProxyClosed, closed)).await;
    assert_eq!(out.proxy.requests().len(), 1);
}

#[tokio::test]
async fn truncated_status_line() {
    run(
        Fault::TruncatedStatusLine,
        fails!(ProxyTruncated, truncated),
    )
    .await;
}

#[tokio::test]
async fn no_final_blank_line() {
    run(Fault::NoFinalBlankLine, fails!(ProxyTruncated, truncated)).await;
}

fn timed_out(p: &str, t: &str) -> String {
    format!("proxy {p} did not answer CONNECT to {t} within 1s")
}

#[tokio::test]
async fn silence_times_out() {
    let out = run(
        Fault::Silence,
        Expect::Fails {
            kind: ErrorKind::Timeout,
            message: timed_out,
            timeout: true,
        },
    )
    .await;
    assert!(out.err.unwrap().is_timeout());
}

#[tokio::test]
async fn slow_drip_hits_the_one_phase_deadline() {
    // One byte every 500 ms: each read is quick, the whole answer takes 9.5 s. One
    // deadline for the phase fails it at 1 s.
    let out = run(
        Fault::SlowDrip,
        Expect::Fails {
            kind: ErrorKind::Timeout,
            message: timed_out,
            timeout: true,
        },
    )
    .await;
    assert!(out.elapsed < Duration::from_secs(2), "{:?}", out.elapsed);
}

#[tokio::test]
async fn bad_version_http_9_9() {
    run(
        Fault::BadVersion,
        fails!(ProxyBadVersion, |p, t| format!(
            "proxy {p} answered CONNECT to {t} with an unsupported HTTP version: HTTP/9.9"
        )),
    )
    .await;
}

// ---- endless headers: stops at the cap, memory bounded ----

/// Counts the bytes allocated on this thread, so a current-thread test can measure the
/// peak memory of one connect (the fixtures on the same thread included).
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // `try_with`: thread-local storage may already be gone while a thread exits.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: forwards to the system allocator; the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `fut` and returns its output with the peak bytes it had allocated on this thread
/// above the level at the start.
async fn peak_of<F: std::future::Future>(fut: F) -> (F::Output, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = fut.await;
    let peak = PEAK.with(Cell::get) - base;
    (out, peak.max(0) as usize)
}

#[tokio::test]
async fn endless_headers_stop_at_the_header_count_cap() {
    // ~85-byte fields: the 64-field cap comes before the 16 KiB byte cap.
    let (out, peak) = peak_of(run(
        Fault::EndlessHeaders,
        fails!(ProxyHeadersTooLarge, |p, t| format!(
            "proxy {p} answer to CONNECT to {t} is too large: more than 64 headers"
        )),
    ))
    .await;
    assert!(
        out.elapsed < Duration::from_millis(500),
        "{:?}",
        out.elapsed
    );
    // The whole test on this thread (origin, proxy and client) stayed well below 1 MiB;
    // the CONNECT answer buffer itself is at most 16 KiB.
    eprintln!(
        "endless headers (count cap): peak {peak} bytes, {:?}",
        out.elapsed
    );
    assert!(peak < 1 << 20, "peak {peak} bytes");
    drop(out);
}

#[tokio::test]
async fn endless_headers_stop_at_the_byte_cap() {
    let (out, peak) = peak_of(run_with(
        Fault::EndlessHeaders,
        fails!(ProxyHeadersTooLarge, |p, t| format!(
            "proxy {p} answer to CONNECT to {t} is too large: more than 1024 bytes of headers"
        )),
        Some(1024),
    ))
    .await;
    assert!(
        out.elapsed < Duration::from_millis(500),
        "{:?}",
        out.elapsed
    );
    eprintln!(
        "endless headers (1 KiB cap): peak {peak} bytes, {:?}",
        out.elapsed
    );
    assert!(peak < 1 << 20, "peak {peak} bytes");
}

// ---- tolerated: the tunnel opens and HTTPS works through it ----

#[tokio::test]
async fn http_1_0_200_works() {
    run(Fault::Http10Ok, Expect::Works).await;
}

#[tokio::test]
async fn continue_100_then_200_works() {
    run(Fault::ContinueThenOk, Expect::Works).await;
}

#[tokio::test]
async fn ok_with_content_length_works() {
    // RFC 9110 §9.3.6: Content-Length on a 2xx to CONNECT is ignored; the bytes after
    // the head are the target's (here the TLS ServerHello).
    run(Fault::OkWithBody, Expect::Works).await;
}

#[tokio::test]
async fn bare_lf_line_endings_work() {
    // Accepted, like curl and httparse: documented in the crate's "Failure modes".
    run(Fault::BareLf, Expect::Works).await;
}

#[tokio::test]
async fn status_204_works() {
    run(Fault::Status2xx(204), Expect::Works).await;
}

#[tokio::test]
async fn status_299_works() {
    run(Fault::Status2xx(299), Expect::Works).await;
}

#[tokio::test]
async fn ok_coalesced_with_tunnel_bytes_keeps_them() {
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // A TLS origin speaks only after the ClientHello, so nothing valid can follow the 200
    // in the same write; a target that speaks first (a banner) shows the bytes survive.
    let banner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = banner.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = banner.accept().await.unwrap();
        sock.write_all(b"|banner").await.unwrap();
        let mut ping = [0u8; 4];
        sock.read_exact(&mut ping).await.unwrap();
        sock.write_all(&ping).await.unwrap();
    });
    let proxy = TestProxy::builder()
        .fault(Fault::OkCoalescedWith(b"coalesced".to_vec()))
        .start()
        .await
        .unwrap();
    let connect = ServiceBuilder::new()
        .layer(
            ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap().with_http_tunneling(true))
                .with_connect_timeout(Some(CONNECT_TIMEOUT)),
        )
        .service(HttpConnector::new());
    let routed = connect
        .oneshot(format!("http://{target}").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(routed.tunnel().buffered(), 9);
    let mut io = TokioIo::new(routed);
    let mut got = [0u8; 16];
    io.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"coalesced|banner");
    io.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    io.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
}

/// rustls-style `smoke`: the exact `Display` of every kind reachable from loopback, each
/// from a real failure (the CONNECT kinds are the tests above). `Io`, `Handshake`,
/// `Request` and the dial and HTTP-handshake timeouts need a failing socket or a peer
/// that breaks mid-handshake, which loopback cannot produce deterministically.
#[tokio::test]
async fn smoke_display_of_every_other_kind() {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let p = proxy.addr();
    let t = origin.authority();
    let mut shown = Vec::new();

    let err = Proxy::new("http://u:pw@127.0.0.1:3128/path").unwrap_err();
    shown.push((err.kind(), err.to_string()));

    let direct = || {
        ServiceBuilder::new()
            .layer(TlsLayer::new(origin.client_config()))
            .layer(ProxyConnectLayer::direct())
            .service(HttpConnector::new())
    };
    let err = direct()
        .oneshot("ftp://example.com/".parse().unwrap())
        .await
        .unwrap_err();
    shown.push((err.kind(), err.to_string()));

    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = ServiceBuilder::new()
        .layer(ProxyConnectLayer::new(
            Proxy::new(&format!("http://127.0.0.1:{closed_port}")).unwrap(),
        ))
        .service(HttpConnector::new())
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap_err();
    shown.push((err.kind(), err.to_string()));

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let trusts_nothing = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let err = ServiceBuilder::new()
        .layer(TlsLayer::new(std::sync::Arc::new(trusts_nothing)))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new())
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap_err();
    shown.push((err.kind(), err.to_string()));

    let h1 = TestOrigin::builder().alpn(vec![]).start().await.unwrap();
    let err = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(h1.client_config()).with_http2_only())
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new())
        .oneshot(h1.https_url().parse().unwrap())
        .await
        .unwrap_err();
    shown.push((err.kind(), err.to_string()));

    let h1t = h1.authority();
    assert_eq!(
        shown,
        [
            (
                ErrorKind::InvalidProxy,
                "invalid proxy URL: a proxy URL has no path".to_owned()
            ),
            (
                ErrorKind::InvalidTarget,
                "invalid target URI: scheme must be http, https, ws or wss".to_owned()
            ),
            (
                ErrorKind::Dial,
                format!("could not connect to proxy 127.0.0.1:{closed_port} for {t}")
            ),
            (
                ErrorKind::Tls,
                format!("TLS handshake with {t} via proxy {p} failed")
            ),
            (
                ErrorKind::AlpnMismatch,
                format!("{h1t} selected no usable ALPN protocol: offered h2")
            ),
        ]
    );
    for (kind, message) in &shown {
        eprintln!("{kind:?}: {message}");
    }
    assert_eq!(origin.direct_connections(), 0);
}

//! Cancellation and load: dropping the connect future in any phase leaves no task, socket
//! or file descriptor behind, and many tunneled TLS connections leave none either.
//!
//! Descriptors are counted in `/proc/self/fd` (Linux), tasks with tokio's
//! `num_alive_tasks`. The fixtures run in this process too, so after each run the counts
//! are polled (bounded, 15 s) until the fixtures have closed their side; a tolerance of
//! `settle::FD_TOLERANCE` descriptors absorbs runtime noise (the test harness, a lazily opened
//! `/dev/urandom`, epoll or timer descriptors), far below the 1,000 a leak per connect
//! would show. The tests in this file take a lock so they never overlap.
//!
//! The 10,000-connection run is `#[ignore]`d in debug builds; run it with
//! `cargo test --release --test leaks -- --ignored`. The always-on version makes 1,000.

#![cfg(target_os = "linux")]

#[path = "common/settle.rs"]
mod settle;

use settle::{assert_settles, snapshot};

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::AsyncReadExt;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{Fault, TestOrigin, TestProxy};
use tower_tunnel::{AlpnDispatchLayer, Error, HttpConnection, Proxy, ProxyConnectLayer, TlsLayer};

type Body = Empty<Bytes>;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn full_stack(
    proxy: &str,
    origin: &TestOrigin,
) -> impl Service<Uri, Response = HttpConnection<Body>, Error = Error, Future: Send> + Clone {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(proxy).unwrap()))
        .service(HttpConnector::new())
}

/// Polls `fut` once, then drops it: cancelled in its first phase (the dial).
async fn poll_once_then_drop<F: Future>(fut: F) {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        let _ = fut.as_mut().poll(cx);
        std::task::Poll::Ready(())
    })
    .await;
}

/// A TCP server that accepts and never speaks; each socket is held until its peer goes.
async fn mute_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                Ok((mut sock, _)) = listener.accept() => {
                    held.spawn(async move {
                        let mut sink = [0u8; 1024];
                        while let Ok(1..) = sock.read(&mut sink).await {}
                    });
                }
                Some(_) = held.join_next(), if !held.is_empty() => {}
            }
        }
    });
    (addr, task)
}

const CANCELS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_in_every_phase_leaves_nothing_behind() {
    let _serial = SERIAL.lock().await;
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let (mute, mute_task) = mute_server().await;
    let uri: Uri = origin.https_url().parse().unwrap();
    let mute_uri: Uri = format!("https://localhost:{}", mute.port())
        .parse()
        .unwrap();
    // Warm up: one full connection, so lazily created runtime and TLS state is counted in
    // the baseline rather than as a leak.
    let mut conn = full_stack(&proxy.url(), &origin)
        .oneshot(uri.clone())
        .await
        .unwrap();
    let res = conn
        .send_request(Request::get("/").body(Body::new()).unwrap())
        .await
        .unwrap();
    res.into_body().collect().await.unwrap();
    drop(conn);
    let started = Instant::now();

    // Dial: dropped right after the first poll started the TCP connect.
    let before = snapshot();
    let stack = full_stack(&proxy.url(), &origin);
    for _ in 0..CANCELS {
        poll_once_then_drop(stack.clone().oneshot(uri.clone())).await;
    }
    assert_settles("cancelled in dial", before).await;

    // CONNECT wait: the proxy reads the request and never answers. `Fault::Silence` holds
    // its side of every connection until the proxy is dropped, so the proxy is dropped
    // before counting; what is left is the client's.
    let before = snapshot();
    let silent = TestProxy::builder()
        .fault(Fault::Silence)
        .start()
        .await
        .unwrap();
    let stack = full_stack(&silent.url(), &origin);
    for _ in 0..CANCELS {
        let r = tokio::time::timeout(Duration::from_millis(2), stack.clone().oneshot(uri.clone()))
            .await;
        assert!(r.is_err(), "a silent proxy answered");
    }
    let requests = silent.requests().len();
    drop((stack, silent));
    assert_settles("cancelled in CONNECT wait", before).await;
    assert!(
        requests > CANCELS / 2,
        "only {requests} cancels were in the CONNECT wait"
    );

    // TLS handshake: the tunnel opens to a target that never answers the ClientHello.
    let before = snapshot();
    let stack = full_stack(&proxy.url(), &origin);
    for _ in 0..CANCELS {
        let r = tokio::time::timeout(
            Duration::from_millis(3),
            stack.clone().oneshot(mute_uri.clone()),
        )
        .await;
        assert!(r.is_err(), "a mute target finished a TLS handshake");
    }
    assert_settles("cancelled in TLS handshake", before).await;

    // Any phase, HTTP handshake included: drops spread over a whole connect's duration.
    let t = Instant::now();
    for _ in 0..20 {
        full_stack(&proxy.url(), &origin)
            .oneshot(uri.clone())
            .await
            .unwrap();
    }
    let typical = t.elapsed() / 20;
    let before = snapshot();
    let stack = full_stack(&proxy.url(), &origin);
    for i in 0..CANCELS {
        let at = typical.mul_f64((i % 50) as f64 / 40.0);
        let _ = tokio::time::timeout(at, stack.clone().oneshot(uri.clone())).await;
    }
    assert_settles(
        &format!("cancelled at spread points over {typical:?}"),
        before,
    )
    .await;
    eprintln!(
        "typical connect {typical:?}; all cancellations in {:?}",
        started.elapsed()
    );
    assert_eq!(origin.direct_connections(), 0);
    mute_task.abort();
}

/// Connects through the tunnel, sends one request and reads the whole response.
async fn one_request<S>(mut stack: S, uri: Uri)
where
    S: Service<Uri, Response = HttpConnection<Body>, Error = Error>,
{
    let mut conn = stack.ready().await.unwrap().call(uri).await.unwrap();
    let res = conn
        .send_request(Request::get("/").body(Body::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap();
}

async fn sequential(n: usize) {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let stack = full_stack(&proxy.url(), &origin);
    let uri: Uri = origin.https_url().parse().unwrap();
    one_request(stack.clone(), uri.clone()).await;
    let before = snapshot();
    let started = Instant::now();
    for _ in 0..n {
        one_request(stack.clone(), uri.clone()).await;
    }
    eprintln!(
        "{n} sequential tunneled TLS connections in {:?}",
        started.elapsed()
    );
    assert_settles(&format!("{n} sequential"), before).await;
    assert_eq!(origin.proxied_connections(), n + 1);
    assert_eq!(origin.direct_connections(), 0);
}

async fn concurrent(n: usize) {
    let origin = TestOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let stack = full_stack(&proxy.url(), &origin);
    let uri: Uri = origin.https_url().parse().unwrap();
    one_request(stack.clone(), uri.clone()).await;
    let before = snapshot();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        set.spawn(one_request(stack.clone(), uri.clone()));
    }
    while let Some(done) = set.join_next().await {
        done.expect("a concurrent connection failed");
    }
    eprintln!(
        "{n} concurrent tunneled TLS connections in {:?}",
        started.elapsed()
    );
    assert_settles(&format!("{n} concurrent"), before).await;
    assert_eq!(origin.proxied_connections(), n + 1);
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_1_000() {
    let _serial = SERIAL.lock().await;
    sequential(1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow in debug builds: cargo test --release --test leaks -- --ignored"]
async fn sequential_10_000() {
    let _serial = SERIAL.lock().await;
    sequential(10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_1_000() {
    let _serial = SERIAL.lock().await;
    concurrent(1_000).await;
}

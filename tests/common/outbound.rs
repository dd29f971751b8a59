//! An axum app whose handler calls an upstream HTTPS service through a proxy with
//! tower-tunnel, the connector composed in one `ServiceBuilder` with tower's timeout and
//! concurrency limit on top.
//!
//! Shared by `tests/axum.rs` and `examples/axum_outbound.rs` (through `#[path]`).
//!
//! `GET /upstream/{*path}` fetches `{upstream}/{path}` and streams the answer back, adding
//! `x-upstream-route` (`tunnel via 127.0.0.1:3128`), `x-upstream-alpn` and
//! `x-upstream-version`. A connect that takes too long answers `504`, any other failure
//! `502`, with the error's own words as the body.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Request, Response, StatusCode, Uri};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::limit::{ConcurrencyLimit, ConcurrencyLimitLayer};
use tower::timeout::{Timeout, TimeoutLayer};
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_tunnel::{
    AlpnDispatch, AlpnDispatchLayer, Proxy, ProxyConnect, ProxyConnectLayer, TlsConnect, TlsLayer,
};

/// The request body of upstream calls.
pub type UpstreamBody = Empty<Bytes>;

/// The whole outbound stack, spelled out: a `Service<Uri>` that yields a ready
/// `HttpConnection<UpstreamBody>` or a `BoxError`.
pub type Upstream =
    Timeout<ConcurrencyLimit<AlpnDispatch<TlsConnect<ProxyConnect<HttpConnector>>, UpstreamBody>>>;

/// Builds the outbound stack in one `ServiceBuilder`, outermost first:
///
/// - `TimeoutLayer`: each connection (dial, CONNECT, TLS, HTTP handshake) must be ready
///   within `timeout`, or the call fails with tower's `Elapsed`;
/// - `ConcurrencyLimitLayer`: at most `max_connecting` connections are being made at once;
///   callers beyond that wait in `poll_ready`;
/// - then the tower-tunnel stack: ALPN dispatch, TLS to the target, CONNECT through `proxy`.
pub fn upstream(
    proxy: Proxy,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    max_connecting: usize,
) -> Upstream {
    ServiceBuilder::new()
        .layer(TimeoutLayer::new(timeout))
        .layer(ConcurrencyLimitLayer::new(max_connecting))
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(tls))
        .layer(ProxyConnectLayer::new(proxy))
        .service(HttpConnector::new())
}

/// The app's state: the outbound stack and where the upstream lives.
#[derive(Clone)]
pub struct AppState {
    pub upstream: Upstream,
    pub base: Uri,
}

/// The router: `GET /upstream/{*path}` and `GET /upstream/`.
pub fn app(upstream: Upstream, base: Uri) -> Router {
    Router::new()
        .route("/upstream/", get(fetch_root))
        .route("/upstream/{*path}", get(fetch))
        .with_state(AppState { upstream, base })
}

async fn fetch_root(State(state): State<AppState>) -> Result<Response<Body>, (StatusCode, String)> {
    forward(state, "").await
}

async fn fetch(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response<Body>, (StatusCode, String)> {
    forward(state, &path).await
}

async fn forward(state: AppState, path: &str) -> Result<Response<Body>, (StatusCode, String)> {
    // A clone shares the concurrency limit's semaphore; `oneshot` waits for a permit, then
    // makes one connection: route, tunnel, TLS and HTTP handshake.
    let mut conn = state
        .upstream
        .clone()
        .oneshot(state.base.clone())
        .await
        .map_err(upstream_error)?;
    let info = conn.info().clone();
    let req = Request::get(format!("/{path}"))
        .body(UpstreamBody::new())
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let res = conn
        .send_request(req)
        .await
        .map_err(|e| upstream_error(e.into()))?;

    let (parts, body) = res.into_parts();
    // The body streams straight from the upstream connection to the caller.
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        // Hop-by-hop fields describe the upstream connection, not this response.
        if !matches!(
            name.as_str(),
            "connection" | "keep-alive" | "transfer-encoding"
        ) {
            out.headers_mut().append(name, value.clone());
        }
    }
    let headers = out.headers_mut();
    let text = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static("?"));
    headers.insert("x-upstream-route", text(info.route().to_string()));
    headers.insert(
        "x-upstream-alpn",
        text(info.alpn().unwrap_or("none").to_owned()),
    );
    headers.insert("x-upstream-version", text(format!("{:?}", parts.version)));
    Ok(out)
}

/// `504` for tower's timeout, `502` for everything else, with the error's own words.
fn upstream_error(err: BoxError) -> (StatusCode, String) {
    if err.is::<tower::timeout::error::Elapsed>() {
        (
            StatusCode::GATEWAY_TIMEOUT,
            "upstream connection timed out".to_owned(),
        )
    } else {
        (StatusCode::BAD_GATEWAY, err.to_string())
    }
}

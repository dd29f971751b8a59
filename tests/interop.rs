//! Interop with real proxies: Debian's squid, tinyproxy and microsocks,
//! started on loopback by `.ci/interop/setup.sh`, carry the crate's stack to the
//! in-process [`TestOrigin`].
//!
//! Every test that needs the servers is `#[ignore]`d with that reason, so plain `cargo
//! test` lists them as ignored on a machine without them; run them with `--ignored` after
//! setup.sh, with `TOWER_TUNNEL_INTEROP=1` and the proxy URLs that setup.sh writes to
//! `$INTEROP_DIR/ports.env`. Run so without the lab, or with a missing variable or an
//! unreachable server, a test fails and says what to do. `.ci/run` always runs the
//! suite for real (see `.ci/interop/README.md`).
//!
//! Each test asserts the route the crate reports ([`ConnectionInfo::route`]) and, where
//! the server logs it, that the server itself saw the target (squid's `access.log`,
//! tinyproxy's log, microsocks' output, all under `$INTEROP_DIR`): an independent witness
//! that the request did not bypass the proxy. The origin cannot tell a squid connection
//! from a direct one (it only recognises the crate's own `TestProxy`), so forward tests
//! look for the proxy's `Via` header instead.
//!
//! ```text
//! bash .ci/interop/setup.sh && source "${INTEROP_DIR:-/tmp/tower-tunnel-interop}/ports.env"
//! cargo test --all-features --test interop -- --ignored
//! bash .ci/interop/teardown.sh
//! ```

#[path = "common/lab.rs"]
mod lab;

use std::env;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{client_config, TestOrigin, HELLO_BODY};
use tower_tunnel::{
    AlpnDispatchLayer, ConnectionInfo, Error, ErrorKind, ForwardProxyLayer, HttpConnection, Proxy,
    ProxyAuth, ProxyConnectLayer, TlsLayer,
};

type Body = Empty<Bytes>;

/// The whole of one test, connection and requests included.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Each of the crate's own phases (dial, proxy answer, TLS, HTTP handshake).
const PHASE_TIMEOUT: Duration = Duration::from_secs(15);

// --- the environment setup.sh writes --------------------------------------------------

/// The proxy URL in the named variable.
macro_rules! proxy_url {
    ($name:literal) => {
        lab::lab_var($name)
    };
}

/// The user and password every authenticating server of setup.sh accepts.
fn credentials() -> (String, String) {
    let get = |name: &str| env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    (get("INTEROP_PROXY_USER"), get("INTEROP_PROXY_PASS"))
}

/// `scheme://host:port` with `user:password@` put in, percent-encoded.
fn with_userinfo(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a proxy URL with a scheme");
    format!("{scheme}://{}:{}@{rest}", encode(user), encode(password))
}

/// The proxy URL with setup.sh's credentials in it.
fn with_credentials(url: &str) -> String {
    let (user, password) = credentials();
    with_userinfo(url, &user, &password)
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `socks5://...` as `socks5h://...`: the proxy resolves the target's name.
fn socks5h(url: &str) -> String {
    url.replacen("socks5://", "socks5h://", 1)
}

// --- the stack --------------------------------------------------------------------------

fn proxy(url: &str) -> Proxy {
    Proxy::new(url).unwrap_or_else(|e| panic!("Proxy::new rejected a {} URL: {e}", scheme(url)))
}

fn scheme(url: &str) -> &str {
    url.split_once("://").map_or("http", |(s, _)| s)
}

/// The crate's full stack through `proxy` to `target`, bounded in time.
async fn connect(
    proxy: Proxy,
    http1_only: bool,
    target: &str,
) -> Result<HttpConnection<Body>, Error> {
    let tls = TlsLayer::new(client_config()).with_handshake_timeout(Some(PHASE_TIMEOUT));
    let tls = if http1_only {
        tls.with_http1_only()
    } else {
        tls
    };
    let stack = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new().with_handshake_timeout(Some(PHASE_TIMEOUT)))
        .layer(tls)
        .layer(
            ProxyConnectLayer::new(proxy)
                .with_dial_timeout(Some(PHASE_TIMEOUT))
                .with_connect_timeout(Some(PHASE_TIMEOUT)),
        )
        .service(HttpConnector::new());
    let target: Uri = target.parse().expect("target URI");
    bounded(stack.oneshot(target)).await
}

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("interop test took longer than its timeout")
}

async fn get(conn: &mut HttpConnection<Body>, uri: &str) -> (http::response::Parts, String) {
    let req = Request::get(uri).body(Body::new()).unwrap();
    let res = bounded(conn.send_request(req)).await.expect("request");
    let (parts, body) = res.into_parts();
    let body = bounded(body.collect()).await.expect("body").to_bytes();
    (parts, String::from_utf8(body.to_vec()).expect("UTF-8 body"))
}

// --- what the route and the servers say ------------------------------------------------

/// The route goes through `proxy_url`'s host and port, and its description contains
/// `kind` ("tunnel", "forward", "socks"), ignoring case.
#[track_caller]
fn assert_route(info: &ConnectionInfo, proxy_url: &str, kind: &str) {
    let expected = proxy(proxy_url).authority().clone();
    let route = info.route();
    assert_eq!(
        route.proxy(),
        Some(&expected),
        "route {route} should go through {expected}"
    );
    let shown = route.to_string().to_ascii_lowercase();
    assert!(
        shown.contains(kind),
        "route `{route}` should say `{kind}` ({info})"
    );
}

/// One request over an HTTPS tunnel through `proxy_url`, checking protocol, body and
/// route; returns once the connection is closed.
async fn https_through(proxy_url: &str, http1_only: bool, route_kind: &str) -> TestOrigin {
    let origin = TestOrigin::start().await.unwrap();
    let mut conn = connect(proxy(proxy_url), http1_only, &origin.https_url())
        .await
        .unwrap_or_else(|e| panic!("connect through {proxy_url}: {e}"));
    let (version, alpn, protocol) = if http1_only {
        (Version::HTTP_11, "http/1.1", "HTTP/1.1")
    } else {
        (Version::HTTP_2, "h2", "HTTP/2.0")
    };
    assert_eq!(conn.version(), version);
    // Two requests on the one connection: keep-alive (or two streams) inside the tunnel.
    for _ in 0..2 {
        let (parts, body) = get(&mut conn, "/").await;
        assert_eq!(parts.status, 200);
        assert_eq!(parts.version, version);
        assert_eq!(parts.headers["x-origin-protocol"], protocol);
        assert_eq!(body, HELLO_BODY);
    }
    let info = conn.info().clone();
    assert_route(&info, proxy_url, route_kind);
    assert_eq!(info.alpn(), Some(alpn));
    assert!(info.tls_version().is_some(), "{info}");
    assert!(info.timings().proxy_connect().is_some(), "{info}");
    assert_eq!(origin.connections(), 1);
    assert_eq!(origin.tls_handshakes(), 1);
    drop(conn);
    origin
}

// --- squid: CONNECT tunnels -------------------------------------------------------------

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_https_tunnel_http2() {
    let url = proxy_url!("SQUID_URL");
    let origin = https_through(&url, false, "tunnel").await;
    // squid logs a tunnel when it closes: "TCP_TUNNEL/200 ... CONNECT localhost:PORT".
    let line = format!("CONNECT {}", origin.authority());
    lab::assert_logged("squid-open/access.log", &line).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_https_tunnel_http1() {
    let url = proxy_url!("SQUID_URL");
    let origin = https_through(&url, true, "tunnel").await;
    let line = format!("CONNECT {}", origin.authority());
    lab::assert_logged("squid-open/access.log", &line).await;
}

// --- tinyproxy: CONNECT tunnels ---------------------------------------------------------

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn tinyproxy_https_tunnel_http2() {
    let url = proxy_url!("TINYPROXY_URL");
    let origin = https_through(&url, false, "tunnel").await;
    let line = format!("CONNECT {} HTTP/1.1", origin.authority());
    lab::assert_logged("tinyproxy/tinyproxy.log", &line).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn tinyproxy_https_tunnel_http1() {
    let url = proxy_url!("TINYPROXY_URL");
    let origin = https_through(&url, true, "tunnel").await;
    let line = format!("CONNECT {} HTTP/1.1", origin.authority());
    lab::assert_logged("tinyproxy/tinyproxy.log", &line).await;
}

// --- squid: Basic auth ------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_basic_auth_407_without_credentials() {
    let url = proxy_url!("SQUID_BASIC_URL");
    let origin = TestOrigin::start().await.unwrap();
    let err = connect(proxy(&url), false, &origin.https_url())
        .await
        .expect_err("squid-basic must refuse a CONNECT without credentials");
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired, "{err}");
    assert_eq!(
        err.status(),
        Some(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED)
    );
    let challenges: Vec<String> = err
        .proxy_response()
        .expect("the 407 is kept")
        .challenges()
        .map(str::to_owned)
        .collect();
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Basic") && c.contains("tower-tunnel-interop-basic")),
        "{challenges:?}"
    );
    let shown = err.to_string();
    assert!(shown.contains("407"), "{shown}");
    assert!(shown.contains(&origin.authority()), "{shown}");
    // The plain-text 407 never reached TLS, and squid opened nothing to the origin.
    assert_eq!(origin.connections(), 0);
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_basic_auth_wrong_password_is_407() {
    let url = proxy_url!("SQUID_BASIC_URL");
    let origin = TestOrigin::start().await.unwrap();
    let (user, _) = credentials();
    let err = connect(
        proxy(&with_userinfo(&url, &user, "not the password")),
        false,
        &origin.https_url(),
    )
    .await
    .expect_err("squid-basic must refuse a wrong password");
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("not the password"), "{shown}");
    assert_eq!(origin.connections(), 0);
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_basic_auth_200_with_credentials() {
    let url = proxy_url!("SQUID_BASIC_URL");
    let (user, _) = credentials();
    let origin = https_through(&with_credentials(&url), false, "tunnel").await;
    // squid logs the authenticated user: "... CONNECT localhost:PORT aladdin HIER_DIRECT/...".
    let line = format!("CONNECT {} {user} ", origin.authority());
    lab::assert_logged("squid-basic/access.log", &line).await;
}

// --- squid: Digest auth -----------------------------------------------------------------

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_digest_auth_407_without_credentials() {
    let url = proxy_url!("SQUID_DIGEST_URL");
    let origin = TestOrigin::start().await.unwrap();
    let err = connect(proxy(&url), false, &origin.https_url())
        .await
        .expect_err("squid-digest must refuse a CONNECT without credentials");
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired, "{err}");
    let challenges: Vec<String> = err
        .proxy_response()
        .expect("the 407 is kept")
        .challenges()
        .map(str::to_owned)
        .collect();
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Digest") && c.contains("nonce=")),
        "{challenges:?}"
    );
    assert_eq!(origin.connections(), 0);
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_digest_auth_answered_automatically() {
    let url = proxy_url!("SQUID_DIGEST_URL");
    let (user, _) = credentials();
    // Two connections in turn, each answering its own 407 challenge (a client that
    // caches the nonce would reuse it with nc=00000002; either way squid must accept).
    for http1_only in [false, true] {
        let origin = https_through(&with_credentials(&url), http1_only, "tunnel").await;
        let line = format!("CONNECT {} {user} ", origin.authority());
        lab::assert_logged("squid-digest/access.log", &line).await;
    }
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_digest_auth_wrong_password_is_407() {
    let url = proxy_url!("SQUID_DIGEST_URL");
    let origin = TestOrigin::start().await.unwrap();
    let (user, _) = credentials();
    let err = connect(
        proxy(&with_userinfo(&url, &user, "not the password")),
        false,
        &origin.https_url(),
    )
    .await
    .expect_err("squid-digest must refuse a wrong password");
    // The answered challenge was refused again: the second 407 is the error, not a loop.
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired, "{err}");
    let challenges: Vec<String> = err
        .proxy_response()
        .expect("the 407 is kept")
        .challenges()
        .map(str::to_owned)
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Digest")),
        "{challenges:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("not the password"), "{shown}");
    assert_eq!(origin.connections(), 0);
}

// --- forward proxying of http:// targets ------------------------------------------------

/// `requests` `GET`s for an `http://` target forwarded (absolute-form) on one connection
/// to the proxy at `proxy_url`; returns the last response's `Via` header.
async fn forward_through(proxy_url: &str, requests: usize) -> (TestOrigin, String) {
    let origin = TestOrigin::builder().plain_http().start().await.unwrap();
    let target = format!("{}/", origin.https_url());
    assert!(target.starts_with("http://"), "{target}");
    let mut conn = connect(proxy(proxy_url), false, &target)
        .await
        .unwrap_or_else(|e| panic!("connect through {proxy_url}: {e}"));
    let info = conn.info().clone();
    assert_route(&info, proxy_url, "forward");
    assert_eq!(info.tls_version(), None, "{info}");
    let mut via = String::new();
    for _ in 0..requests {
        let (parts, body) = get(&mut conn, &target).await;
        assert_eq!(parts.status, 200, "{parts:?}");
        assert_eq!(body, HELLO_BODY);
        via = parts
            .headers
            .get(http::header::VIA)
            .unwrap_or_else(|| panic!("no Via header from the proxy: {parts:?}"))
            .to_str()
            .unwrap()
            .to_owned();
    }
    assert!(origin.connections() >= 1);
    drop(conn);
    (origin, via)
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_forwards_http() {
    let url = proxy_url!("SQUID_URL");
    // squid keeps the client connection alive: two requests on it.
    let (origin, via) = forward_through(&url, 2).await;
    assert!(via.contains("squid"), "Via: {via}");
    let line = format!("GET http://{}/", origin.authority());
    lab::assert_logged("squid-open/access.log", &line).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_forwards_http_with_basic_auth() {
    let url = proxy_url!("SQUID_BASIC_URL");
    let (user, _) = credentials();
    let (origin, via) = forward_through(&with_credentials(&url), 2).await;
    assert!(via.contains("squid"), "Via: {via}");
    let line = format!("GET http://{}/ {user} ", origin.authority());
    lab::assert_logged("squid-basic/access.log", &line).await;
}

/// Two `GET`s for an `http://` target through hyper-util's pooled `Client`, with
/// `ForwardProxyLayer` putting the proxy's credentials on each forwarded request.
async fn client_forward_through(proxy_url: &str) -> TestOrigin {
    let origin = TestOrigin::builder().plain_http().start().await.unwrap();
    let route = ProxyConnectLayer::new(proxy(proxy_url))
        .with_dial_timeout(Some(PHASE_TIMEOUT))
        .with_connect_timeout(Some(PHASE_TIMEOUT));
    let connector = ServiceBuilder::new()
        .layer(TlsLayer::new(client_config()))
        .layer(route.clone())
        .service(HttpConnector::new());
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(connector);
    let mut client = ServiceBuilder::new()
        .layer(ForwardProxyLayer::from(&route))
        .service(client);
    let target: Uri = format!("{}/", origin.https_url()).parse().unwrap();
    for _ in 0..2 {
        let req = Request::get(target.clone()).body(Body::new()).unwrap();
        let res = bounded(client.ready().await.unwrap().call(req))
            .await
            .unwrap_or_else(|e| panic!("GET {target} through {proxy_url}: {e}"));
        assert_eq!(res.status(), 200, "{res:?}");
        let info = res.extensions().get::<ConnectionInfo>().unwrap().clone();
        assert_route(&info, proxy_url, "forward");
        let body = bounded(res.into_body().collect()).await.unwrap().to_bytes();
        assert_eq!(body, HELLO_BODY);
    }
    origin
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_basic_forwards_for_hyper_util_client() {
    let url = proxy_url!("SQUID_BASIC_URL");
    let (user, _) = credentials();
    let origin = client_forward_through(&with_credentials(&url)).await;
    let line = format!("GET http://{}/ {user} ", origin.authority());
    lab::assert_logged("squid-basic/access.log", &line).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_digest_forwards_for_hyper_util_client() {
    let url = proxy_url!("SQUID_DIGEST_URL");
    let (user, _) = credentials();
    let origin = client_forward_through(&with_credentials(&url)).await;
    let line = format!("GET http://{}/ {user} ", origin.authority());
    lab::assert_logged("squid-digest/access.log", &line).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn tinyproxy_forwards_http() {
    let url = proxy_url!("TINYPROXY_URL");
    // tinyproxy answers forwarded requests with HTTP/1.0 and closes the client
    // connection after each one (no keep-alive): one request per connection.
    let (origin, via) = forward_through(&url, 1).await;
    assert!(via.contains("tinyproxy"), "Via: {via}");
    let line = format!("GET http://{}/", origin.authority());
    lab::assert_logged("tinyproxy/tinyproxy.log", &line).await;
}

// --- SOCKS5 through microsocks ----------------------------------------------------------

/// microsocks prints `client[N] 127.0.0.1: connected to HOST:PORT` per connection: an IP
/// when the client resolved the name (socks5://), the name when the proxy did (socks5h://).
async fn assert_socks_logged(server: &str, origin: &TestOrigin, resolved_by_proxy: bool) {
    let host = if resolved_by_proxy {
        "localhost".to_owned()
    } else {
        origin.addr().ip().to_string()
    };
    let line = format!("connected to {host}:{}", origin.addr().port());
    lab::assert_logged(&format!("{server}/server.log"), &line).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn socks5_resolves_locally() {
    let url = proxy_url!("SOCKS5_URL");
    let origin = https_through(&url, false, "socks").await;
    assert_socks_logged("socks5", &origin, false).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn socks5h_lets_the_proxy_resolve() {
    let url = socks5h(&proxy_url!("SOCKS5_URL"));
    let origin = https_through(&url, true, "socks").await;
    assert_socks_logged("socks5", &origin, true).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn socks5_with_username_and_password() {
    let url = with_credentials(&proxy_url!("SOCKS5_AUTH_URL"));
    let origin = https_through(&url, false, "socks").await;
    assert_socks_logged("socks5-auth", &origin, false).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn socks5h_with_username_and_password() {
    let url = socks5h(&with_credentials(&proxy_url!("SOCKS5_AUTH_URL")));
    let origin = https_through(&url, true, "socks").await;
    assert_socks_logged("socks5-auth", &origin, true).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn socks5_auth_required_without_credentials() {
    let url = proxy_url!("SOCKS5_AUTH_URL");
    let origin = TestOrigin::start().await.unwrap();
    let err = connect(proxy(&url), false, &origin.https_url())
        .await
        .expect_err("microsocks with -u/-P must refuse a client offering no auth");
    // microsocks answers "no acceptable methods" (0xFF): an auth failure, not a dial one.
    assert_ne!(err.kind(), ErrorKind::Dial, "{err}");
    assert_ne!(err.kind(), ErrorKind::Tls, "{err}");
    assert_eq!(err.proxy(), Some(proxy(&url).authority()), "{err}");
    assert_eq!(origin.connections(), 0);
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn socks5_wrong_password_is_refused() {
    let url = proxy_url!("SOCKS5_AUTH_URL");
    let origin = TestOrigin::start().await.unwrap();
    let (user, _) = credentials();
    let err = connect(
        proxy(&with_userinfo(&url, &user, "not the password")),
        false,
        &origin.https_url(),
    )
    .await
    .expect_err("microsocks must refuse a wrong password");
    assert_ne!(err.kind(), ErrorKind::Dial, "{err}");
    assert_ne!(err.kind(), ErrorKind::Tls, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("not the password"), "{shown}");
    assert_eq!(origin.connections(), 0);
}

// --- the suite itself -------------------------------------------------------------------

/// When the suite is on, every variable setup.sh writes is there, so a stale or partial
/// environment fails here with a clear message rather than in the middle of a test.
#[test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
fn environment_is_complete() {
    for name in [
        "SQUID_URL",
        "SQUID_BASIC_URL",
        "SQUID_DIGEST_URL",
        "TINYPROXY_URL",
        "SOCKS5_URL",
        "SOCKS5_AUTH_URL",
        "INTEROP_PROXY_USER",
        "INTEROP_PROXY_PASS",
    ] {
        lab::lab_var(name);
    }
}

#[test]
fn userinfo_is_percent_encoded() {
    assert_eq!(
        with_userinfo("socks5://127.0.0.1:1080", "aladdin", "open sesame"),
        "socks5://aladdin:open%20sesame@127.0.0.1:1080"
    );
    assert_eq!(socks5h("socks5://a:b@h:1"), "socks5h://a:b@h:1");
}

// --- nghttpx --http2-proxy: CONNECT over HTTP/2 ----------------------------------------

/// A client config trusting the PEM certificates in the file at `ca` (setup.sh's CA).
fn trusting(ca: &str) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("a CA file") {
        roots.add(cert.expect("PEM certificates")).unwrap();
    }
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// The stack through `nghttpx --http2-proxy` (`NGHTTPX_URL`, TLS with the certificate in
/// `NGHTTPX_CA`, squid behind it): h2-in-h2 and http/1.1-in-h2, then 100 concurrent
/// tunnels that must share one HTTP/2 connection to the proxy.
/// Held by the nghttpx tests: a reload in one would move the other's tunnels to a new
/// connection.
static NGHTTPX: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn nghttpx_h2_proxy_carries_many_tunnels_on_one_connection() {
    let url = lab::lab_var("NGHTTPX_URL");
    let _one_at_a_time = NGHTTPX.lock().await;
    let ca = lab::lab_var("NGHTTPX_CA");
    let proxy_tls = trusting(&ca);
    let h2_origin = TestOrigin::start().await.unwrap();
    let h1_origin = TestOrigin::builder()
        .alpn(vec![b"http/1.1".to_vec()])
        .start()
        .await
        .unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(&url).unwrap()).with_proxy_tls(proxy_tls))
        .service(HttpConnector::new());
    let uri = |o: &TestOrigin| -> Uri {
        format!("https://localhost:{}/", o.addr().port())
            .parse()
            .unwrap()
    };
    let run = async {
        let mut h2 = connect.clone().oneshot(uri(&h2_origin)).await.unwrap();
        assert_eq!(h2.version(), Version::HTTP_2);
        let mut h1 = connect.clone().oneshot(uri(&h1_origin)).await.unwrap();
        assert_eq!(h1.version(), Version::HTTP_11);
        for conn in [&mut h2, &mut h1] {
            assert!(conn.info().route().is_h2_tunnel(), "{}", conn.info());
            let res = conn
                .send_request(Request::get("/").body(Body::new()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], HELLO_BODY.as_bytes());
        }
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..98 {
            let (connect, uri) = (connect.clone(), uri(&h2_origin));
            tasks.spawn(async move {
                let mut conn = connect.oneshot(uri).await.unwrap();
                let res = conn
                    .send_request(Request::get("/").body(Body::new()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                conn
            });
        }
        let mut conns = Vec::new();
        while let Some(conn) = tasks.join_next().await {
            conns.push(conn.unwrap());
        }
        // 100 tunnels, all on the first connection (streams 1..=199).
        assert_eq!(h2.info().shared_tunnels(), Some(100), "{}", h2.info());
        for conn in &conns {
            assert!(
                matches!(conn.info().route(), tower_tunnel::Route::H2Tunnel { stream, .. } if *stream < 200),
                "{}",
                conn.info()
            );
        }
    };
    tokio::time::timeout(TEST_TIMEOUT, run)
        .await
        .expect("nghttpx test timed out");
}

/// nghttpx answers the keep-alive `PING`s (`ProxyConnectLayer::with_h2_keep_alive`):
/// through a relay that counts the bytes, the `PING`s go up while the connection is idle
/// for ten intervals, the connection stays open (the tunnel on it still works), and the
/// next tunnel shares it.
#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn nghttpx_answers_keep_alive_pings() {
    use tower_tunnel::test_util::{Direction, FaultRelay};

    let url = lab::lab_var("NGHTTPX_URL");
    let _one_at_a_time = NGHTTPX.lock().await;
    let ca = lab::lab_var("NGHTTPX_CA");
    let port = url
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .expect("a port");
    let relay = FaultRelay::start(([127, 0, 0, 1], port).into())
        .await
        .unwrap();
    let every = Duration::from_millis(200);
    let origin = TestOrigin::start().await.unwrap();
    let target: Uri = format!("https://localhost:{}/", origin.addr().port())
        .parse()
        .unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(client_config()))
        .layer(
            ProxyConnectLayer::new(
                Proxy::new(&format!("https://localhost:{}", relay.addr().port())).unwrap(),
            )
            .with_proxy_tls(trusting(&ca))
            .with_h2_keep_alive(Some(every)),
        )
        .service(HttpConnector::new());
    let run = async {
        let mut first = connect.clone().oneshot(target.clone()).await.unwrap();
        assert!(first.info().route().is_h2_tunnel(), "{}", first.info());
        assert_eq!(get(&mut first, "/").await.0.status, 200);
        let up = relay.bytes(Direction::Up);
        tokio::time::sleep(every * 10).await;
        assert!(relay.bytes(Direction::Up) > up, "no PING sent while idle");
        let (parts, body) = get(&mut first, "/").await;
        assert_eq!(parts.status, 200);
        assert_eq!(body, HELLO_BODY);
        let mut second = connect.clone().oneshot(target.clone()).await.unwrap();
        assert_eq!(second.info().shared_tunnels(), Some(2), "{}", second.info());
        assert_eq!(get(&mut second, "/").await.0.status, 200);
        assert_eq!(relay.connections(), 1);
    };
    tokio::time::timeout(TEST_TIMEOUT, run)
        .await
        .expect("nghttpx keep-alive test timed out");
}

/// A graceful reload of nghttpx (`SIGHUP` to its master, by `.ci/interop/restart.sh`):
/// the old worker sends `GOAWAY` and drains. The tunnel opened before it keeps working,
/// and new tunnels go to a new connection (the new worker), never to the one going away.
#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn nghttpx_reload_goaway_leaves_open_tunnels_running_and_moves_new_ones() {
    let url = lab::lab_var("NGHTTPX_URL");
    let ca = lab::lab_var("NGHTTPX_CA");
    let _one_at_a_time = NGHTTPX.lock().await;
    let origin = TestOrigin::start().await.unwrap();
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(client_config()))
        .layer(
            ProxyConnectLayer::new(Proxy::new(&url).unwrap())
                .with_proxy_tls(trusting(&ca))
                .with_connect_timeout(Some(PHASE_TIMEOUT)),
        )
        .service(HttpConnector::new());
    let uri: Uri = origin.https_url().parse().unwrap();
    let stream_of = |c: &HttpConnection<Body>| match c.info().route() {
        tower_tunnel::Route::H2Tunnel { stream, .. } => *stream,
        other => panic!("not an HTTP/2 tunnel: {other}"),
    };
    let run = async {
        let mut open = connect.clone().oneshot(uri.clone()).await.unwrap();
        assert_eq!(get(&mut open, "/").await.0.status, 200);
        assert_eq!(stream_of(&open), 1);

        restart("reload", "nghttpx");
        // Until the GOAWAY arrives a new tunnel may still go to the old connection (and
        // be processed, or sent again); every one works. Bounded: 50 tries.
        let mut moved = None;
        for _ in 0..50 {
            let mut conn = connect.clone().oneshot(uri.clone()).await.unwrap();
            assert_eq!(get(&mut conn, "/").await.0.status, 200);
            if stream_of(&conn) == 1 {
                moved = Some(conn);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let moved = moved.expect("no new connection to nghttpx after its reload");
        assert_eq!(moved.info().shared_tunnels(), Some(1), "{}", moved.info());
        // The old worker drains: the tunnel opened before the reload still carries
        // requests.
        let (parts, body) = get(&mut open, "/").await;
        assert_eq!(parts.status, 200);
        assert_eq!(body, HELLO_BODY);
        let next = connect.clone().oneshot(uri.clone()).await.unwrap();
        assert_eq!(stream_of(&next), 3, "{}", next.info());
    };
    tokio::time::timeout(TEST_TIMEOUT, run)
        .await
        .expect("nghttpx reload test timed out");
}

/// Runs `.ci/interop/restart.sh ACTION NAME` against the lab of `INTEROP_DIR`.
fn restart(action: &str, name: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/interop/restart.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .args([action, name])
        .status()
        .expect("run .ci/interop/restart.sh");
    assert!(status.success(), "restart.sh {action} {name}: {status}");
}

// --- SOCKS4 through Dante ---------------------------------------------------------------

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn dante_socks4_gets_an_address_resolved_here() {
    let url = proxy_url!("DANTE_SOCKS4_URL");
    let origin = TestOrigin::start().await.unwrap();
    // `localhost`: resolved here to 127.0.0.1, as SOCKS4 needs.
    let mut conn = connect(proxy(&url), false, &origin.https_url())
        .await
        .unwrap_or_else(|e| panic!("connect through {url}: {e}"));
    assert_route(&conn.info().clone(), &url, "socks4");
    let (parts, body) = get(&mut conn, "/").await;
    assert_eq!(parts.status, 200);
    assert_eq!(body, HELLO_BODY);
    // Dante logs `client -> destination` as `address.port`.
    let dest = format!("127.0.0.1.{}", origin.addr().port());
    lab::assert_logged("dante/danted.log", &dest).await;
}

// --- proxy chains ----------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn microsocks_in_front_of_squid() {
    let squid = proxy_url!("SQUID_URL");
    let socks = proxy_url!("SOCKS5_URL");
    let origin = TestOrigin::start().await.unwrap();
    let chained = proxy(&squid).with_preproxy(proxy(&socks));
    let mut conn = connect(chained, false, &origin.https_url())
        .await
        .unwrap_or_else(|e| panic!("connect through {socks} then {squid}: {e}"));
    assert_route(&conn.info().clone(), &squid, "tunnel");
    let (parts, _) = get(&mut conn, "/").await;
    assert_eq!(parts.status, 200);
    // squid logs a tunnel when it closes.
    drop(conn);
    // Each server logged its own hop: microsocks the connection to squid, squid the
    // CONNECT to the origin.
    let squid_addr = proxy(&squid).authority().to_string();
    lab::assert_logged("socks5/server.log", &format!("connected to {squid_addr}")).await;
    lab::assert_logged(
        "squid-open/access.log",
        &format!("CONNECT {} ", origin.authority()),
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_in_front_of_tinyproxy() {
    let squid = proxy_url!("SQUID_URL");
    let tiny = proxy_url!("TINYPROXY_URL");
    let origin = TestOrigin::start().await.unwrap();
    let chained = proxy(&tiny).with_preproxy(proxy(&squid));
    let mut conn = connect(chained, false, &origin.https_url())
        .await
        .unwrap_or_else(|e| panic!("connect through {squid} then {tiny}: {e}"));
    assert_route(&conn.info().clone(), &tiny, "tunnel");
    let (parts, _) = get(&mut conn, "/").await;
    assert_eq!(parts.status, 200);
    // squid logs a tunnel when it closes.
    drop(conn);
    let tiny_addr = proxy(&tiny).authority().to_string();
    lab::assert_logged("squid-open/access.log", &format!("CONNECT {tiny_addr} ")).await;
    lab::assert_logged(
        "tinyproxy/tinyproxy.log",
        &format!("CONNECT {}", origin.authority()),
    )
    .await;
}

// --- WebSockets through squid ----------------------------------------------------------

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn websocket_through_squid_round_trips_a_mebibyte() {
    let squid = proxy_url!("SQUID_URL");
    let url = proxy_url!("WSS_ECHO_URL");
    let ca = lab::lab_var("NGHTTPX_CA");
    let connector = ServiceBuilder::new()
        .layer(TlsLayer::new(trusting(&ca)))
        .layer(ProxyConnectLayer::new(proxy(&squid)))
        .service(HttpConnector::new());
    let stream = bounded(connector.oneshot(url.parse().unwrap()))
        .await
        .unwrap_or_else(|e| panic!("wss through {squid}: {e}"));
    assert_route(&stream.info().clone(), &squid, "tunnel");
    assert_eq!(stream.info().alpn(), Some("http/1.1"));
    let (mut ws, res) = bounded(tokio_tungstenite::client_async(
        url.as_str(),
        hyper_util::rt::TokioIo::new(stream),
    ))
    .await
    .expect("WebSocket handshake");
    assert_eq!(res.status(), 101);
    use futures_util::{SinkExt as _, StreamExt as _};
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    bounded(ws.send(tokio_tungstenite::tungstenite::Message::binary(big.clone())))
        .await
        .unwrap();
    let back = bounded(ws.next()).await.unwrap().unwrap();
    assert_eq!(back.into_data().as_ref(), &big[..]);
    let _ = bounded(ws.close(None)).await;
    // squid logs a tunnel when it closes.
    drop(ws);
    let authority = url::authority_of(&url);
    lab::assert_logged("squid-open/access.log", &format!("CONNECT {authority} ")).await;
    lab::assert_logged("ws-echo/server.log", "echo 1048576 bytes").await;
}

mod url {
    /// `host:port` of a `wss://host:port/path` URL.
    pub(super) fn authority_of(url: &str) -> String {
        let uri: http::Uri = url.parse().unwrap();
        uri.authority().unwrap().to_string()
    }
}

// --- corporate proxy authentication: NTLM, Negotiate, scheme negotiation ----------------

/// `DOMAIN\user` and the password of setup.sh's NTLM user, in a proxy URL.
fn ntlm_proxy(url: &str) -> Proxy {
    let (user, password) = credentials();
    let domain = lab::lab_var("INTEROP_NTLM_DOMAIN");
    proxy(url).with_basic_auth(&format!("{domain}\\{user}"), &password)
}

/// Connects to a TLS origin through `proxy` and GETs `/`; the connection's info.
async fn tunnel_and_get(proxy: Proxy, what: &str) -> (TestOrigin, ConnectionInfo) {
    let origin = TestOrigin::start().await.unwrap();
    let mut conn = connect(proxy, false, &origin.https_url())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let (parts, body) = get(&mut conn, "/").await;
    assert_eq!(parts.status, 200);
    assert_eq!(body, HELLO_BODY);
    let info = conn.info().clone();
    drop(conn);
    (origin, info)
}

/// The client ports of `status` lines for `needle` in squid-ntlm's port log.
async fn ports_logged(needle: &str, status: &str) -> Vec<String> {
    let path = lab::log_path("squid-ntlm/access-ports.log");
    let start = Instant::now();
    loop {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        let ports: Vec<String> = log
            .lines()
            .filter(|l| l.contains(needle) && l.contains(status))
            .filter_map(|l| {
                l.split_whitespace()
                    .nth(1)?
                    .rsplit_once(':')
                    .map(|(_, p)| p.to_owned())
            })
            .collect();
        if !ports.is_empty() || start.elapsed() > lab::LOG_TIMEOUT {
            return ports;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_ntlm_tunnel_on_one_connection() {
    let url = proxy_url!("SQUID_NTLM_URL");
    let started = Instant::now();
    let (origin, info) =
        tunnel_and_get(ntlm_proxy(&url).with_auth(ProxyAuth::Ntlm), "NTLM tunnel").await;
    eprintln!("NTLM: tunnel and GET in {:?} ({info})", started.elapsed());
    assert_eq!(info.proxy_auth(), Some("NTLM"));
    let (user, _) = credentials();
    let target = origin.authority();
    lab::assert_logged("squid-ntlm/access.log", &format!("CONNECT {target} ")).await;
    lab::assert_logged("squid-ntlm/access.log", &user).await;
    // The 407 (negotiate answered with the challenge) and the 200 came over one
    // connection: one client port.
    let denied = ports_logged(&format!("CONNECT {target}"), "/407").await;
    let allowed = ports_logged(&format!("CONNECT {target}"), "/200").await;
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    assert!(
        denied.contains(&allowed[0]),
        "407 from {denied:?}, 200 from {allowed:?}"
    );
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_ntlm_is_chosen_in_any_mode_and_http_targets_tunnel() {
    let url = proxy_url!("SQUID_NTLM_URL");
    let (_, info) = tunnel_and_get(ntlm_proxy(&url).with_auth(ProxyAuth::Any), "Any mode").await;
    assert_eq!(info.proxy_auth(), Some("NTLM"));
    // An http:// target: NTLM authenticates the connection, so it is tunnelled and the
    // authenticated tunnel carries the request.
    let origin = TestOrigin::builder().plain_http().start().await.unwrap();
    let target = format!("{}/", origin.https_url());
    let mut conn = connect(ntlm_proxy(&url).with_auth(ProxyAuth::Ntlm), false, &target)
        .await
        .unwrap_or_else(|e| panic!("NTLM for an http:// target: {e}"));
    assert!(matches!(
        conn.info().route(),
        tower_tunnel::Route::Tunnel { .. }
    ));
    let (parts, body) = get(&mut conn, &target).await;
    assert_eq!(parts.status, 200);
    assert_eq!(body, HELLO_BODY);
    drop(conn);
    lab::assert_logged(
        "squid-ntlm/access.log",
        &format!("CONNECT {} ", origin.authority()),
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_digest_only_needs_any_mode() {
    let url = proxy_url!("SQUID_DIGEST_ONLY_URL");
    // The default sends Basic first, which this proxy refuses outright.
    let origin = TestOrigin::start().await.unwrap();
    let err = connect(proxy(&with_credentials(&url)), false, &origin.https_url())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::FORBIDDEN), "{err}");
    // Any: nothing before the proxy names its schemes, then Digest.
    let (_, info) = tunnel_and_get(
        proxy(&with_credentials(&url)).with_auth(ProxyAuth::Any),
        "Any mode against Digest only",
    )
    .await;
    assert_eq!(info.proxy_auth(), Some("Digest"));
    let (user, _) = credentials();
    lab::assert_logged("squid-digest-only/access.log", &format!(" {user} ")).await;
}

#[cfg(all(feature = "negotiate", unix))]
#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_negotiate_with_the_ticket_from_kinit() {
    let url = proxy_url!("SQUID_NEGOTIATE_URL");
    let principal = lab::lab_var("INTEROP_KRB5_PRINCIPAL");
    let started = Instant::now();
    // No password anywhere: the ticket cache of KRB5CCNAME.
    let (origin, info) = tunnel_and_get(
        proxy(&url).with_auth(ProxyAuth::Negotiate),
        "Negotiate tunnel",
    )
    .await;
    eprintln!(
        "Negotiate: tunnel and GET in {:?} ({info})",
        started.elapsed()
    );
    assert_eq!(info.proxy_auth(), Some("Negotiate"));
    lab::assert_logged(
        "squid-negotiate/access.log",
        &format!("CONNECT {} {principal} ", origin.authority()),
    )
    .await;
}

// --- SOCKS5 pipelining: which real servers carry it -------------------------------------

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn dante_carries_pipelined_socks5() {
    let url = proxy_url!("DANTE_SOCKS4_URL");
    let socks5 = url.replacen("socks4://", "socks5h://", 1);
    let (_, info) = tunnel_and_get(
        proxy(&socks5).with_socks_pipelining(true),
        "pipelined SOCKS5 through Dante",
    )
    .await;
    assert_route(&info, &socks5, "socks5");
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn microsocks_drops_pipelined_socks5_and_the_error_says_so() {
    let url = proxy_url!("SOCKS5_URL");
    let origin = TestOrigin::start().await.unwrap();
    let stack = ServiceBuilder::new()
        .layer(
            ProxyConnectLayer::new(proxy(&socks5h(&url)).with_socks_pipelining(true))
                .with_connect_timeout(Some(Duration::from_secs(1))),
        )
        .service(HttpConnector::new());
    let started = Instant::now();
    let err = bounded(stack.oneshot(origin.https_url().parse().unwrap()))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("with_socks_pipelining"), "{err}");
}

// --- optimistic tunnel data: which real proxies carry it --------------------------------

/// One request through `proxy` with optimistic data on: the tunnel request left with
/// the `ClientHello`, and the proxy's answer was read during the TLS handshake.
async fn optimistic_get(proxy: Proxy, kind: &str, what: &str) -> (TestOrigin, ConnectionInfo) {
    let url = proxy.to_string();
    let (origin, info) = tunnel_and_get(proxy.with_optimistic_data(true), what).await;
    assert_route(&info, &url, kind);
    assert!(info.timings().proxy_connect().is_some(), "{info}");
    (origin, info)
}

/// What an error says, for comparing the optimistic and the plain one.
fn facts(e: &Error) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {} {:?}",
        e.kind(),
        e.phase(),
        e.proxy(),
        e.target(),
        e,
        e.proxy_response()
            .map(|r| (r.status(), r.reason().map(str::to_owned), r.headers().len())),
    )
}

/// The refusal of `proxy` to a TLS origin, with and without optimistic data: the same.
async fn same_refusal(proxy: Proxy) -> Error {
    let origin = TestOrigin::start().await.unwrap();
    let plain = connect(proxy.clone(), false, &origin.https_url())
        .await
        .expect_err("the proxy must refuse");
    let optimistic = connect(proxy.with_optimistic_data(true), false, &origin.https_url())
        .await
        .expect_err("the proxy must refuse");
    assert_eq!(facts(&optimistic), facts(&plain));
    // The ClientHello sent with the request went nowhere.
    assert_eq!(origin.connections(), 0);
    optimistic
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_carries_optimistic_connect() {
    let url = proxy_url!("SQUID_URL");
    let (_, info) = optimistic_get(proxy(&url), "tunnel", "optimistic CONNECT through squid").await;
    assert_eq!(
        info.proxy_response().map(|r| r.status()),
        Some(http::StatusCode::OK)
    );
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_basic_carries_optimistic_connect_with_credentials() {
    let url = proxy_url!("SQUID_BASIC_URL");
    let (_, info) = optimistic_get(
        proxy(&with_credentials(&url)),
        "tunnel",
        "optimistic CONNECT through squid-basic",
    )
    .await;
    assert_eq!(info.proxy_auth(), Some("Basic"));
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn squid_optimistic_407_and_403_are_the_plain_errors() {
    let basic = proxy_url!("SQUID_BASIC_URL");
    let err = same_refusal(proxy(&basic)).await;
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired, "{err}");
    let wrong = with_userinfo(&basic, &credentials().0, "wrong");
    let err = same_refusal(proxy(&wrong)).await;
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired, "{err}");
    // squid-digest-only answers Basic credentials with 403.
    let digest_only = proxy_url!("SQUID_DIGEST_ONLY_URL");
    let err = same_refusal(proxy(&with_credentials(&digest_only))).await;
    assert_eq!(err.kind(), ErrorKind::ProxyRefused, "{err}");
    assert_eq!(err.status(), Some(http::StatusCode::FORBIDDEN));
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn tinyproxy_carries_optimistic_connect() {
    let url = proxy_url!("TINYPROXY_URL");
    optimistic_get(
        proxy(&url),
        "tunnel",
        "optimistic CONNECT through tinyproxy",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn nghttpx_carries_optimistic_connect_over_http1() {
    let url = lab::lab_var("NGHTTPX_URL");
    let ca = lab::lab_var("NGHTTPX_CA");
    let origin = TestOrigin::start().await.unwrap();
    let target = format!("https://localhost:{}/", origin.addr().port());
    let stack = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Body>::new())
        .layer(TlsLayer::new(client_config()))
        .layer(
            ProxyConnectLayer::new(
                proxy(&url)
                    .with_http2(tower_tunnel::Http2Mode::Never)
                    .with_optimistic_data(true),
            )
            .with_proxy_tls(trusting(&ca)),
        )
        .service(HttpConnector::new());
    let mut conn = bounded(stack.oneshot(target.parse().unwrap()))
        .await
        .unwrap_or_else(|e| panic!("optimistic CONNECT through nghttpx over HTTP/1.1: {e}"));
    assert!(
        conn.info().route().to_string().contains("tunnel"),
        "{}",
        conn.info()
    );
    assert!(conn.info().timings().proxy_connect().is_some());
    let (parts, body) = get(&mut conn, "/").await;
    assert_eq!(parts.status, 200);
    assert_eq!(body, HELLO_BODY);
}

/// nghttpx `--http2-proxy` spoken to in HTTP/2 (squid behind it): the `ClientHello` goes as
/// DATA right behind the `CONNECT` stream's HEADERS, on the fresh connection and on the
/// pooled one, and comes back as the origin's TLS; a refusal (squid cannot reach a closed
/// port: `503`) is the same error as without the option.
#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn nghttpx_carries_optimistic_data_on_http2_connect_streams() {
    let url = lab::lab_var("NGHTTPX_URL");
    let ca = lab::lab_var("NGHTTPX_CA");
    let _one_at_a_time = NGHTTPX.lock().await;
    let proxy_tls = trusting(&ca);
    let stack = |p: Proxy| {
        ServiceBuilder::new()
            .layer(AlpnDispatchLayer::<Body>::new())
            .layer(TlsLayer::new(client_config()))
            .layer(
                ProxyConnectLayer::new(p)
                    .with_proxy_tls(proxy_tls.clone())
                    .with_connect_timeout(Some(PHASE_TIMEOUT)),
            )
            .service(HttpConnector::new())
    };
    let origin = TestOrigin::start().await.unwrap();
    let target: Uri = format!("https://localhost:{}/", origin.addr().port())
        .parse()
        .unwrap();
    let run = async {
        let optimistic = stack(proxy(&url).with_optimistic_data(true));
        let mut first = optimistic
            .clone()
            .oneshot(target.clone())
            .await
            .unwrap_or_else(|e| panic!("optimistic CONNECT stream through nghttpx: {e}"));
        let mut second = optimistic
            .clone()
            .oneshot(target.clone())
            .await
            .unwrap_or_else(|e| panic!("second optimistic CONNECT stream through nghttpx: {e}"));
        for conn in [&mut first, &mut second] {
            let info = conn.info();
            assert!(info.route().is_h2_tunnel(), "{info}");
            assert_eq!(
                info.proxy_response().map(|r| r.status()),
                Some(http::StatusCode::OK),
                "{info}"
            );
            assert!(info.timings().proxy_connect().is_some(), "{info}");
            let (parts, body) = get(conn, "/").await;
            assert_eq!(parts.status, 200);
            assert_eq!(body, HELLO_BODY);
        }
        // The second on the pooled connection.
        assert_eq!(second.info().shared_tunnels(), Some(2), "{}", second.info());
        assert!(
            matches!(
                second.info().route(),
                tower_tunnel::Route::H2Tunnel { stream: 3, .. }
            ),
            "{}",
            second.info()
        );

        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let nowhere: Uri = format!("https://localhost:{closed}/").parse().unwrap();
        let plain = stack(proxy(&url))
            .oneshot(nowhere.clone())
            .await
            .expect_err("squid cannot reach a closed port");
        let refused = optimistic
            .clone()
            .oneshot(nowhere)
            .await
            .expect_err("squid cannot reach a closed port");
        assert_eq!(facts(&refused), facts(&plain));
        assert_eq!(refused.kind(), ErrorKind::ProxyRefused, "{refused}");
        assert!(refused.status().is_some(), "{refused}");
        // The tunnels opened before run on.
        assert_eq!(get(&mut first, "/").await.0.status, 200);
        assert_eq!(origin.connections(), 2);
    };
    tokio::time::timeout(TEST_TIMEOUT, run)
        .await
        .expect("nghttpx optimistic test timed out");
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn dante_carries_optimistic_socks() {
    let url = proxy_url!("DANTE_SOCKS4_URL");
    optimistic_get(proxy(&url), "socks4", "optimistic SOCKS4 through Dante").await;
    let socks5 = url.replacen("socks4://", "socks5h://", 1);
    optimistic_get(proxy(&socks5), "socks5", "optimistic SOCKS5 through Dante").await;
    optimistic_get(
        proxy(&socks5).with_socks_pipelining(true),
        "socks5",
        "optimistic, pipelined SOCKS5 through Dante",
    )
    .await;
}

/// microsocks reads the SOCKS5 request with one `recv` and drops what came with it: the
/// `ClientHello` is lost, the TLS handshake times out, and the error says why.
#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn microsocks_drops_optimistic_data_and_the_error_says_so() {
    let url = proxy_url!("SOCKS5_URL");
    for url in [
        socks5h(&url),
        with_credentials(&proxy_url!("SOCKS5_AUTH_URL")),
    ] {
        let origin = TestOrigin::start().await.unwrap();
        let stack = ServiceBuilder::new()
            .layer(AlpnDispatchLayer::<Body>::new())
            .layer(
                TlsLayer::new(client_config()).with_handshake_timeout(Some(Duration::from_secs(1))),
            )
            .layer(ProxyConnectLayer::new(
                proxy(&url).with_optimistic_data(true),
            ))
            .service(HttpConnector::new());
        let started = Instant::now();
        let err = bounded(stack.oneshot(origin.https_url().parse().unwrap()))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert_eq!(err.phase(), Some(tower_tunnel::Phase::Tls), "{err}");
        assert!(err.to_string().contains("with_optimistic_data"), "{err}");
        // Without it, the same server carries the tunnel.
        tunnel_and_get(proxy(&url), "SOCKS5 through microsocks").await;
    }
}

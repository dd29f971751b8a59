//! The connection-bound schemes against the interop lab's real servers
//! (`.ci/interop/setup.sh`): each test drives this module's own pieces
//! (scheme choice, NTLM messages, Negotiate tokens, the refusal's body read
//! to its end) through a real squid, on one connection, as the route stage
//! will. Each is `#[ignore]`d as needing the lab (`.ci/run` runs them with
//! `--ignored`); run so, a missing variable or server is a failure.

use std::env;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::auth::{self, Scheme, Schemes};
use super::http1::{self, Answer, MAX_REFUSAL_BODY};
use super::ntlm;

const TIMEOUT: Duration = Duration::from_secs(20);

/// The value of `name`. The tests are `#[ignore]`d, so this runs only
/// when asked for: without the lab it fails, saying what to do.
fn lab(name: &str) -> String {
    assert!(
        matches!(env::var("TOWER_TUNNEL_INTEROP").as_deref(), Ok(v) if !v.is_empty() && v != "0"),
        "this test needs the interop lab: run .ci/interop/setup.sh, \
         `source $INTEROP_DIR/ports.env`, then `cargo test --all-features --lib lab_ -- --ignored`"
    );
    match env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("TOWER_TUNNEL_INTEROP is set but {name} is not: source $INTEROP_DIR/ports.env"),
    }
}

/// `host:port` of an `http://host:port[/]` URL.
fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

fn connect_request(target: &str, authorization: Option<&http::HeaderValue>) -> Vec<u8> {
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(value) = authorization {
        req.extend_from_slice(b"Proxy-Authorization: ");
        req.extend_from_slice(value.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}

async fn dial(proxy_url: &str) -> TokioIo<TcpStream> {
    let stream = TcpStream::connect(authority(proxy_url))
        .await
        .unwrap_or_else(|e| panic!("cannot reach the lab's proxy at {proxy_url}: {e}"));
    TokioIo::new(stream)
}

/// Sends `CONNECT` and returns the answer.
async fn exchange(
    io: &mut TokioIo<TcpStream>,
    target: &str,
    authorization: Option<&http::HeaderValue>,
) -> Answer {
    let req = connect_request(target, authorization);
    tokio::time::timeout(TIMEOUT, http1::exchange_answer(io, &req, 16 * 1024))
        .await
        .expect("the proxy answers in time")
        .expect("the proxy answers CONNECT")
}

/// A `GET /` through the open tunnel reaches the lab's origin.
async fn get_through(mut io: TokioIo<TcpStream>, tunnel_bytes: &[u8], target: &str) {
    assert!(tunnel_bytes.is_empty(), "the origin spoke first");
    let stream = io.inner_mut();
    let req = format!("GET / HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .expect("the origin answers in time")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    assert!(text.contains("tower-tunnel interop origin"), "{text}");
}

/// Waits for `needle` in the lab server's `access.log`.
async fn assert_logged(server: &str, needle: &str) {
    let path = std::path::Path::new(&env::var("INTEROP_DIR").expect("INTEROP_DIR"))
        .join(server)
        .join("access.log");
    for _ in 0..100 {
        if std::fs::read_to_string(&path).is_ok_and(|log| log.contains(needle)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never logged {needle:?}", path.display());
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn lab_ntlm_handshake_on_one_connection() {
    let (proxy, origin) = (lab("SQUID_NTLM_URL"), lab("ORIGIN_URL"));
    let user = format!(
        "{}\\{}",
        lab("INTEROP_NTLM_DOMAIN"),
        lab("INTEROP_PROXY_USER")
    );
    let creds = ntlm::NtlmCredentials::parse(&user, &lab("INTEROP_PROXY_PASS"));
    let target = authority(&origin);
    let mut io = dial(&proxy).await;

    // 1. No credentials: a 407 offering NTLM, read to its end.
    let Answer::Refused(r) = exchange(&mut io, &target, None).await else {
        panic!("squid-ntlm let a CONNECT through without credentials");
    };
    let challenges = auth::challenges(r.response.headers());
    assert_eq!(auth::choose(&challenges, Schemes::ALL), Some(Scheme::Ntlm));
    let drained = http1::read_refusal_body(&mut io, &r.response, &r.buf[r.pos..], MAX_REFUSAL_BODY)
        .await
        .unwrap();
    assert!(drained.leftover.is_empty() && !drained.close, "{drained:?}");

    // 2. NEGOTIATE_MESSAGE on the same connection: a 407 with the challenge.
    let Answer::Refused(r) = exchange(&mut io, &target, Some(&ntlm::negotiate_header())).await
    else {
        panic!("squid-ntlm opened the tunnel after a NEGOTIATE_MESSAGE");
    };
    let challenge =
        ntlm::Challenge::from_challenges(&auth::challenges(r.response.headers())).unwrap();
    let drained = http1::read_refusal_body(&mut io, &r.response, &r.buf[r.pos..], MAX_REFUSAL_BODY)
        .await
        .unwrap();
    assert!(drained.leftover.is_empty() && !drained.close, "{drained:?}");

    // 3. AUTHENTICATE_MESSAGE, still on the same connection: the tunnel.
    let authorization = ntlm::authenticate_header(&challenge, &creds).unwrap();
    let Answer::Established(e) = exchange(&mut io, &target, Some(&authorization)).await else {
        panic!("squid-ntlm refused the AUTHENTICATE_MESSAGE");
    };
    get_through(io, &e.rest, &target).await;
    // ntlm_fake_auth logs `DOMAIN\\aladdin` (escaped); its reading of
    // Unicode names can add a stray character (it does to curl's), so the
    // user name alone is matched.
    assert_logged("squid-ntlm", &lab("INTEROP_PROXY_USER")).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn lab_digest_only_is_chosen_over_basic() {
    let (proxy, origin) = (lab("SQUID_DIGEST_ONLY_URL"), lab("ORIGIN_URL"));
    let mut io = dial(&proxy).await;
    let Answer::Refused(r) = exchange(&mut io, &authority(&origin), None).await else {
        panic!("squid-digest-only let a CONNECT through without credentials");
    };
    let challenges = auth::challenges(r.response.headers());
    assert_eq!(
        auth::choose(&challenges, Schemes::ALL),
        Some(Scheme::Digest)
    );
    assert_eq!(auth::choose(&challenges, Scheme::Basic.into()), None);
}

#[cfg(all(feature = "negotiate", unix))]
#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn lab_negotiate_with_the_ticket_cache() {
    use super::negotiate;

    let (proxy, origin) = (lab("SQUID_NEGOTIATE_URL"), lab("ORIGIN_URL"));
    // KRB5_CONFIG and KRB5CCNAME come from ports.env: the lab's realm and
    // the test user's tickets, no password.
    let principal = lab("INTEROP_KRB5_PRINCIPAL");
    let target = authority(&origin);
    let mut io = dial(&proxy).await;
    let Answer::Refused(r) = exchange(&mut io, &target, None).await else {
        panic!("squid-negotiate let a CONNECT through without credentials");
    };
    let challenges = auth::challenges(r.response.headers());
    assert_eq!(
        auth::choose(&challenges, Schemes::ALL),
        Some(Scheme::Negotiate)
    );
    http1::read_refusal_body(&mut io, &r.response, &r.buf[r.pos..], MAX_REFUSAL_BODY)
        .await
        .unwrap();

    // The proxy is named as the URL names it: "localhost".
    let host = authority(&proxy);
    let host = host.rsplit_once(':').unwrap().0.to_owned();
    // GSSAPI may talk to the KDC: off the async threads.
    let (ctx, token) = tokio::task::spawn_blocking(move || {
        let mut ctx = negotiate::NegotiateContext::new(&host).unwrap();
        let token = ctx.step(None);
        (ctx, token)
    })
    .await
    .unwrap();
    let token = token.unwrap().expect("a first token");
    assert!(!format!("{ctx:?}").contains(&format!("{:?}", &token[..8])));
    let Answer::Established(e) = exchange(&mut io, &target, Some(&negotiate::header(&token))).await
    else {
        panic!("squid-negotiate refused the token");
    };
    get_through(io, &e.rest, &target).await;
    assert_logged("squid-negotiate", &principal).await;
}

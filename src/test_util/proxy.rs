//! [`TestProxy`]: an in-process HTTP proxy (CONNECT and forward) with injectable faults.

use std::fmt::{self, Write as _};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONNECTION, HOST, PROXY_AUTHORIZATION};
use http::{HeaderMap, StatusCode, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::server::{self, AbortOnDrop, ProxiedGuard};

/// Largest request head the proxy reads before answering `400 Bad Request`.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields the proxy accepts in one request head.
const MAX_HEADERS: usize = 100;
/// How long a closing connection waits for the peer to close its side.
const LINGER: Duration = Duration::from_secs(5);
/// Pause between the bytes of [`Fault::SlowDrip`].
const DRIP_INTERVAL: Duration = Duration::from_millis(500);
/// The realm in the `Proxy-Authenticate` challenge.
const REALM: &str = "tower-tunnel-test";

/// A request head received by a [`TestProxy`], as sent by the client.
///
/// `Proxy-Authorization` and `Authorization` values are marked sensitive, so `Debug`
/// output does not show them; read them with [`HeaderValue::to_str`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The request method, such as `CONNECT` or `GET`.
    pub method: String,
    /// The request-target as sent: `localhost:4433` for CONNECT, `http://x/y` when forwarding.
    pub target: String,
    /// The header fields, in the order received.
    pub headers: HeaderMap,
}

/// A misbehaviour a [`TestProxy`] shows every CONNECT request instead of a normal answer.
///
/// When [basic auth](TestProxyBuilder::basic_auth) is required, a request without valid
/// credentials still gets the `407` challenge; the fault answers authorized requests.
/// Faults apply to CONNECT only, except [`Fault::CloseBeforeRead`], which happens before any
/// request is read and so applies to every connection. Faults that "tunnel" dial the target
/// first like a normal CONNECT (answering `502` if that fails) and relay bytes afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status code, header fields and body, then close.
    ///
    /// `Content-Length` is added unless the headers set it or `Transfer-Encoding`.
    Status(u16, Vec<(String, String)>, Vec<u8>),
    /// Answer with bytes that are not HTTP (an SSH banner), then close.
    Garbage,
    /// Answer with a TLS `handshake_failure` alert record, as a TLS server would, then close.
    TlsAlert,
    /// Close each connection as soon as it is accepted, before reading anything; the client
    /// may see either an end of stream or a reset.
    CloseBeforeRead,
    /// Read the request head, then close without answering.
    CloseAfterRequest,
    /// Send `HTTP/1.1 20`, then close.
    TruncatedStatusLine,
    /// Send a status line and a header field but no blank line, then close.
    NoFinalBlankLine,
    /// Read the request and never answer, keeping the socket open until the proxy is dropped.
    Silence,
    /// Send `HTTP/1.1 200 OK\r\n\r\n` one byte every 500 ms, then tunnel.
    SlowDrip,
    /// Send `HTTP/1.1 200 OK` and then header fields forever, until the peer goes away.
    EndlessHeaders,
    /// Answer `HTTP/1.0 200 Connection established`, then tunnel.
    Http10Ok,
    /// Send `100 Continue`, then a normal `200`, then tunnel.
    ContinueThenOk,
    /// Answer `200 OK` with `Content-Length: 5` but send no body, then tunnel.
    ///
    /// RFC 9110, 9.3.6: a client ignores `Content-Length` in a 2xx answer to CONNECT, so the
    /// first bytes after the head already belong to the target.
    OkWithBody,
    /// Answer `HTTP/9.9 200 OK`, then close.
    BadVersion,
    /// Answer `200 OK` with bare `\n` line endings and a `Via` field, then tunnel.
    BareLf,
    /// Send `HTTP/1.1 200 OK\r\n\r\n` followed by these bytes in a single write, then tunnel.
    ///
    /// The client sees the bytes as the first bytes from the target, arriving in the same
    /// read as the answer.
    OkCoalescedWith(Vec<u8>),
    /// Answer `101 Switching Protocols`, then close.
    SwitchingProtocols,
    /// Answer with this 2xx status (`204 No Content`, `299`) and no header fields, then
    /// tunnel.
    Status2xx(u16),
}

/// An in-process HTTP proxy on `127.0.0.1`, for tests.
///
/// It answers CONNECT by opening a tunnel and forwards absolute-form requests
/// (`GET http://127.0.0.1:8080/ HTTP/1.1`), one request per connection. It only dials
/// loopback targets (`127.0.0.0/8`, `::1`, `localhost`) and answers `403` for any other.
/// It records every request head and counts connections. It stops when dropped: the
/// listener closes and every connection, tunnels included, is aborted.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tower_tunnel::test_util::{TestOrigin, TestProxy};
///
/// let origin = TestOrigin::start().await?;
/// let proxy = TestProxy::start().await?;
///
/// let mut stream = tokio::net::TcpStream::connect(proxy.addr()).await?;
/// let target = origin.authority();
/// let connect = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
/// stream.write_all(connect.as_bytes()).await?;
/// let mut answer = [0; 39];
/// stream.read_exact(&mut answer).await?;
/// assert_eq!(&answer[..], b"HTTP/1.1 200 Connection established\r\n\r\n");
/// assert_eq!(proxy.requests()[0].method, "CONNECT");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TestProxy {
    addr: SocketAddr,
    state: Arc<State>,
    _accept: AbortOnDrop,
}

impl TestProxy {
    /// Starts a plain CONNECT and forward proxy with no authentication and no fault.
    ///
    /// # Errors
    ///
    /// Fails if no loopback port can be bound.
    pub async fn start() -> io::Result<TestProxy> {
        Self::builder().start().await
    }

    /// Returns a builder for a proxy that requires credentials or misbehaves.
    pub fn builder() -> TestProxyBuilder {
        TestProxyBuilder::default()
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request head received so far, in order, including rejected ones.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many TCP connections the proxy has accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

/// Configures a [`TestProxy`]; made by [`TestProxy::builder`].
#[derive(Debug, Default)]
pub struct TestProxyBuilder {
    credentials: Option<Credentials>,
    fault: Option<Fault>,
}

impl TestProxyBuilder {
    /// Requires `Proxy-Authorization: Basic` with these credentials.
    ///
    /// Requests without them get `407 Proxy Authentication Required` with
    /// `Proxy-Authenticate: Basic realm="tower-tunnel-test"`, and the connection is closed.
    pub fn basic_auth(mut self, user: &str, pass: &str) -> Self {
        self.credentials = Some(Credentials {
            user: user.to_owned(),
            pass: pass.to_owned(),
        });
        self
    }

    /// Answers every CONNECT with `fault` instead of a normal answer.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails if no loopback port can be bound.
    pub async fn start(self) -> io::Result<TestProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            credentials: self.credentials,
            fault: self.fault,
            requests: Mutex::default(),
            connections: AtomicUsize::new(0),
        });
        let shared = Arc::clone(&state);
        let accept = server::spawn_accept_loop(listener, move |stream, _peer| {
            shared.connections.fetch_add(1, Ordering::SeqCst);
            handle(stream, Arc::clone(&shared))
        });
        Ok(TestProxy {
            addr,
            state,
            _accept: accept,
        })
    }
}

struct Credentials {
    user: String,
    pass: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("pass", &"<redacted>")
            .finish()
    }
}

#[derive(Debug)]
struct State {
    credentials: Option<Credentials>,
    fault: Option<Fault>,
    requests: Mutex<Vec<RecordedRequest>>,
    connections: AtomicUsize,
}

impl State {
    fn record(&self, request: RecordedRequest) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
    }

    fn is_authorized(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.credentials else {
            return true;
        };
        headers
            .get_all(PROXY_AUTHORIZATION)
            .iter()
            .filter_map(|value| basic_credentials(value.as_bytes()))
            .any(|(user, pass)| user == expected.user && pass == expected.pass)
    }
}

/// Decodes `Basic <base64(user:pass)>`; the scheme name is case-insensitive (RFC 9110, 11.1).
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(token.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// A parsed request head and the bytes the client sent after it.
struct Head {
    request: RecordedRequest,
    /// Header fields with their raw values, in order, for rewriting a forwarded request.
    fields: Vec<(HeaderName, Vec<u8>)>,
    /// The minor HTTP version: `0` or `1`.
    version: u8,
    rest: Vec<u8>,
}

enum ReadHead {
    Complete(Head),
    /// Not HTTP, too large, or too many header fields.
    Invalid,
    /// The client closed or failed before sending a whole head.
    Closed,
}

async fn handle(mut client: TcpStream, state: Arc<State>) {
    if state.fault == Some(Fault::CloseBeforeRead) {
        return;
    }
    let head = match read_head(&mut client).await {
        ReadHead::Complete(head) => head,
        ReadHead::Invalid => return reject(client, StatusCode::BAD_REQUEST).await,
        ReadHead::Closed => return,
    };
    state.record(head.request.clone());
    if !state.is_authorized(&head.request.headers) {
        let challenge = format!("Proxy-Authenticate: Basic realm=\"{REALM}\"\r\n");
        let answer = response(StatusCode::PROXY_AUTHENTICATION_REQUIRED, &challenge, b"");
        return answer_and_close(client, &answer).await;
    }
    if head.request.method == "CONNECT" {
        connect(client, head, state.fault.as_ref()).await;
    } else {
        forward(client, head).await;
    }
}

async fn read_head(stream: &mut TcpStream) -> ReadHead {
    let mut buf = vec![0; MAX_HEAD_BYTES];
    let mut filled = 0;
    loop {
        match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return ReadHead::Closed,
            Ok(n) => filled += n,
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(len)) => {
                return match head_from(&request, buf[len..filled].to_vec()) {
                    Some(head) => ReadHead::Complete(head),
                    None => ReadHead::Invalid,
                };
            }
            Ok(httparse::Status::Partial) if filled < buf.len() => {}
            Ok(httparse::Status::Partial) | Err(_) => return ReadHead::Invalid,
        }
    }
}

fn head_from(request: &httparse::Request<'_, '_>, rest: Vec<u8>) -> Option<Head> {
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    let mut fields = Vec::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes()).ok()?;
        let mut value = HeaderValue::from_bytes(field.value).ok()?;
        if name == PROXY_AUTHORIZATION || name == AUTHORIZATION {
            value.set_sensitive(true);
        }
        headers.append(name.clone(), value);
        fields.push((name, field.value.to_vec()));
    }
    Some(Head {
        request: RecordedRequest {
            method: request.method?.to_owned(),
            target: request.path?.to_owned(),
            headers,
        },
        fields,
        version: request.version?,
        rest,
    })
}

/// Where a request asked to go; only loopback hosts are allowed.
struct Target {
    addrs: Vec<IpAddr>,
    port: u16,
}

enum BadTarget {
    Malformed,
    NotLoopback,
}

impl From<BadTarget> for StatusCode {
    fn from(bad: BadTarget) -> Self {
        match bad {
            BadTarget::Malformed => StatusCode::BAD_REQUEST,
            BadTarget::NotLoopback => StatusCode::FORBIDDEN,
        }
    }
}

impl Target {
    /// Parses a CONNECT request-target in authority-form, `host:port` or `[v6]:port`.
    fn from_authority(authority: &str) -> Result<Self, BadTarget> {
        let (host, port) = authority.rsplit_once(':').ok_or(BadTarget::Malformed)?;
        let port = port.parse().map_err(|_| BadTarget::Malformed)?;
        Self::new(host, port)
    }

    fn new(host: &str, port: u16) -> Result<Self, BadTarget> {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(BadTarget::Malformed);
        }
        let addrs = if host.eq_ignore_ascii_case("localhost") {
            // Resolved here, not through the system resolver: fixtures bind 127.0.0.1.
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
        } else {
            match host.parse::<IpAddr>() {
                Ok(ip) if ip.is_loopback() => vec![ip],
                _ => return Err(BadTarget::NotLoopback),
            }
        };
        Ok(Target { addrs, port })
    }

    /// Connects to the first address that accepts, registering the socket as proxied.
    async fn dial(&self) -> io::Result<(TcpStream, ProxiedGuard)> {
        let mut last_error = io::Error::from(io::ErrorKind::AddrNotAvailable);
        for ip in &self.addrs {
            match TcpStream::connect((*ip, self.port)).await {
                Ok(stream) => {
                    // Registered before the client hears back, and so before it can send
                    // anything the target would see.
                    let guard = server::register_proxied(stream.local_addr()?, stream.peer_addr()?);
                    let _ = stream.set_nodelay(true);
                    return Ok((stream, guard));
                }
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }
}

async fn connect(client: TcpStream, head: Head, fault: Option<&Fault>) {
    let target = match Target::from_authority(&head.request.target) {
        Ok(target) => target,
        Err(bad) => return reject(client, bad.into()).await,
    };
    let Some(fault) = fault else {
        return tunnel(
            client,
            &target,
            head.rest,
            Answer::once(b"HTTP/1.1 200 Connection established\r\n\r\n"),
        )
        .await;
    };
    match fault {
        Fault::Status(code, fields, body) => {
            answer_and_close(client, &status_fault(*code, fields, body)).await;
        }
        Fault::Garbage => answer_and_close(client, b"SSH-2.0-OpenSSH_9.6\r\n").await,
        // A fatal handshake_failure alert: type 21, TLS 1.2, length 2, level 2, code 40.
        Fault::TlsAlert => answer_and_close(client, &[0x15, 3, 3, 0, 2, 2, 40]).await,
        Fault::CloseBeforeRead | Fault::CloseAfterRequest => close(client).await,
        Fault::TruncatedStatusLine => answer_and_close(client, b"HTTP/1.1 20").await,
        Fault::NoFinalBlankLine => answer_and_close(client, b"HTTP/1.1 200 OK\r\nX: y\r\n").await,
        Fault::Silence => silence(client).await,
        Fault::SlowDrip => {
            let writes = b"HTTP/1.1 200 OK\r\n\r\n"
                .iter()
                .map(|b| vec![*b])
                .collect();
            tunnel(
                client,
                &target,
                head.rest,
                Answer {
                    writes,
                    pause: DRIP_INTERVAL,
                },
            )
            .await;
        }
        Fault::EndlessHeaders => endless_headers(client).await,
        Fault::Http10Ok => {
            tunnel(
                client,
                &target,
                head.rest,
                Answer::once(b"HTTP/1.0 200 Connection established\r\n\r\n"),
            )
            .await;
        }
        Fault::ContinueThenOk => {
            let writes = vec![
                b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
                b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec(),
            ];
            tunnel(
                client,
                &target,
                head.rest,
                Answer {
                    writes,
                    pause: Duration::ZERO,
                },
            )
            .await;
        }
        Fault::OkWithBody => {
            tunnel(
                client,
                &target,
                head.rest,
                Answer::once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            )
            .await;
        }
        Fault::BadVersion => answer_and_close(client, b"HTTP/9.9 200 OK\r\n\r\n").await,
        Fault::BareLf => {
            tunnel(
                client,
                &target,
                head.rest,
                Answer::once(b"HTTP/1.1 200 OK\nVia: test\n\n"),
            )
            .await
        }
        Fault::OkCoalescedWith(preamble) => {
            let mut answer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
            answer.extend_from_slice(preamble);
            tunnel(client, &target, head.rest, Answer::once(&answer)).await;
        }
        Fault::SwitchingProtocols => {
            answer_and_close(client, b"HTTP/1.1 101 Switching Protocols\r\n\r\n").await;
        }
        Fault::Status2xx(code) => {
            let answer = format!("HTTP/1.1 {code} {}\r\n\r\n", reason(*code));
            tunnel(client, &target, head.rest, Answer::once(answer.as_bytes())).await;
        }
    }
}

/// How a tunnelling CONNECT answer is written: each element in its own write, with a pause
/// between writes.
struct Answer {
    writes: Vec<Vec<u8>>,
    pause: Duration,
}

impl Answer {
    fn once(bytes: &[u8]) -> Self {
        Answer {
            writes: vec![bytes.to_vec()],
            pause: Duration::ZERO,
        }
    }
}

/// Dials `target` (answering `502` if that fails), writes `answer`, then relays bytes.
async fn tunnel(mut client: TcpStream, target: &Target, rest: Vec<u8>, answer: Answer) {
    let (upstream, _registration) = match target.dial().await {
        Ok(dialed) => dialed,
        Err(_) => return reject(client, StatusCode::BAD_GATEWAY).await,
    };
    for (i, bytes) in answer.writes.iter().enumerate() {
        if i > 0 && !answer.pause.is_zero() {
            tokio::time::sleep(answer.pause).await;
        }
        if client.write_all(bytes).await.is_err() {
            // The client left mid-answer: the target still sees the proxy close.
            return close(upstream).await;
        }
    }
    relay(client, upstream, &rest).await;
}

/// Relays bytes both ways until both sides are done, starting with `rest`: what the client
/// sent after its request head, which belongs to the target.
///
/// Closes `upstream` gracefully before returning, while the caller still holds the
/// [`ProxiedGuard`]: the target classifies a connection when its first byte or its end
/// arrives, so the registration must outlive both, or a tunnel that carried nothing (the
/// client gave up mid-answer, or reset) would be counted as direct.
async fn relay(mut client: TcpStream, mut upstream: TcpStream, rest: &[u8]) {
    if upstream.write_all(rest).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
    drop(client);
    close(upstream).await;
}

/// Forwards an absolute-form request (`GET http://127.0.0.1:8080/x HTTP/1.1`) to its
/// origin in origin-form, then relays the rest of the exchange as bytes. The request gets
/// `Connection: close`, so the origin closes after one response.
async fn forward(client: TcpStream, head: Head) {
    let Ok(uri) = head.request.target.parse::<Uri>() else {
        return reject(client, StatusCode::BAD_REQUEST).await;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        // Origin-form or asterisk-form: a request for the proxy itself.
        return reject(client, StatusCode::BAD_REQUEST).await;
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return reject(client, StatusCode::NOT_IMPLEMENTED).await;
    }
    let target = match Target::new(authority.host(), authority.port_u16().unwrap_or(80)) {
        Ok(target) => target,
        Err(bad) => return reject(client, bad.into()).await,
    };
    let (mut upstream, _registration) = match target.dial().await {
        Ok(dialed) => dialed,
        Err(_) => return reject(client, StatusCode::BAD_GATEWAY).await,
    };
    let request = origin_form(&head, &uri, authority.as_str());
    if upstream.write_all(&request).await.is_ok() {
        relay(client, upstream, &head.rest).await;
    }
}

/// Header fields that concern one hop only (RFC 9110, 7.6.1), plus the proxy's credentials.
/// `Transfer-Encoding` stays: the body is relayed as sent, chunked or not.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Rewrites a forwarded request head in origin-form, without hop-by-hop fields.
fn origin_form(head: &Head, uri: &Uri, authority: &str) -> Vec<u8> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = format!(
        "{} {path} HTTP/1.{}\r\nHost: {authority}\r\n",
        head.request.method, head.version
    )
    .into_bytes();
    // The fields named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = head
        .fields
        .iter()
        .filter(|(name, _)| name == CONNECTION)
        .flat_map(|(_, value)| value.split(|b| *b == b','))
        .filter_map(|token| HeaderName::from_bytes(token.trim_ascii()).ok())
        .collect();
    for (name, value) in &head.fields {
        // RFC 9112, 3.2.2: the Host of a forwarded request comes from the target URI.
        if name == HOST || HOP_BY_HOP.contains(&name.as_str()) || named.contains(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// Reads and discards until the client goes away, then holds the socket until the proxy is
/// dropped: the client never gets an answer.
async fn silence(mut client: TcpStream) {
    let mut sink = [0; 4096];
    while let Ok(1..) = client.read(&mut sink).await {}
    std::future::pending::<()>().await;
}

/// Sends a status line and then header fields until a write fails. Each write waits for
/// the socket to accept it, so nothing piles up here when the client stops reading.
async fn endless_headers(mut client: TcpStream) {
    if client.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
        return;
    }
    const FILLER: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    let mut line = String::with_capacity(128);
    for n in 0_u64.. {
        line.clear();
        let _ = write!(line, "X-Filler-{n}: {FILLER}\r\n");
        if client.write_all(line.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn reason(code: u16) -> &'static str {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("Unknown")
}

fn status_fault(code: u16, fields: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {code} {}\r\n", reason(code));
    let mut framed = false;
    for (name, value) in fields {
        framed |= name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding");
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if !framed {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    let mut answer = head.into_bytes();
    answer.extend_from_slice(body);
    answer
}

/// A complete answer with `Connection: close`; `fields` is zero or more `Name: value\r\n`.
fn response(status: StatusCode, fields: &str, body: &[u8]) -> Vec<u8> {
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\n{fields}Connection: close\r\nContent-Length: {}\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("Unknown"),
        body.len(),
    )
    .into_bytes();
    answer.extend_from_slice(body);
    answer
}

async fn reject(client: TcpStream, status: StatusCode) {
    answer_and_close(client, &response(status, "", b"")).await;
}

async fn answer_and_close(mut client: TcpStream, answer: &[u8]) {
    if client.write_all(answer).await.is_ok() {
        close(client).await;
    }
}

/// Closes gracefully: sends FIN, then reads until the client closes too (or [`LINGER`]
/// passes). Dropping a socket with unread input makes the kernel send a reset, which can
/// destroy the answer before the client reads it.
async fn close(mut client: TcpStream) {
    let _ = client.shutdown().await;
    let mut sink = [0; 4096];
    let drain = async { while let Ok(1..) = client.read(&mut sink).await {} };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

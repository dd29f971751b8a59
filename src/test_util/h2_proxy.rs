//! [`TestH2Proxy`]: an `https://` CONNECT proxy speaking HTTP/2 (RFC 9113 §8.5) and
//! HTTP/1.1, on loopback.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::server::{self, AbortOnDrop};

/// An `https://` proxy on `127.0.0.1` that takes `CONNECT` over HTTP/2 (ALPN `h2`) and
/// over HTTP/1.1, with the test certificate (valid for `localhost` and `127.0.0.1`).
///
/// It counts TLS connections and `CONNECT` streams, can refuse one target (`407`, or any
/// status with headers of your choice), records the tunnel bytes that arrived on each
/// HTTP/2 `CONNECT` stream before its answer went out ([`TestH2Proxy::streams_log`]),
/// advertises a chosen `SETTINGS_MAX_CONCURRENT_STREAMS`, and can drop every connection
/// at once or send each a graceful `GOAWAY`, so tests can watch a client share one
/// connection among many tunnels, open another when one is full, and recover when one
/// goes. It only dials loopback targets, and stops when dropped.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_tunnel::test_util::TestH2Proxy;
///
/// let proxy = TestH2Proxy::start().await?;
/// assert!(proxy.url().starts_with("https://127.0.0.1:"));
/// assert_eq!(proxy.connections(), 0);
/// # Ok(())
/// # }
/// ```
pub struct TestH2Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    _accept: AbortOnDrop,
}

struct State {
    alpn: Vec<Vec<u8>>,
    refuse: Option<Refusal>,
    hold: Option<Duration>,
    log: Mutex<Vec<H2StreamLog>>,
    max_streams: u32,
    connections: AtomicUsize,
    h2_connections: AtomicUsize,
    streams: AtomicUsize,
    targets: Mutex<Vec<String>>,
    kill: watch::Sender<u64>,
    drain: watch::Sender<u64>,
}

impl fmt::Debug for TestH2Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestH2Proxy")
            .field("addr", &self.addr)
            .field("connections", &self.connections())
            .field("streams", &self.streams())
            .finish()
    }
}

impl TestH2Proxy {
    /// Starts a proxy offering ALPN `h2` and `http/1.1`.
    ///
    /// # Errors
    ///
    /// Fails if no loopback port can be bound.
    pub async fn start() -> io::Result<TestH2Proxy> {
        Self::builder().start().await
    }

    /// Returns a builder.
    pub fn builder() -> TestH2ProxyBuilder {
        TestH2ProxyBuilder {
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            refuse: None,
            hold: None,
            max_streams: 200,
        }
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// How many TLS connections the proxy has accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// How many of them spoke HTTP/2.
    pub fn h2_connections(&self) -> usize {
        self.state.h2_connections.load(Ordering::SeqCst)
    }

    /// How many `CONNECT` requests (HTTP/2 streams, or HTTP/1.1 requests) arrived.
    pub fn streams(&self) -> usize {
        self.state.streams.load(Ordering::SeqCst)
    }

    /// The `CONNECT` targets, in the order they arrived.
    pub fn targets(&self) -> Vec<String> {
        self.state
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What arrived on each HTTP/2 `CONNECT` stream before the proxy sent its answer, in
    /// the order the streams arrived (every connection's).
    ///
    /// A client that sends the tunnel's first bytes right behind its `CONNECT`
    /// (optimistic data) shows them here; one that waits for the answer shows none.
    /// [`TestH2ProxyBuilder::hold_answers_for_data`] makes the order certain.
    pub fn streams_log(&self) -> Vec<H2StreamLog> {
        lock(&self.state.log).clone()
    }

    /// Drops every open connection and the tunnels on them, as a proxy restart would.
    /// New connections are accepted as before.
    pub fn drop_connections(&self) {
        self.state.kill.send_modify(|n| *n += 1);
    }

    /// Shuts every open HTTP/2 connection down gracefully, as a proxy reloading its
    /// configuration would: `GOAWAY`, streams already taken run to their end, and each
    /// connection closes when its last stream does. New connections are accepted as
    /// before.
    pub fn go_away(&self) {
        self.state.drain.send_modify(|n| *n += 1);
    }
}

/// Configures a [`TestH2Proxy`]; made by [`TestH2Proxy::builder`].
#[derive(Debug)]
pub struct TestH2ProxyBuilder {
    alpn: Vec<Vec<u8>>,
    refuse: Option<Refusal>,
    hold: Option<Duration>,
    max_streams: u32,
}

impl TestH2ProxyBuilder {
    /// The ALPN protocols offered, in preference order (default `h2`, `http/1.1`).
    pub fn alpn(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.alpn = protocols;
        self
    }

    /// Answers `CONNECT` to `authority` (`host:port`) with `407 Proxy Authentication
    /// Required` and `Proxy-Authenticate: Basic realm="tower-tunnel-test"`; every other
    /// target is tunnelled.
    pub fn refuse_with_407(self, authority: &str) -> Self {
        self.refuse_with(
            authority,
            407,
            vec![(
                "Proxy-Authenticate".into(),
                "Basic realm=\"tower-tunnel-test\"".into(),
            )],
        )
    }

    /// Answers `CONNECT` to `authority` (`host:port`) with `status` and `headers` (no
    /// body), and never dials it; every other target is tunnelled.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid status code, or a header name or value is invalid.
    pub fn refuse_with(
        mut self,
        authority: &str,
        status: u16,
        headers: Vec<(String, String)>,
    ) -> Self {
        let status = StatusCode::from_u16(status).expect("a valid status code");
        let headers = headers
            .into_iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::try_from(name).expect("a valid header name"),
                    http::HeaderValue::try_from(value).expect("a valid header value"),
                )
            })
            .collect();
        self.refuse = Some(Refusal {
            authority: authority.to_owned(),
            status,
            headers,
        });
        self
    }

    /// Holds each HTTP/2 `CONNECT` stream's answer until a DATA frame has arrived on the
    /// stream, or for `wait` at most: then [`TestH2Proxy::streams_log`] shows for certain
    /// whether a client sends tunnel bytes before the answer (with `wait` added to every
    /// tunnel of one that does not).
    pub fn hold_answers_for_data(mut self, wait: Duration) -> Self {
        self.hold = Some(wait);
        self
    }

    /// `SETTINGS_MAX_CONCURRENT_STREAMS` (default 200).
    pub fn max_concurrent_streams(mut self, max: u32) -> Self {
        self.max_streams = max;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails if no loopback port can be bound.
    pub async fn start(self) -> io::Result<TestH2Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (kill, _) = watch::channel(0);
        let (drain, _) = watch::channel(0);
        let state = Arc::new(State {
            alpn: self.alpn,
            refuse: self.refuse,
            hold: self.hold,
            log: Mutex::default(),
            max_streams: self.max_streams,
            connections: AtomicUsize::new(0),
            h2_connections: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            targets: Mutex::default(),
            kill,
            drain,
        });
        let acceptor = super::tls_acceptor(state.alpn.clone());
        let shared = Arc::clone(&state);
        let accept = server::spawn_accept_loop(listener, move |tcp, _peer| {
            serve(tcp, acceptor.clone(), Arc::clone(&shared))
        });
        Ok(TestH2Proxy {
            addr,
            state,
            _accept: accept,
        })
    }
}

async fn serve(tcp: TcpStream, acceptor: tokio_rustls::TlsAcceptor, state: Arc<State>) {
    let mut kill = state.kill.subscribe();
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    state.connections.fetch_add(1, Ordering::SeqCst);
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let conn_index = match h2 {
        true => state.h2_connections.fetch_add(1, Ordering::SeqCst),
        false => usize::MAX,
    };
    let io = TokioIo::new(Sniff {
        io: tls,
        conn: conn_index,
        inbound: Frames::new(PREFACE_LEN),
        outbound: Frames::new(0),
        state: h2.then(|| Arc::clone(&state)),
    });
    let svc_state = Arc::clone(&state);
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = hyper::service::service_fn(move |req| {
        let state = Arc::clone(&svc_state);
        // hyper calls the service in the order the streams' HEADERS arrived.
        let nth = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if h2 {
                hold(&state, conn_index, nth).await;
            }
            Ok::<_, Infallible>(connect(req, state).await)
        }
    });
    if h2 {
        let mut drain = state.drain.subscribe();
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .max_concurrent_streams(state.max_streams)
            .serve_connection(io, svc);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = kill.changed() => return,
            _ = drain.changed() => conn.as_mut().graceful_shutdown(),
        }
        tokio::select! {
            _ = conn => {}
            _ = kill.changed() => {}
        }
    } else {
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, svc)
            .with_upgrades();
        tokio::select! {
            _ = conn => {}
            _ = kill.changed() => {}
        }
    }
}

async fn connect(mut req: Request<Incoming>, state: Arc<State>) -> Response<Empty<Bytes>> {
    let status = |code: StatusCode| {
        let mut res = Response::new(Empty::new());
        *res.status_mut() = code;
        res
    };
    if req.method() != Method::CONNECT {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    state.streams.fetch_add(1, Ordering::SeqCst);
    let Some(target) = req.uri().authority().cloned() else {
        return status(StatusCode::BAD_REQUEST);
    };
    state
        .targets
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(target.to_string());
    if let Some(refusal) = state
        .refuse
        .as_ref()
        .filter(|r| r.authority == target.as_str())
    {
        let mut res = status(refusal.status);
        for (name, value) in &refusal.headers {
            res.headers_mut().append(name, value.clone());
        }
        return res;
    }
    let port = target.port_u16().unwrap_or(443);
    let Ok(upstream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    // Small TLS records both ways: without this, Nagle and delayed ACKs add
    // about 40 ms to every tunnel.
    let _ = upstream.set_nodelay(true);
    let guard = match (upstream.local_addr(), upstream.peer_addr()) {
        (Ok(local), Ok(remote)) => Some(server::register_proxied(local, remote)),
        _ => None,
    };
    let mut kill = state.kill.subscribe();
    tokio::spawn(async move {
        let _guard = guard;
        let Ok(upgraded) = hyper::upgrade::on(&mut req).await else {
            return;
        };
        let mut upgraded = TokioIo::new(upgraded);
        let mut upstream = upstream;
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut upgraded, &mut upstream) => {}
            _ = kill.changed() => {}
        }
    });
    status(StatusCode::OK)
}

/// A refusal [`TestH2ProxyBuilder::refuse_with`] set up.
#[derive(Debug)]
struct Refusal {
    authority: String,
    status: StatusCode,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// What [`TestH2Proxy`] saw on one HTTP/2 `CONNECT` stream; see
/// [`TestH2Proxy::streams_log`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct H2StreamLog {
    /// Which HTTP/2 connection, counted from 0 in the order they were accepted.
    pub connection: usize,
    /// The stream's identifier on that connection.
    pub stream: u32,
    /// The tunnel bytes (DATA payloads) that arrived on the stream before the proxy sent
    /// its answer's HEADERS; the first 64 KiB at most.
    pub before_answer: Vec<u8>,
    /// Whether the answer's HEADERS went out.
    pub answered: bool,
}

/// The most bytes kept per stream in [`H2StreamLog::before_answer`].
const MAX_LOGGED: usize = 64 * 1024;
/// The client's connection preface (RFC 9113 §3.4), before its first frame.
const PREFACE_LEN: usize = 24;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits, when the proxy holds answers, until the `nth` stream of connection `conn` has
/// received tunnel bytes, or the hold has passed.
async fn hold(state: &State, conn: usize, nth: usize) {
    let Some(wait) = state.hold else { return };
    let deadline = tokio::time::Instant::now() + wait;
    // Bounded by the deadline.
    while tokio::time::Instant::now() < deadline {
        let ready = lock(&state.log)
            .iter()
            .filter(|l| l.connection == conn)
            .nth(nth)
            .is_some_and(|l| !l.before_answer.is_empty());
        if ready {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A frame boundary or payload bytes, as [`Frames`] finds them.
enum Seen<'a> {
    Frame {
        kind: u8,
        stream: u32,
    },
    Payload {
        kind: u8,
        stream: u32,
        bytes: &'a [u8],
    },
}

/// Finds HTTP/2 frames (RFC 9113 §4.1) in one direction of a connection's bytes, however
/// they are split.
struct Frames {
    skip: usize,
    head: [u8; 9],
    filled: usize,
    remaining: usize,
    current: (u8, u32),
}

impl Frames {
    fn new(skip: usize) -> Self {
        Frames {
            skip,
            head: [0; 9],
            filled: 0,
            remaining: 0,
            current: (0, 0),
        }
    }

    fn feed(&mut self, mut data: &[u8], mut seen: impl FnMut(Seen<'_>)) {
        // Bounded: every turn consumes at least one byte.
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
            } else if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                let (kind, stream) = self.current;
                seen(Seen::Payload {
                    kind,
                    stream,
                    bytes: &data[..n],
                });
                self.remaining -= n;
                data = &data[n..];
            } else {
                let n = (9 - self.filled).min(data.len());
                self.head[self.filled..self.filled + n].copy_from_slice(&data[..n]);
                self.filled += n;
                data = &data[n..];
                if self.filled == 9 {
                    let h = self.head;
                    self.filled = 0;
                    self.remaining = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                    self.current = (h[3], stream);
                    seen(Seen::Frame { kind: h[3], stream });
                }
            }
        }
    }
}

/// A proxy connection's TLS stream, watched: on HTTP/2 connections, the `CONNECT`
/// streams' HEADERS and DATA coming in and the answers' HEADERS going out are logged.
struct Sniff<IO> {
    io: IO,
    conn: usize,
    inbound: Frames,
    outbound: Frames,
    state: Option<Arc<State>>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Sniff<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        std::task::ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let Some(state) = &this.state else {
            return Poll::Ready(Ok(()));
        };
        let conn = this.conn;
        this.inbound.feed(&buf.filled()[before..], |seen| {
            let mut log = lock(&state.log);
            match seen {
                // Trailers are HEADERS too: a stream is logged once.
                Seen::Frame {
                    kind: HEADERS,
                    stream,
                } if !log
                    .iter()
                    .any(|l| l.connection == conn && l.stream == stream) =>
                {
                    log.push(H2StreamLog {
                        connection: conn,
                        stream,
                        before_answer: Vec::new(),
                        answered: false,
                    });
                }
                Seen::Payload {
                    kind: DATA,
                    stream,
                    bytes,
                } => {
                    if let Some(l) = log
                        .iter_mut()
                        .find(|l| l.connection == conn && l.stream == stream && !l.answered)
                    {
                        let n = bytes.len().min(MAX_LOGGED - l.before_answer.len());
                        l.before_answer.extend_from_slice(&bytes[..n]);
                    }
                }
                _ => {}
            }
        });
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Sniff<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let n = std::task::ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        if let Some(state) = &this.state {
            let conn = this.conn;
            this.outbound.feed(&buf[..n], |seen| {
                if let Seen::Frame {
                    kind: HEADERS,
                    stream,
                } = seen
                {
                    if let Some(l) = lock(&state.log)
                        .iter_mut()
                        .find(|l| l.connection == conn && l.stream == stream)
                    {
                        l.answered = true;
                    }
                }
            });
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

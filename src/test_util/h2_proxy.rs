//! [`TestH2Proxy`]: an `https://` CONNECT proxy speaking HTTP/2 (RFC 9113 §8.5) and
//! HTTP/1.1, on loopback.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::server::{self, AbortOnDrop};

/// An `https://` proxy on `127.0.0.1` that takes `CONNECT` over HTTP/2 (ALPN `h2`) and
/// over HTTP/1.1, with the test certificate (valid for `localhost` and `127.0.0.1`).
///
/// It counts TLS connections and `CONNECT` streams, can refuse one target with `407`,
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
    refuse: Option<String>,
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
    refuse: Option<String>,
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
    pub fn refuse_with_407(mut self, authority: &str) -> Self {
        self.refuse = Some(authority.to_owned());
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
    let io = TokioIo::new(tls);
    let svc_state = Arc::clone(&state);
    let svc = hyper::service::service_fn(move |req| {
        let state = Arc::clone(&svc_state);
        async move { Ok::<_, Infallible>(connect(req, state).await) }
    });
    if h2 {
        state.h2_connections.fetch_add(1, Ordering::SeqCst);
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
    if state.refuse.as_deref() == Some(target.as_str()) {
        let mut res = status(StatusCode::PROXY_AUTHENTICATION_REQUIRED);
        res.headers_mut().insert(
            http::header::PROXY_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"tower-tunnel-test\""),
        );
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

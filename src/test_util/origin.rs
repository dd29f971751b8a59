//! [`TestOrigin`]: an HTTPS (or plain HTTP) server that knows whether a proxy carried each
//! connection.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::HandshakeKind;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::certs;
use super::server::{self, AbortOnDrop};

/// The body of every plain `GET`.
pub const HELLO_BODY: &str = "hello from tower-tunnel test origin\n";

/// Largest body `GET /bytes/N` sends: 1 GiB.
const MAX_BYTES: u64 = 1 << 30;
/// Size of each frame of a `GET /bytes/N` body.
const CHUNK: usize = 64 * 1024;
/// Period of the byte pattern of `GET /bytes/N`: a prime, so chunk boundaries don't align.
const PERIOD: usize = 251;

type ResponseBody = BoxBody<Bytes, hyper::Error>;

/// An HTTPS server on `127.0.0.1` for tests.
///
/// Its certificate is signed by the test CA ([`ca_pem`](super::ca_pem)) and is valid for
/// `localhost`, `127.0.0.1` and `::1`. It offers ALPN `h2` and `http/1.1` by default, speaks
/// HTTP/2 when ALPN selected `h2` and HTTP/1.1 otherwise, and counts connections, telling
/// those a [`TestProxy`](super::TestProxy) opened from direct ones. It stops when dropped.
///
/// # Routes
///
/// Every response carries `x-origin-protocol` (the request version: `HTTP/1.1`, `HTTP/2.0`)
/// and `x-origin-via-proxy` (`true` when a `TestProxy` opened the connection).
///
/// - `GET /bytes/N`: `N` bytes (at most 1 GiB), streamed in 64 KiB frames; byte `i` is
///   `(i % 251) as u8`.
/// - `POST /echo`: the request body, streamed back.
/// - any other `GET` or `HEAD`: `200` with the body [`HELLO_BODY`].
/// - anything else: `405 Method Not Allowed`.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use tower_tunnel::test_util::TestOrigin;
///
/// let origin = TestOrigin::builder().alpn(vec![b"http/1.1".to_vec()]).start().await?;
/// assert_eq!(origin.https_url(), format!("https://localhost:{}", origin.addr().port()));
/// assert_eq!(origin.connections(), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TestOrigin {
    addr: SocketAddr,
    tls: bool,
    stats: Arc<Stats>,
    _accept: AbortOnDrop,
}

impl TestOrigin {
    /// Starts an HTTPS origin offering ALPN `h2` and `http/1.1`.
    ///
    /// # Errors
    ///
    /// Fails if no loopback port can be bound.
    pub async fn start() -> io::Result<TestOrigin> {
        Self::builder().start().await
    }

    /// Returns a builder for an origin with other ALPN protocols, or plain HTTP.
    pub fn builder() -> TestOriginBuilder {
        TestOriginBuilder {
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            tls: true,
        }
    }

    /// The address the origin listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The origin's URL: `https://localhost:PORT`, or `http://localhost:PORT` when it
    /// serves [plain HTTP](TestOriginBuilder::plain_http).
    pub fn https_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }

    /// The origin's authority as a client names it, `localhost:PORT`: the CONNECT target.
    pub fn authority(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// The PEM encoding of the CA certificate that signed the origin's certificate.
    pub fn ca_pem(&self) -> String {
        certs::ca_pem()
    }

    /// A rustls client configuration that trusts only the test CA, with no ALPN protocols
    /// set; see [`client_config`](super::client_config).
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        certs::client_config()
    }

    /// How many TCP connections the origin has accepted.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// How many accepted connections did not come from a [`TestProxy`](super::TestProxy).
    ///
    /// A connection is classified when its first byte arrives (or it closes), so a
    /// connection that is open but silent is in neither this count nor
    /// [`proxied_connections`](Self::proxied_connections).
    pub fn direct_connections(&self) -> usize {
        self.stats.direct.load(Ordering::SeqCst)
    }

    /// How many accepted connections a [`TestProxy`](super::TestProxy) opened.
    pub fn proxied_connections(&self) -> usize {
        self.stats.proxied.load(Ordering::SeqCst)
    }

    /// How many TLS handshakes completed.
    pub fn tls_handshakes(&self) -> usize {
        self.stats.tls_handshakes.load(Ordering::SeqCst)
    }

    /// How many completed TLS handshakes resumed an earlier session.
    pub fn resumed_handshakes(&self) -> usize {
        self.stats.resumed_handshakes.load(Ordering::SeqCst)
    }
}

/// Configures a [`TestOrigin`]; made by [`TestOrigin::builder`].
#[derive(Clone, Debug)]
pub struct TestOriginBuilder {
    alpn: Vec<Vec<u8>>,
    tls: bool,
}

impl TestOriginBuilder {
    /// Sets the ALPN protocols the origin accepts, in preference order; an empty list makes
    /// it select none (and speak HTTP/1.1).
    pub fn alpn(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.alpn = protocols;
        self
    }

    /// Serves plain HTTP instead of HTTPS, detecting HTTP/2 by its connection preface
    /// (prior knowledge) and otherwise speaking HTTP/1.1.
    pub fn plain_http(mut self) -> Self {
        self.tls = false;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails if no loopback port can be bound.
    pub async fn start(self) -> io::Result<TestOrigin> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let acceptor = self.tls.then(|| certs::tls_acceptor(self.alpn));
        let stats = Arc::new(Stats::default());
        let shared = Arc::clone(&stats);
        let accept = server::spawn_accept_loop(listener, move |stream, peer| {
            shared.connections.fetch_add(1, Ordering::SeqCst);
            serve(stream, peer, acceptor.clone(), Arc::clone(&shared))
        });
        Ok(TestOrigin {
            addr,
            tls: self.tls,
            stats,
            _accept: accept,
        })
    }
}

#[derive(Debug, Default)]
struct Stats {
    connections: AtomicUsize,
    direct: AtomicUsize,
    proxied: AtomicUsize,
    tls_handshakes: AtomicUsize,
    resumed_handshakes: AtomicUsize,
}

/// Which HTTP versions a connection may speak.
#[derive(Clone, Copy)]
enum Protocols {
    Http1,
    Http2,
    Either,
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    stats: Arc<Stats>,
) {
    // A proxy registers its outbound socket before it answers the CONNECT (or writes the
    // forwarded request), and nothing reaches this socket before that answer, so once the
    // first byte is here the registry knows about this peer.
    let _ = stream.peek(&mut [0; 1]).await;
    let via_proxy = match stream.local_addr() {
        Ok(local) => server::take_proxied(peer, local),
        Err(_) => false,
    };
    let counter = if via_proxy {
        &stats.proxied
    } else {
        &stats.direct
    };
    counter.fetch_add(1, Ordering::SeqCst);

    let Some(acceptor) = acceptor else {
        return serve_http(TokioIo::new(stream), Protocols::Either, via_proxy).await;
    };
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let session = tls.get_ref().1;
    stats.tls_handshakes.fetch_add(1, Ordering::SeqCst);
    if session.handshake_kind() == Some(HandshakeKind::Resumed) {
        stats.resumed_handshakes.fetch_add(1, Ordering::SeqCst);
    }
    let protocols = match session.alpn_protocol() {
        Some(b"h2") => Protocols::Http2,
        _ => Protocols::Http1,
    };
    serve_http(TokioIo::new(tls), protocols, via_proxy).await;
}

async fn serve_http<IO>(io: TokioIo<IO>, protocols: Protocols, via_proxy: bool)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let builder = match protocols {
        Protocols::Http1 => builder.http1_only(),
        Protocols::Http2 => builder.http2_only(),
        Protocols::Either => builder,
    };
    let service =
        service_fn(move |request| async move { Ok::<_, Infallible>(route(request, via_proxy)) });
    // A client that goes away mid-exchange is not the origin's failure.
    let _ = builder.serve_connection(io, service).await;
}

fn route(request: Request<Incoming>, via_proxy: bool) -> Response<ResponseBody> {
    let version = request.version();
    let mut response = match (request.method(), request.uri().path()) {
        (&Method::POST, "/echo") => Response::new(request.into_body().boxed()),
        (&Method::GET | &Method::HEAD, path) => match path.strip_prefix("/bytes/") {
            Some(count) => match count.parse::<u64>() {
                Ok(count) => Response::new(PatternBody::new(count.min(MAX_BYTES)).boxed()),
                Err(_) => status(StatusCode::BAD_REQUEST),
            },
            None => {
                let mut response = Response::new(full(HELLO_BODY));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                response
            }
        },
        _ => {
            let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
            response
        }
    };
    let protocol = match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "unknown",
    };
    let headers = response.headers_mut();
    headers.insert("x-origin-protocol", HeaderValue::from_static(protocol));
    let via_proxy = if via_proxy { "true" } else { "false" };
    headers.insert("x-origin-via-proxy", HeaderValue::from_static(via_proxy));
    response
}

fn full(body: &'static str) -> ResponseBody {
    Full::new(Bytes::from_static(body.as_bytes()))
        .map_err(|never| match never {})
        .boxed()
}

fn status(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(full(""));
    *response.status_mut() = status;
    response
}

/// The body of `GET /bytes/N`: `N` bytes where byte `i` is `(i % 251) as u8`, made of
/// slices of one shared buffer, so a large body costs no allocation per frame.
struct PatternBody {
    offset: u64,
    remaining: u64,
}

impl PatternBody {
    fn new(len: u64) -> Self {
        PatternBody {
            offset: 0,
            remaining: len,
        }
    }

    /// One chunk's worth of the pattern, plus a period so any offset can start a chunk.
    fn pattern() -> &'static Bytes {
        static PATTERN: OnceLock<Bytes> = OnceLock::new();
        PATTERN.get_or_init(|| (0..CHUNK + PERIOD).map(|i| (i % PERIOD) as u8).collect())
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        // Both fit in usize: `len` is at most CHUNK and the remainder is below PERIOD.
        let len = self.remaining.min(CHUNK as u64) as usize;
        let start = (self.offset % PERIOD as u64) as usize;
        let data = Self::pattern().slice(start..start + len);
        self.offset += len as u64;
        self.remaining -= len as u64;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

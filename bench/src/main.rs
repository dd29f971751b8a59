//! Connection setup, throughput, allocations and idle memory of tower-tunnel's stack against
//! a hand-written floor, hyper-util's `Tunnel` + hyper-rustls, and reqwest, in one run.
//!
//! `cargo run --release -p tower-tunnel-bench -- [--n N] [--throughput-mib M] [--idle C] [--quick]`
//!
//! Layout of a run:
//! - The in-process `TestProxy` and `TestOrigin` run in a child process (this binary with
//!   `--serve`, on its own 2-worker tokio runtime), so every allocation and every resident
//!   byte counted in the measuring process belongs to a client.
//! - The clients run on one current-thread tokio runtime in the parent. Setup samples are
//!   taken connection by connection, rotating through every (client, protocol) pair, so
//!   machine drift hits all alike; ratios are to the floor measured in the same run.
//! - Idle memory is measured in a fresh process per (client, protocol) (`--idle-probe`), so
//!   allocator state left by one client cannot hide another's growth.

use std::alloc::{GlobalAlloc, Layout, System};
use std::error::Error as StdError;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{TestH2Proxy, TestOrigin, TestProxy};
use tower_tunnel::{
    AlpnDispatch, AlpnDispatchLayer, Http2Mode, HttpConnection, Proxy, ProxyConnect,
    ProxyConnectLayer, ProxyTls, ProxyTlsLayer, TlsConnect, TlsLayer,
};

type BoxError = Box<dyn StdError + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;
type Body = Empty<Bytes>;

// ---------------------------------------------------------------------------------------
// Counting allocator: every call into the allocator (alloc, alloc_zeroed, realloc) is one
// allocation; bytes allocated minus bytes freed is the live heap.

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);
static FREED_BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        trace_alloc(layout.size());
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(layout.size() as u64, Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        trace_alloc(layout.size());
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(layout.size() as u64, Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREED_BYTES.fetch_add(layout.size() as u64, Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        trace_alloc(new_size);
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(new_size as u64, Relaxed);
        FREED_BYTES.fetch_add(layout.size() as u64, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// Allocation tracing (`--trace-allocs`): a backtrace per allocation, tagged with the phase.
static TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static PHASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static TRACES: std::sync::Mutex<Vec<(usize, usize, std::backtrace::Backtrace)>> =
    std::sync::Mutex::new(Vec::new());
thread_local! {
    static IN_TRACE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn trace_alloc(size: usize) {
    if !TRACE.load(Relaxed) {
        return;
    }
    let _ = IN_TRACE.try_with(|g| {
        if g.get() {
            return;
        }
        g.set(true);
        let bt = std::backtrace::Backtrace::force_capture();
        if let Ok(mut v) = TRACES.lock() {
            v.push((PHASE.load(Relaxed), size, bt));
        }
        g.set(false);
    });
}

/// The first frames of a backtrace that belong to a library, not to std or the allocator.
fn summarize(bt: &std::backtrace::Backtrace) -> String {
    let text = bt.to_string();
    let mut frames = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((_, name)) = line.split_once(": ") else {
            continue;
        };
        if line.starts_with("at ") {
            continue;
        }
        let skip = [
            "std::",
            "core::",
            "alloc::",
            "__rust",
            "<alloc::",
            "<core::",
            "<std::",
            "tower_tunnel_bench::trace_alloc",
            "<tower_tunnel_bench::Counting",
            "__rdl",
            "__rg_",
        ];
        if skip.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let mut name = name.to_string();
        if let Some(i) = name.rfind("::h") {
            if name.len() - i == 19 {
                name.truncate(i);
            }
        }
        frames.push(name);
        if frames.len() == 4 {
            break;
        }
    }
    frames.join("  <-  ")
}

fn allocs() -> u64 {
    ALLOCS.load(Relaxed)
}

fn live_heap() -> i64 {
    ALLOC_BYTES.load(Relaxed) as i64 - FREED_BYTES.load(Relaxed) as i64
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Arguments

#[derive(Clone, Copy, Debug)]
struct Args {
    n: usize,
    mib: usize,
    idle: usize,
    rounds: usize,
    warmup: usize,
    /// The https:// proxy comparison through `TestH2Proxy` instead of the bench's own.
    fixture_h2_proxy: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        n: 500,
        mib: 256,
        idle: 1000,
        rounds: 3,
        warmup: 20,
        fixture_h2_proxy: false,
    };
    let mut it = std::env::args().skip(1);
    let mut n = None;
    let mut mib = None;
    let mut idle = None;
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} takes a positive number"))
        };
        match a.as_str() {
            "--n" => n = Some(num("--n")),
            "--throughput-mib" => mib = Some(num("--throughput-mib")),
            "--idle" => idle = Some(num("--idle")),
            "--rounds" => args.rounds = num("--rounds").max(1),
            "--quick" => {
                args.n = 50;
                args.mib = 32;
                args.idle = 200;
                args.rounds = 1;
                args.warmup = 5;
            }
            "--fixture-h2-proxy" => args.fixture_h2_proxy = true,
            "--bench" => {} // passed by `cargo bench`-style harnesses
            other => panic!(
                "unknown argument {other}; usage: [--n N] [--throughput-mib M] [--idle C] [--rounds R] [--quick] [--fixture-h2-proxy]"
            ),
        }
    }
    args.n = n.unwrap_or(args.n).max(1);
    args.mib = mib.unwrap_or(args.mib).max(1);
    args.idle = idle.unwrap_or(args.idle).max(1);
    args
}

// ---------------------------------------------------------------------------------------
// The fixtures, in a child process

/// Counters of an https:// CONNECT proxy: TLS connections, those that spoke h2, CONNECTs.
#[derive(Default)]
struct H2ProxyCounters {
    connections: AtomicU64,
    h2_connections: AtomicU64,
    streams: AtomicU64,
}

/// The bench's own https:// CONNECT proxy (ALPN h2 and http/1.1), the same as
/// `TestH2Proxy` (same certificate, same hyper server builders, same CONNECT handling)
/// except that its sockets towards the target have `TCP_NODELAY` set, as `TestProxy`'s do.
/// `TestH2Proxy` leaves Nagle on there, and the target's delayed ACK then holds every
/// tunnel's setup for about 40 ms (`--fixture-h2-proxy` shows it).
async fn start_bench_h2_proxy() -> Result<(String, Arc<H2ProxyCounters>)> {
    use hyper::server::conn::{http1 as sh1, http2 as sh2};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://{}", listener.local_addr()?);
    let acceptor = tower_tunnel::test_util::tls_acceptor(vec![H2.to_vec(), HTTP11.to_vec()]);
    let counters = Arc::new(H2ProxyCounters::default());
    let c = Arc::clone(&counters);
    tokio::spawn(async move {
        // Ends with the child process.
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let (acceptor, c) = (acceptor.clone(), Arc::clone(&c));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                c.connections.fetch_add(1, Relaxed);
                let h2 = tls.get_ref().1.alpn_protocol() == Some(H2);
                let sc = Arc::clone(&c);
                let svc = hyper::service::service_fn(move |req| {
                    sc.streams.fetch_add(1, Relaxed);
                    bench_proxy_connect(req)
                });
                let io = TokioIo::new(tls);
                if h2 {
                    c.h2_connections.fetch_add(1, Relaxed);
                    let _ = sh2::Builder::new(TokioExecutor::new())
                        .max_concurrent_streams(100_000)
                        .serve_connection(io, svc)
                        .await;
                } else {
                    let _ = sh1::Builder::new()
                        .serve_connection(io, svc)
                        .with_upgrades()
                        .await;
                }
            });
        }
    });
    Ok((url, counters))
}

async fn bench_proxy_connect(
    mut req: Request<Incoming>,
) -> Result<http::Response<Body>, std::convert::Infallible> {
    let status = |code: http::StatusCode| {
        let mut res = http::Response::new(Body::new());
        *res.status_mut() = code;
        Ok(res)
    };
    let Some(port) = req.uri().authority().and_then(|a| a.port_u16()) else {
        return status(http::StatusCode::BAD_REQUEST);
    };
    if req.method() != http::Method::CONNECT {
        return status(http::StatusCode::METHOD_NOT_ALLOWED);
    }
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return status(http::StatusCode::BAD_GATEWAY);
    };
    let _ = upstream.set_nodelay(true);
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(&mut req).await else {
            return;
        };
        let mut upgraded = TokioIo::new(upgraded);
        let mut upstream = upstream;
        let _ = tokio::io::copy_bidirectional(&mut upgraded, &mut upstream).await;
    });
    status(http::StatusCode::OK)
}

fn serve(fixture_h2_proxy: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let proxy = TestProxy::start().await?;
        let origin = TestOrigin::start().await?;
        // The https:// proxy for the HTTP/2-to-the-proxy comparison; it serves ALPN h2 and
        // http/1.1. Its stream limit is raised so that every idle tunnel of the memory probe
        // fits on one connection (the default, 200, would open a connection per 200).
        let h2_proxy = TestH2Proxy::builder()
            .max_concurrent_streams(100_000)
            .start()
            .await?;
        let (bench_url, bench_counters) = start_bench_h2_proxy().await?;
        let h2_url = match fixture_h2_proxy {
            true => h2_proxy.url(),
            false => bench_url,
        };
        let h2_stats = || match fixture_h2_proxy {
            true => [
                h2_proxy.connections() as u64,
                h2_proxy.h2_connections() as u64,
                h2_proxy.streams() as u64,
            ],
            false => [
                bench_counters.connections.load(Relaxed),
                bench_counters.h2_connections.load(Relaxed),
                bench_counters.streams.load(Relaxed),
            ],
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", proxy.url())?;
        writeln!(out, "{}", origin.https_url())?;
        writeln!(out, "{h2_url}")?;
        writeln!(out, "{}", origin.ca_pem().trim_end())?;
        writeln!(out, "END")?;
        out.flush()?;
        drop(out);
        loop {
            let line = tokio::task::spawn_blocking(|| {
                let mut s = String::new();
                std::io::stdin().read_line(&mut s).map(|n| (n, s))
            })
            .await??;
            match line {
                (0, _) => return Ok(()),
                (_, cmd) if cmd.trim() == "stats" => {
                    let h2s = h2_stats();
                    let mut out = std::io::stdout().lock();
                    writeln!(
                        out,
                        "{} {} {} {} {} {} {}",
                        proxy.connections(),
                        origin.connections(),
                        origin.tls_handshakes(),
                        origin.resumed_handshakes(),
                        h2s[0],
                        h2s[1],
                        h2s[2]
                    )?;
                    out.flush()?;
                }
                _ => {}
            }
        }
    })
}

/// Where the fixtures are and the CA that signed the origin's certificate.
#[derive(Clone, Debug)]
struct Env {
    proxy_url: String,
    proxy_addr: SocketAddr,
    origin_url: String,
    authority: String,
    ca_pem: String,
    /// `https://127.0.0.1:PORT` of the `TestH2Proxy` (ALPN h2 and http/1.1).
    h2_proxy_url: String,
}

impl Env {
    fn new(
        proxy_url: String,
        origin_url: String,
        ca_pem: String,
        h2_proxy_url: String,
    ) -> Result<Env> {
        let proxy_addr = proxy_url.trim_start_matches("http://").parse()?;
        let authority = origin_url.trim_start_matches("https://").to_owned();
        Ok(Env {
            proxy_url,
            proxy_addr,
            origin_url,
            authority,
            ca_pem,
            h2_proxy_url,
        })
    }

    fn from_vars() -> Result<Env> {
        Env::new(
            std::env::var("BENCH_PROXY")?,
            std::env::var("BENCH_ORIGIN")?,
            std::env::var("BENCH_CA")?,
            std::env::var("BENCH_H2_PROXY")?,
        )
    }
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Counters of the fixtures: proxy connections, origin connections, TLS handshakes,
/// resumed handshakes; then the https:// proxy's TLS connections, those that spoke h2, and
/// CONNECT requests (streams or HTTP/1.1 requests).
#[derive(Clone, Copy, Debug, Default)]
struct Stats([u64; 7]);

impl Server {
    fn start(fixture_h2_proxy: bool) -> Result<(Server, Env)> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .args(fixture_h2_proxy.then_some("fixture"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = || -> Result<String> {
            let mut s = String::new();
            stdout.read_line(&mut s)?;
            Ok(s.trim_end().to_owned())
        };
        let proxy_url = line()?;
        let origin_url = line()?;
        let h2_proxy_url = line()?;
        let mut ca_pem = String::new();
        loop {
            let l = line()?;
            if l == "END" || l.is_empty() {
                break;
            }
            ca_pem.push_str(&l);
            ca_pem.push('\n');
        }
        let env = Env::new(proxy_url, origin_url, ca_pem, h2_proxy_url)?;
        Ok((
            Server {
                child,
                stdin,
                stdout,
            },
            env,
        ))
    }

    fn stats(&mut self) -> Result<Stats> {
        writeln!(self.stdin, "stats")?;
        self.stdin.flush()?;
        let mut s = String::new();
        self.stdout.read_line(&mut s)?;
        let mut v = [0u64; 7];
        for (slot, word) in v.iter_mut().zip(s.split_whitespace()) {
            *slot = word.parse()?;
        }
        Ok(Stats(v))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// TLS configuration shared by the clients

const H2: &[u8] = b"h2";
const HTTP11: &[u8] = b"http/1.1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    H2,
    H1,
}

impl Proto {
    fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            Proto::H2 => vec![H2.to_vec(), HTTP11.to_vec()],
            Proto::H1 => vec![HTTP11.to_vec()],
        }
    }
    fn name(self) -> &'static str {
        match self {
            Proto::H2 => "h2",
            Proto::H1 => "h1",
        }
    }
    fn parse(s: &str) -> Result<Proto> {
        match s {
            "h2" => Ok(Proto::H2),
            "h1" => Ok(Proto::H1),
            _ => Err(format!("unknown protocol {s}").into()),
        }
    }
}

/// The same configuration as `test_util::client_config()` (ring provider, safe default
/// versions, only the test CA), built from the CA the fixture process generated, with
/// `alpn` offered. Each call has its own session cache.
fn client_config(ca_pem: &str, alpn: Vec<Vec<u8>>) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn;
    Ok(config)
}

// ---------------------------------------------------------------------------------------
// The clients

type OurStack = AlpnDispatch<TlsConnect<ProxyConnect<HttpConnector>>, Body>;

/// A hyper connection made by hand (floor, hyper-util): HTTP/2 or HTTP/1.1 by ALPN.
enum HyperConn {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

impl HyperConn {
    async fn handshake<T>(io: T, h2: bool) -> Result<HyperConn>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(HyperConn::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(HyperConn::H1(sender))
        }
    }

    /// `GET path`; `h2_uri` is the absolute URI HTTP/2 needs, `authority` the HTTP/1.1 Host.
    async fn get(&mut self, path: &str, h2_uri: &Uri, authority: &HeaderValue) -> Result<usize> {
        let res = match self {
            HyperConn::H1(s) => {
                let req = Request::get(path)
                    .header(HOST, authority.clone())
                    .body(Body::new())?;
                s.ready().await?;
                s.send_request(req).await?
            }
            HyperConn::H2(s) => {
                let req = Request::get(h2_uri.clone()).body(Body::new())?;
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        drain(res.into_body()).await
    }
}

async fn drain(mut body: Incoming) -> Result<usize> {
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            n += data.len();
        }
    }
    Ok(n)
}

/// The hand-written floor: tokio TcpStream, CONNECT by hand, tokio-rustls with one shared
/// config, hyper's handshake by ALPN.
struct Floor {
    proxy: SocketAddr,
    connect_request: Vec<u8>,
    tls: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl Floor {
    fn new(env: &Env, proto: Proto) -> Result<Floor> {
        let a = &env.authority;
        Ok(Floor {
            proxy: env.proxy_addr,
            connect_request: format!("CONNECT {a} HTTP/1.1\r\nHost: {a}\r\n\r\n").into_bytes(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(client_config(
                &env.ca_pem,
                proto.alpn(),
            )?)),
            name: ServerName::try_from("localhost")?,
        })
    }

    async fn connect(&self, marks: &mut Marks) -> Result<(HyperConn, bool)> {
        let mut tcp = TcpStream::connect(self.proxy).await?;
        tcp.write_all(&self.connect_request).await?;
        let mut head = [0u8; 256];
        let mut len = 0;
        loop {
            let n = tcp.read(&mut head[len..]).await?;
            if n == 0 {
                return Err("proxy closed".into());
            }
            len += n;
            if head[..len].ends_with(b"\r\n\r\n") {
                break;
            }
            if len == head.len() {
                return Err("CONNECT answer too long".into());
            }
        }
        if !head.starts_with(b"HTTP/1.1 200") {
            return Err("CONNECT refused".into());
        }
        marks.mark();
        let tls = self.tls.connect(self.name.clone(), tcp).await?;
        marks.mark();
        let session = tls.get_ref().1;
        let h2 = session.alpn_protocol() == Some(H2);
        let resumed = session.handshake_kind() == Some(HandshakeKind::Resumed);
        let conn = HyperConn::handshake(TokioIo::new(tls), h2).await?;
        marks.mark();
        Ok((conn, resumed))
    }
}

/// hyper-util's `Tunnel` (feature client-proxy) under hyper-rustls's `HttpsConnector` (ring),
/// then hyper's handshake by ALPN.
struct HyperUtil {
    tunnel: Tunnel<HttpConnector>,
    https: HttpsConnector<Tunnel<HttpConnector>>,
    config: Arc<ClientConfig>,
}

type HuStream = MaybeHttpsStream<TokioIo<TcpStream>>;

fn hu_resumed(s: &HuStream) -> bool {
    match s {
        MaybeHttpsStream::Https(tls) => {
            tls.inner().get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed)
        }
        MaybeHttpsStream::Http(_) => false,
    }
}

impl HyperUtil {
    fn new(env: &Env, proto: Proto) -> Result<HyperUtil> {
        let config = Arc::new(client_config(&env.ca_pem, proto.alpn())?);
        let tunnel = Tunnel::new(env.proxy_url.parse()?, HttpConnector::new());
        let https = HttpsConnector::from((tunnel.clone(), config.clone()));
        Ok(HyperUtil {
            tunnel,
            https,
            config,
        })
    }

    async fn connect(&mut self, url: &Uri) -> Result<(HyperConn, bool)> {
        let stream = self.https.ready().await?.call(url.clone()).await?;
        let h2 = stream.connected().is_negotiated_h2();
        let resumed = hu_resumed(&stream);
        Ok((HyperConn::handshake(stream, h2).await?, resumed))
    }

    /// The same, one phase at a time (for the phase table).
    async fn connect_phased(&mut self, url: &Uri, marks: &mut Marks) -> Result<HyperConn> {
        let tcp = self.tunnel.ready().await?.call(url.clone()).await?;
        marks.mark();
        let mut slot = Some(tcp);
        let routed = service_fn(move |_: Uri| std::future::ready(slot.take().ok_or("taken")));
        let stream = HttpsConnector::from((routed, self.config.clone()))
            .oneshot(url.clone())
            .await?;
        marks.mark();
        let h2 = stream.connected().is_negotiated_h2();
        let conn = HyperConn::handshake(stream, h2).await?;
        marks.mark();
        Ok(conn)
    }
}

/// This crate's stack, as the crate's docs write it.
struct Ours {
    stack: OurStack,
    route: ProxyConnect<HttpConnector>,
    tls: TlsLayer,
}

impl Ours {
    fn new(env: &Env, proto: Proto) -> Result<Ours> {
        // `origin.client_config()`: ring, test CA only, no ALPN (TlsLayer sets it).
        let tls = TlsLayer::new(Arc::new(client_config(&env.ca_pem, Vec::new())?));
        let tls = match proto {
            Proto::H2 => tls,
            Proto::H1 => tls.with_http1_only(),
        };
        let proxy = ProxyConnectLayer::new(Proxy::new(&env.proxy_url)?);
        let stack = ServiceBuilder::new()
            .layer(AlpnDispatchLayer::new())
            .layer(tls.clone())
            .layer(proxy.clone())
            .service(HttpConnector::new());
        Ok(Ours {
            stack,
            route: proxy.layer(HttpConnector::new()),
            tls,
        })
    }

    async fn connect(&mut self, url: &Uri) -> Result<HttpConnection<Body>> {
        Ok(self.stack.ready().await?.call(url.clone()).await?)
    }

    /// The same stack, one layer at a time: each layer is handed the stream the one below
    /// made, so allocations and time split by phase.
    async fn connect_phased(
        &mut self,
        url: &Uri,
        marks: &mut Marks,
    ) -> Result<HttpConnection<Body>> {
        let routed = self.route.ready().await?.call(url.clone()).await?;
        marks.mark();
        let mut slot = Some(routed);
        let below = service_fn(move |_: Uri| std::future::ready(slot.take().ok_or("taken")));
        let tls = self.tls.layer(below).oneshot(url.clone()).await?;
        marks.mark();
        let mut slot = Some(tls);
        let below = service_fn(move |_: Uri| std::future::ready(slot.take().ok_or("taken")));
        let conn = AlpnDispatchLayer::<Body>::new()
            .layer(below)
            .oneshot(url.clone())
            .await?;
        marks.mark();
        Ok(conn)
    }
}

type ViaHttpsStack = AlpnDispatch<TlsConnect<ProxyConnect<ProxyTls<HttpConnector>>>, Body>;

/// This crate's stack through the `https://` `TestH2Proxy` (issue 8): `ProxyTlsLayer` below
/// `ProxyConnectLayer`. With `Http2Mode::Required` every tunnel is a CONNECT stream on one
/// pooled HTTP/2 connection to the proxy; with `Http2Mode::Never` every tunnel dials the
/// proxy afresh (TCP + TLS offering http/1.1 only) and sends an HTTP/1.1 CONNECT.
struct ViaHttps {
    stack: ViaHttpsStack,
    /// A tunnel kept open so that the pooled HTTP/2 proxy connection stays.
    keep: Option<HttpConnection<Body>>,
}

impl ViaHttps {
    fn new(env: &Env, proxy_h2: bool, proto: Proto) -> Result<ViaHttps> {
        let tls = TlsLayer::new(Arc::new(client_config(&env.ca_pem, Vec::new())?));
        let tls = match proto {
            Proto::H2 => tls,
            Proto::H1 => tls.with_http1_only(),
        };
        let mode = if proxy_h2 {
            Http2Mode::Required
        } else {
            Http2Mode::Never
        };
        let proxy = Proxy::new(&env.h2_proxy_url)?.with_http2(mode);
        // Its own configuration (and session cache) for the proxy hop; ProxyTlsLayer sets
        // the proxy's ALPN itself.
        let proxy_tls = ProxyTlsLayer::new(Arc::new(client_config(&env.ca_pem, Vec::new())?));
        let stack = ServiceBuilder::new()
            .layer(AlpnDispatchLayer::new())
            .layer(tls)
            .layer(ProxyConnectLayer::new(proxy))
            .layer(proxy_tls)
            .service({
                // TCP_NODELAY to the proxy: without it the TLS-in-TLS writes meet Nagle and
                // the proxy's delayed ACK, about 40 ms per fresh HTTP/1.1 tunnel (measured
                // 45 ms vs 1.7 ms) and about 1 ms per h2 tunnel. See BENCHMARKS.md.
                let mut http = HttpConnector::new();
                http.set_nodelay(true);
                http
            });
        Ok(ViaHttps { stack, keep: None })
    }

    async fn connect(&mut self, url: &Uri) -> Result<HttpConnection<Body>> {
        Ok(self.stack.ready().await?.call(url.clone()).await?)
    }

    /// Opens one tunnel, does a GET on it and keeps it, so the proxy connection exists
    /// (and, over HTTP/2, stays pooled) before anything is measured.
    async fn warm(&mut self, t: &Target) -> Result<()> {
        let mut conn = self.connect(&t.url).await?;
        let res = conn
            .send_request(Request::get("/bytes/1024").body(Body::new())?)
            .await?;
        drain(res.into_body()).await?;
        self.keep = Some(conn);
        Ok(())
    }
}

enum Client {
    Ours(Ours),
    Floor(Floor),
    HyperUtil(Box<HyperUtil>),
    Reqwest(reqwest::Client),
    /// Kinds 4 (over an existing h2 proxy connection) and 5 (fresh HTTP/1.1 CONNECT over
    /// TLS), through the https:// proxy.
    ViaHttps(Box<ViaHttps>),
}

/// Names of kinds 4 and 5 (the https:// proxy comparison).
const VIA_NAMES: [&str; 2] = [
    "tower-tunnel, tunnel over an existing HTTP/2 proxy connection (Http2Mode::Required)",
    "tower-tunnel, fresh HTTP/1.1 CONNECT over TLS to the proxy (Http2Mode::Never)",
];

fn kind_name(kind: usize) -> &'static str {
    match kind {
        0..=3 => NAMES[kind],
        k => VIA_NAMES[k - 4],
    }
}

const NAMES: [&str; 4] = [
    "tower-tunnel",
    "floor (hand-written)",
    "hyper-util Tunnel + hyper-rustls",
    "reqwest 0.12 (rustls)",
];

fn reqwest_client(env: &Env, proto: Proto, pooled: bool) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(&env.proxy_url)?)
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(env.ca_pem.as_bytes())?);
    if !pooled {
        b = b.pool_max_idle_per_host(0);
    }
    if proto == Proto::H1 {
        b = b.http1_only();
    }
    Ok(b.build()?)
}

impl Client {
    fn new(kind: usize, env: &Env, proto: Proto) -> Result<Client> {
        Ok(match kind {
            0 => Client::Ours(Ours::new(env, proto)?),
            1 => Client::Floor(Floor::new(env, proto)?),
            2 => Client::HyperUtil(Box::new(HyperUtil::new(env, proto)?)),
            3 => Client::Reqwest(reqwest_client(env, proto, false)?),
            4 => Client::ViaHttps(Box::new(ViaHttps::new(env, true, proto)?)),
            5 => Client::ViaHttps(Box::new(ViaHttps::new(env, false, proto)?)),
            _ => unreachable!(),
        })
    }
}

/// An open connection, kept for the idle-memory probe.
enum Open {
    Ours(HttpConnection<Body>),
    Hyper(HyperConn),
}

/// Paths and names every client uses.
struct Target {
    url: Uri,
    origin_url: String,
    authority: HeaderValue,
}

impl Target {
    fn new(env: &Env) -> Result<Target> {
        Ok(Target {
            url: env.origin_url.parse()?,
            origin_url: env.origin_url.clone(),
            authority: HeaderValue::from_str(&env.authority)?,
        })
    }
    fn h2_uri(&self, path: &str) -> Result<Uri> {
        Ok(format!("{}{path}", self.origin_url).parse()?)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    total: Duration,
    allocs: u64,
    bytes: usize,
    resumed: Option<bool>,
}

/// Connect, `GET path`, read the whole body; the connection is dropped afterwards (and the
/// returned `Open` lets the idle probe keep it instead).
async fn run(
    client: &mut Client,
    t: &Target,
    path: &str,
    h2_uri: &Uri,
) -> Result<(Sample, Option<Open>)> {
    let a0 = allocs();
    let t0 = Instant::now();
    let (bytes, resumed, open) = match client {
        Client::Ours(ours) => {
            let mut conn = ours.connect(&t.url).await?;
            let res = conn
                .send_request(Request::get(path).body(Body::new())?)
                .await?;
            let n = drain(res.into_body()).await?;
            let resumed = conn.info().is_resumed();
            (n, Some(resumed), Some(Open::Ours(conn)))
        }
        Client::Floor(floor) => {
            let (mut conn, resumed) = floor.connect(&mut Marks::off()).await?;
            let n = conn.get(path, h2_uri, &t.authority).await?;
            (n, Some(resumed), Some(Open::Hyper(conn)))
        }
        Client::HyperUtil(hu) => {
            let (mut conn, resumed) = hu.connect(&t.url).await?;
            let n = conn.get(path, h2_uri, &t.authority).await?;
            (n, Some(resumed), Some(Open::Hyper(conn)))
        }
        Client::ViaHttps(via) => {
            let mut conn = via.connect(&t.url).await?;
            let res = conn
                .send_request(Request::get(path).body(Body::new())?)
                .await?;
            let n = drain(res.into_body()).await?;
            let resumed = conn.info().is_resumed();
            (n, Some(resumed), Some(Open::Ours(conn)))
        }
        Client::Reqwest(client) => {
            let mut res = client.get(h2_uri.to_string()).send().await?;
            let mut n = 0;
            while let Some(chunk) = res.chunk().await? {
                n += chunk.len();
            }
            (n, None, None)
        }
    };
    let sample = Sample {
        total: t0.elapsed(),
        allocs: allocs() - a0,
        bytes,
        resumed,
    };
    Ok((sample, open))
}

/// Lets the previous connection's teardown (its hyper task) run outside the next sample.
/// What an alternating setup run measured, per client: the setup times after the
/// warm-up, the allocations they made, and how many resumed their TLS session.
struct Rotation {
    times: Vec<Vec<Duration>>,
    alloc_sum: Vec<u64>,
    resumed: Vec<usize>,
}

/// `warmup + n` rounds of one fresh connection per client, the starting client rotating
/// every round, so that drift hits every client alike. `inspect` sees each client's
/// connection (by index) before it is dropped.
async fn rotate(
    args: &Args,
    clients: &mut [(usize, Proto, Client)],
    t: &Target,
    path: &str,
    uri: &Uri,
    mut inspect: impl FnMut(usize, &Option<Open>),
) -> Result<Rotation> {
    let mut r = Rotation {
        times: vec![Vec::with_capacity(args.n); clients.len()],
        alloc_sum: vec![0; clients.len()],
        resumed: vec![0; clients.len()],
    };
    for i in 0..args.warmup + args.n {
        for k in 0..clients.len() {
            let c = (i + k) % clients.len();
            let (_, _, client) = &mut clients[c];
            let (s, open) = run(client, t, path, uri).await?;
            inspect(c, &open);
            drop(open);
            settle().await;
            if s.bytes != 1024 {
                return Err(format!("short body: {}", s.bytes).into());
            }
            if i >= args.warmup {
                r.times[c].push(s.total);
                r.alloc_sum[c] += s.allocs;
                r.resumed[c] += usize::from(s.resumed == Some(true));
            }
        }
    }
    Ok(r)
}

async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// Time and allocation marks between phases.
struct Marks {
    on: bool,
    at: Vec<(Instant, u64)>,
}

impl Marks {
    fn off() -> Marks {
        Marks {
            on: false,
            at: Vec::new(),
        }
    }
    fn start() -> Marks {
        let mut at = Vec::with_capacity(8);
        at.push((Instant::now(), allocs()));
        Marks { on: true, at }
    }
    fn mark(&mut self) {
        PHASE.fetch_add(1, Relaxed);
        if self.on {
            self.at.push((Instant::now(), allocs()));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Statistics and the table

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p99(v: &mut [Duration]) -> Duration {
    v.sort();
    let i = ((v.len() as f64) * 0.99).ceil() as usize;
    v[i.clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[derive(Default, Clone)]
struct Row {
    setup_med: [Option<Duration>; 2],
    setup_p99: [Option<Duration>; 2],
    allocs: [Option<f64>; 2],
    resumed: [Option<f64>; 2],
    mibs: [Option<f64>; 2],
    rss: [Option<f64>; 2],
    heap: [Option<f64>; 2],
}

fn cell_time(v: Option<Duration>, floor: Option<Duration>) -> String {
    match (v, floor) {
        (Some(v), Some(f)) => format!("{:.3} ms ({:.2}x)", ms(v), ms(v) / ms(f)),
        (Some(v), None) => format!("{:.3} ms", ms(v)),
        _ => "n/a".into(),
    }
}

fn cell_num(v: Option<f64>, floor: Option<f64>, unit: &str, prec: usize) -> String {
    match (v, floor) {
        (Some(v), Some(f)) if f != 0.0 => format!("{v:.prec$}{unit} ({:.2}x)", v / f),
        (Some(v), _) => format!("{v:.prec$}{unit}"),
        _ => "n/a".into(),
    }
}

fn cell_allocs(v: Option<f64>, floor: Option<f64>) -> String {
    match (v, floor) {
        (Some(v), Some(f)) => format!("{v:.1} ({:.2}x, {:+.1})", v / f, v - f),
        (Some(v), None) => format!("{v:.1}"),
        _ => "n/a".into(),
    }
}

fn cell_kib(v: Option<f64>, floor: Option<f64>) -> String {
    match (v, floor) {
        (Some(v), Some(f)) => format!("{v:.1} KiB ({:.2}x, {:+.1})", v / f, v - f),
        (Some(v), None) => format!("{v:.1} KiB"),
        _ => "n/a".into(),
    }
}

// ---------------------------------------------------------------------------------------
// Idle memory: a fresh process per (client, protocol)

/// `--idle-probe CLIENT PROTO COUNT`: opens COUNT tunneled TLS connections (each with one
/// GET done) and keeps them idle; prints `rss_before_kib rss_after_kib heap_before
/// heap_after` in bytes for the heap.
fn idle_probe(kind: usize, proto: Proto, count: usize) -> Result<()> {
    let env = Env::from_vars()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let t = Target::new(&env)?;
        let h2_uri = t.h2_uri("/bytes/1024")?;
        let mut client = match kind {
            3 => Client::Reqwest(reqwest_client(&env, proto, true)?),
            k => Client::new(k, &env, proto)?,
        };
        // Over HTTP/2 to the proxy: one tunnel stays open through the probe, so the pooled
        // proxy connection is in the baseline and the figure is the cost of one more tunnel.
        if let (4, Client::ViaHttps(via)) = (kind, &mut client) {
            via.warm(&t).await?;
        }
        // Warm up: lazy statics, the session cache, the runtime's buffers.
        for _ in 0..3 {
            drop(run(&mut client, &t, "/bytes/1024", &h2_uri).await?);
            settle().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        unsafe { libc::malloc_trim(0) };
        let (rss0, heap0) = (rss_kib(), live_heap());
        let mut kept = Vec::with_capacity(count);
        if let Client::Reqwest(rq) = &client {
            // reqwest keeps connections only in its pool: issue the requests concurrently so
            // each opens its own connection, then they sit idle in the pool.
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..count {
                let rq = rq.clone();
                let url = h2_uri.to_string();
                set.spawn(async move {
                    let res = rq.get(url).send().await?;
                    res.bytes().await.map(|b| b.len())
                });
            }
            while let Some(r) = set.join_next().await {
                r??;
            }
        } else {
            for _ in 0..count {
                let (_, open) = run(&mut client, &t, "/bytes/1024", &h2_uri).await?;
                kept.push(open);
            }
        }
        settle().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (rss1, heap1) = (rss_kib(), live_heap());
        println!("{rss0} {rss1} {heap0} {heap1}");
        drop(kept);
        Ok(())
    })
}

fn run_idle_probe(
    env: &Env,
    server: &mut Server,
    kind: usize,
    proto: Proto,
    count: usize,
) -> Result<(f64, f64)> {
    let before = server.stats()?;
    let out = Command::new(std::env::current_exe()?)
        .args([
            "--idle-probe",
            &kind.to_string(),
            proto.name(),
            &count.to_string(),
        ])
        .env("BENCH_PROXY", &env.proxy_url)
        .env("BENCH_ORIGIN", &env.origin_url)
        .env("BENCH_CA", &env.ca_pem)
        .env("BENCH_H2_PROXY", &env.h2_proxy_url)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("idle probe {} {} failed", kind_name(kind), proto.name()).into());
    }
    let after = server.stats()?;
    // Connections the proxy accepted during the probe, less the 3 warm-up ones; through the
    // https:// proxy, the CONNECTs it took (tunnels), less the warm-up ones (and the kept one).
    let conns = match kind {
        0..=3 => (after.0[0] - before.0[0]).saturating_sub(3),
        4 => (after.0[6] - before.0[6]).saturating_sub(4),
        _ => (after.0[6] - before.0[6]).saturating_sub(3),
    }
    .max(1) as f64;
    if kind >= 4 {
        eprintln!(
            "  {} {}: {conns} idle tunnels, {} TLS connection(s) to the proxy in the process ({} h2)",
            kind_name(kind),
            proto.name(),
            after.0[4] - before.0[4],
            after.0[5] - before.0[5]
        );
    }
    let text = String::from_utf8(out.stdout)?;
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    if v.len() != 4 {
        return Err(format!("idle probe printed {text:?}").into());
    }
    if (conns - count as f64).abs() > count as f64 * 0.02 {
        eprintln!(
            "  note: {} {} made {conns} connections for {count} requests",
            kind_name(kind),
            proto.name()
        );
    }
    Ok(((v[1] - v[0]) / conns, (v[3] - v[2]) / conns / 1024.0))
}

// ---------------------------------------------------------------------------------------
// Main

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("--serve") => return serve(argv.get(2).map(String::as_str) == Some("fixture")),
        Some("--idle-probe") => {
            let kind: usize = argv.get(2).ok_or("client")?.parse()?;
            let proto = Proto::parse(argv.get(3).ok_or("proto")?)?;
            let count: usize = argv.get(4).ok_or("count")?.parse()?;
            return idle_probe(kind, proto, count);
        }
        _ => {}
    }
    if argv.get(1).map(String::as_str) == Some("--trace-allocs") {
        let (_server, env) = Server::start(false)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        return rt.block_on(trace_allocs(&env));
    }
    let args = parse_args();
    print_machine();
    let (mut server, env) = Server::start(args.fixture_h2_proxy)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut rows, mut via_rows) = rt.block_on(measure(&args, &env, &mut server))?;

    eprintln!(
        "idle memory: {} connections per (client, protocol), one process each",
        args.idle
    );
    for (kind, row) in rows.iter_mut().enumerate() {
        for (pi, proto) in [Proto::H2, Proto::H1].into_iter().enumerate() {
            if kind == 3 && proto == Proto::H2 {
                continue; // reqwest multiplexes HTTP/2: one connection per host in its pool
            }
            let (rss, heap) = run_idle_probe(&env, &mut server, kind, proto, args.idle)?;
            row.rss[pi] = Some(rss);
            row.heap[pi] = Some(heap);
        }
    }
    eprintln!(
        "idle memory through the https:// proxy: {} tunnels per (route, target protocol), one process each",
        args.idle
    );
    for (i, row) in via_rows.iter_mut().enumerate() {
        for (pi, proto) in [Proto::H2, Proto::H1].into_iter().enumerate() {
            let (rss, heap) = run_idle_probe(&env, &mut server, 4 + i, proto, args.idle)?;
            row.rss[pi] = Some(rss);
            row.heap[pi] = Some(heap);
        }
    }
    print_table(&args, &rows);
    print_via_table(&args, &via_rows);
    println!();
    println!("load average at end: {}", loadavg());
    Ok(())
}

async fn measure(args: &Args, env: &Env, server: &mut Server) -> Result<(Vec<Row>, Vec<Row>)> {
    let t = Target::new(env)?;
    let setup_path = "/bytes/1024";
    let setup_uri = t.h2_uri(setup_path)?;
    let protos = [Proto::H2, Proto::H1];

    // -- Session resumption through our stack --------------------------------------------
    {
        let mut ours = Ours::new(env, Proto::H2)?;
        let mut first = ours.connect(&t.url).await?;
        let res = first
            .send_request(Request::get("/").body(Body::new())?)
            .await?;
        drain(res.into_body()).await?;
        let mut second = ours.connect(&t.url).await?;
        let res = second
            .send_request(Request::get("/").body(Body::new())?)
            .await?;
        drain(res.into_body()).await?;
        println!(
            "TLS resumption through tower-tunnel: first connection resumed={}, second resumed={} ({})",
            first.info().is_resumed(),
            second.info().is_resumed(),
            second.info()
        );
        if !second.info().is_resumed() {
            println!("  WARNING: the second connection did not resume its TLS session");
        }
    }

    // -- Setup: every (client, protocol) in turn, connection by connection ---------------
    let mut clients: Vec<(usize, Proto, Client)> = Vec::new();
    for kind in 0..4 {
        for proto in protos {
            clients.push((kind, proto, Client::new(kind, env, proto)?));
        }
    }
    let stats0 = server.stats()?;
    eprintln!(
        "setup: {} warm-up + {} connections per client and protocol, rotating through {} pairs",
        args.warmup,
        args.n,
        clients.len()
    );
    let started = Instant::now();
    let Rotation {
        mut times,
        alloc_sum,
        resumed,
    } = rotate(args, &mut clients, &t, setup_path, &setup_uri, |_, _| {}).await?;
    let stats1 = server.stats()?;
    let made = (stats1.0[0] - stats0.0[0]) as usize;
    let expected = (args.warmup + args.n) * clients.len();
    eprintln!(
        "  {:.1} s; proxy accepted {made} connections for {expected} setups (every setup a fresh tunnel: {}); origin resumed {} of {} TLS handshakes",
        started.elapsed().as_secs_f64(),
        made == expected,
        stats1.0[3] - stats0.0[3],
        stats1.0[2] - stats0.0[2],
    );

    let mut rows = vec![Row::default(); 4];
    for (c, (kind, proto, client)) in clients.iter().enumerate() {
        let pi = protos.iter().position(|p| p == proto).unwrap_or(0);
        let row = &mut rows[*kind];
        row.setup_med[pi] = Some(median(&mut times[c]));
        row.setup_p99[pi] = Some(p99(&mut times[c]));
        row.allocs[pi] = Some(alloc_sum[c] as f64 / args.n as f64);
        if !matches!(client, Client::Reqwest(_)) {
            row.resumed[pi] = Some(resumed[c] as f64 / args.n as f64);
        }
    }

    let via_rows = measure_via_https(args, env, server, &t, setup_path, &setup_uri).await?;

    // -- Phases: allocations and time per phase, three clients that can be split ---------
    let k = args.n.min(200);
    eprintln!("phases: {k} connections per client and protocol");
    let mut phase_rows = Vec::new();
    for proto in protos {
        let mut ours = Ours::new(env, proto)?;
        let floor = Floor::new(env, proto)?;
        let mut hu = HyperUtil::new(env, proto)?;
        // [client][phase] -> samples
        let mut pt: Vec<Vec<Vec<Duration>>> = vec![vec![Vec::new(); 4]; 3];
        let mut pa: Vec<Vec<u64>> = vec![vec![0; 4]; 3];
        for i in 0..k + 5 {
            for j in 0..3 {
                let which = (i + j) % 3;
                let mut m = Marks::start();
                let mut conn = match which {
                    0 => Open::Ours(ours.connect_phased(&t.url, &mut m).await?),
                    1 => Open::Hyper(floor.connect(&mut m).await?.0),
                    _ => Open::Hyper(hu.connect_phased(&t.url, &mut m).await?),
                };
                let n = match &mut conn {
                    Open::Ours(c) => {
                        let res = c
                            .send_request(Request::get(setup_path).body(Body::new())?)
                            .await?;
                        drain(res.into_body()).await?
                    }
                    Open::Hyper(c) => c.get(setup_path, &setup_uri, &t.authority).await?,
                };
                assert_eq!(n, 1024);
                m.mark();
                drop(conn);
                settle().await;
                if i < 5 {
                    continue;
                }
                for p in 0..4 {
                    let (t0, a0) = m.at[p];
                    let (t1, a1) = m.at[p + 1];
                    pt[which][p].push(t1 - t0);
                    pa[which][p] += a1 - a0;
                }
            }
        }
        for which in 0..3 {
            let mut cells = Vec::new();
            for p in 0..4 {
                cells.push((median(&mut pt[which][p]), pa[which][p] as f64 / k as f64));
            }
            phase_rows.push((proto, which, cells));
        }
    }

    // -- Throughput: one large body per client and protocol, rounds alternate clients ----
    let bytes = args.mib * 1024 * 1024;
    let big_path = format!("/bytes/{bytes}");
    let big_uri = t.h2_uri(&big_path)?;
    eprintln!(
        "throughput: {} MiB, {} round(s) per client and protocol",
        args.mib, args.rounds
    );
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); clients.len()];
    for r in 0..args.rounds {
        for k in 0..clients.len() {
            let c = (r + k) % clients.len();
            let (_, _, client) = &mut clients[c];
            let (s, open) = run(client, &t, &big_path, &big_uri).await?;
            drop(open);
            settle().await;
            if s.bytes != bytes {
                return Err(format!("short body: {} of {bytes}", s.bytes).into());
            }
            rates[c].push(bytes as f64 / (1024.0 * 1024.0) / s.total.as_secs_f64());
        }
    }
    for (c, (kind, proto, _)) in clients.iter().enumerate() {
        let pi = protos.iter().position(|p| p == proto).unwrap_or(0);
        let v = &mut rates[c];
        v.sort_by(|a, b| a.total_cmp(b));
        rows[*kind].mibs[pi] = Some(v[v.len() / 2]);
    }

    print_phases(&phase_rows);
    Ok((rows, via_rows))
}

/// Issue 8 item 5: a tunnel over an existing HTTP/2 connection to the https:// proxy
/// against a fresh HTTP/1.1 CONNECT over TLS to the same proxy, each then target TLS + HTTP
/// handshake + GET /bytes/1024. Four (route, target protocol) pairs rotate connection by
/// connection, as in the main setup run. Rows: [0] over h2, [1] fresh HTTP/1.1.
async fn measure_via_https(
    args: &Args,
    env: &Env,
    server: &mut Server,
    t: &Target,
    path: &str,
    uri: &Uri,
) -> Result<Vec<Row>> {
    let protos = [Proto::H2, Proto::H1];
    let mut clients: Vec<(usize, Proto, Client)> = Vec::new();
    for proto in protos {
        for kind in [4, 5] {
            clients.push((kind, proto, Client::new(kind, env, proto)?));
        }
    }
    // The HTTP/2 clients open their proxy connection now and keep one tunnel on it.
    for (kind, _, client) in &mut clients {
        if let (4, Client::ViaHttps(via)) = (*kind, client) {
            via.warm(t).await?;
        }
    }
    let mut h2_routes = vec![0usize; clients.len()];
    let mut max_shared = vec![0usize; clients.len()];
    eprintln!(
        "https:// proxy: {} warm-up + {} tunnels per (route, target protocol), rotating through {} pairs",
        args.warmup,
        args.n,
        clients.len()
    );
    let s0 = server.stats()?;
    let started = Instant::now();
    let Rotation {
        mut times,
        alloc_sum,
        resumed,
    } = rotate(args, &mut clients, t, path, uri, |c, open| {
        if let Some(Open::Ours(conn)) = open {
            h2_routes[c] += usize::from(conn.info().route().is_h2_tunnel());
            max_shared[c] = max_shared[c].max(conn.info().shared_tunnels().unwrap_or(0));
        }
    })
    .await?;
    let s1 = server.stats()?;
    let per = args.warmup + args.n;
    eprintln!(
        "  {:.1} s; the proxy accepted {} TLS connections ({} h2) and {} CONNECTs for {} tunnels ({} fresh HTTP/1.1 expected, 0 for the h2 route)",
        started.elapsed().as_secs_f64(),
        s1.0[4] - s0.0[4],
        s1.0[5] - s0.0[5],
        s1.0[6] - s0.0[6],
        per * clients.len(),
        per * 2
    );
    let mut rows = vec![Row::default(); 2];
    for (c, (kind, proto, _)) in clients.iter().enumerate() {
        let pi = protos.iter().position(|p| p == proto).unwrap_or(0);
        eprintln!(
            "  {} target {}: {} of {per} tunnels were h2 streams, at most {} tunnels shared the proxy connection",
            kind_name(*kind),
            proto.name(),
            h2_routes[c],
            max_shared[c]
        );
        let row = &mut rows[kind - 4];
        row.setup_med[pi] = Some(median(&mut times[c]));
        row.setup_p99[pi] = Some(p99(&mut times[c]));
        row.allocs[pi] = Some(alloc_sum[c] as f64 / args.n as f64);
        row.resumed[pi] = Some(resumed[c] as f64 / args.n as f64);
    }
    println!(
        "https:// proxy run: proxy TLS connections {} ({} h2), CONNECTs {}, for {} tunnels",
        s1.0[4] - s0.0[4],
        s1.0[5] - s0.0[5],
        s1.0[6] - s0.0[6],
        per * clients.len()
    );
    Ok(rows)
}

/// One connection of each splittable client with a backtrace per allocation, grouped by
/// phase and call site; run after a warm-up so lazy statics and session caches exist.
async fn trace_allocs(env: &Env) -> Result<()> {
    let t = Target::new(env)?;
    let uri = t.h2_uri("/bytes/1024")?;
    for proto in [Proto::H2, Proto::H1] {
        let mut ours = Ours::new(env, proto)?;
        let floor = Floor::new(env, proto)?;
        let mut hu = HyperUtil::new(env, proto)?;
        for which in 0..3 {
            for round in 0..6 {
                let traced = round == 5;
                settle().await;
                if traced {
                    PHASE.store(0, Relaxed);
                    TRACE.store(true, Relaxed);
                }
                let mut m = Marks::start();
                PHASE.store(0, Relaxed);
                let mut conn = match which {
                    0 => Open::Ours(ours.connect_phased(&t.url, &mut m).await?),
                    1 => Open::Hyper(floor.connect(&mut m).await?.0),
                    _ => Open::Hyper(hu.connect_phased(&t.url, &mut m).await?),
                };
                match &mut conn {
                    Open::Ours(c) => {
                        let res = c
                            .send_request(Request::get("/bytes/1024").body(Body::new())?)
                            .await?;
                        drain(res.into_body()).await?;
                    }
                    Open::Hyper(c) => {
                        c.get("/bytes/1024", &uri, &t.authority).await?;
                    }
                }
                TRACE.store(false, Relaxed);
                drop(conn);
                settle().await;
            }
            let traces = std::mem::take(&mut *TRACES.lock().map_err(|_| "poisoned")?);
            let name = ["tower-tunnel", "floor", "hyper-util"][which];
            println!("== {name} {} : {} allocations", proto.name(), traces.len());
            let phases = ["TCP+CONNECT", "TLS", "HTTP handshake", "GET"];
            let mut grouped: Vec<(usize, String, usize, usize)> = Vec::new();
            for (phase, size, bt) in &traces {
                let key = summarize(bt);
                match grouped.iter_mut().find(|g| g.0 == *phase && g.1 == key) {
                    Some(g) => {
                        g.2 += 1;
                        g.3 += size;
                    }
                    None => grouped.push((*phase, key, 1, *size)),
                }
            }
            for (phase, key, count, bytes) in grouped {
                println!(
                    "  [{}] {count}x {bytes}B  {key}",
                    phases.get(phase).unwrap_or(&"after")
                );
            }
        }
    }
    Ok(())
}

/// One client's per-phase figures: protocol, client index, (time, allocations) per phase.
type PhaseRow = (Proto, usize, Vec<(Duration, f64)>);

fn print_phases(rows: &[PhaseRow]) {
    println!();
    println!("Per phase (median time, mean allocations), split by handing each layer the stream the one below made:");
    println!(
        "| client | proto | TCP + CONNECT | TLS handshake | HTTP handshake | GET /bytes/1024 | sum |"
    );
    println!("|---|---|---|---|---|---|---|");
    let name = |w: usize| ["tower-tunnel", "floor", "hyper-util Tunnel + hyper-rustls"][w];
    for (proto, which, cells) in rows {
        let mut line = format!("| {} | {} |", name(*which), proto.name());
        let mut sum_t = Duration::ZERO;
        let mut sum_a = 0.0;
        for (d, a) in cells {
            line.push_str(&format!(" {:.3} ms, {:.1} allocs |", ms(*d), a));
            sum_t += *d;
            sum_a += a;
        }
        line.push_str(&format!(" {:.3} ms, {:.1} allocs |", ms(sum_t), sum_a));
        println!("{line}");
    }
}

fn print_table(args: &Args, rows: &[Row]) {
    let f = &rows[1];
    println!();
    println!(
        "Setup = TCP to proxy + CONNECT + TLS + HTTP handshake + GET /bytes/1024, N={} per client and protocol; throughput = one {} MiB body (median of {} round(s)); idle memory over {} connections. Ratios are to the floor of this run.",
        args.n, args.mib, args.rounds, args.idle
    );
    println!();
    println!("| client | h2 setup median | h2 p99 | h1 setup median | h1 p99 | throughput h2 | throughput h1 | allocs/setup h2 | allocs/setup h1 | RSS/idle conn h2 | RSS/idle conn h1 |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (kind, r) in rows.iter().enumerate() {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            NAMES[kind],
            cell_time(r.setup_med[0], f.setup_med[0]),
            cell_time(r.setup_p99[0], f.setup_p99[0]),
            cell_time(r.setup_med[1], f.setup_med[1]),
            cell_time(r.setup_p99[1], f.setup_p99[1]),
            cell_num(r.mibs[0], f.mibs[0], " MiB/s", 0),
            cell_num(r.mibs[1], f.mibs[1], " MiB/s", 0),
            cell_allocs(r.allocs[0], f.allocs[0]),
            cell_allocs(r.allocs[1], f.allocs[1]),
            cell_kib(r.rss[0], f.rss[0]),
            cell_kib(r.rss[1], f.rss[1]),
        );
    }
    println!();
    println!("Live heap per idle connection (allocator bytes, same connections as RSS):");
    println!("| client | h2 | h1 |");
    println!("|---|---|---|");
    for (kind, r) in rows.iter().enumerate() {
        println!(
            "| {} | {} | {} |",
            NAMES[kind],
            cell_kib(r.heap[0], f.heap[0]),
            cell_kib(r.heap[1], f.heap[1])
        );
    }
    println!();
    println!("TLS sessions resumed during the setup runs (client side):");
    for (kind, r) in rows.iter().enumerate() {
        let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.0}%", v * 100.0));
        println!(
            "  {}: h2 {}, h1 {}",
            NAMES[kind],
            pct(r.resumed[0]),
            pct(r.resumed[1])
        );
    }

    // -- Targets ---------------------------------------------------------------------------
    let o = &rows[0];
    let (hu, rq) = (&rows[2], &rows[3]);
    println!();
    println!("Targets (issue 7):");
    for (pi, p) in ["h2", "h1"].iter().enumerate() {
        if let (Some(om), Some(fm)) = (o.setup_med[pi], f.setup_med[pi]) {
            let ratio = ms(om) / ms(fm);
            let peers = [hu.setup_med[pi], rq.setup_med[pi]]
                .iter()
                .flatten()
                .all(|peer| om <= *peer);
            println!(
                "  setup {p}: {ratio:.3}x floor (<= 1.03: {}), no slower than either peer: {}",
                verdict(ratio <= 1.03),
                verdict(peers)
            );
        }
        if let (Some(ot), Some(ft)) = (o.mibs[pi], f.mibs[pi]) {
            println!(
                "  throughput {p}: {:.3}x floor (>= 0.97: {})",
                ot / ft,
                verdict(ot / ft >= 0.97)
            );
        }
        if let (Some(oa), Some(fa)) = (o.allocs[pi], f.allocs[pi]) {
            println!(
                "  allocations {p}: floor {:+.1} (<= +10: {})",
                oa - fa,
                verdict(oa - fa <= 10.0)
            );
        }
        if let (Some(or), Some(fr)) = (o.rss[pi], f.rss[pi]) {
            println!(
                "  idle RSS {p}: floor {:+.2} KiB (within 2 KiB: {})",
                or - fr,
                verdict((or - fr).abs() <= 2.0)
            );
        }
    }
}

fn print_via_table(args: &Args, rows: &[Row]) {
    let f = &rows[1];
    println!();
    println!(
        "HTTP/2 to the proxy (issue 8): tower-tunnel (ProxyTlsLayer over HttpConnector with TCP_NODELAY) through an https:// proxy offering h2 and http/1.1 ({}). Setup = (new CONNECT stream on the existing h2 proxy connection | TCP + TLS to the proxy + HTTP/1.1 CONNECT) + target TLS + HTTP handshake + GET /bytes/1024, N={} per row and target protocol; idle memory per tunnel over {} tunnels. Ratios are to the fresh HTTP/1.1 CONNECT of this run.",
        if args.fixture_h2_proxy { "TestH2Proxy" } else { "the bench's proxy: TestH2Proxy's CONNECT handling with TCP_NODELAY towards the target" },
        args.n, args.idle
    );
    println!();
    println!("| route to the proxy | target h2: setup median | p99 | target h1: setup median | p99 | allocs/setup h2 | allocs/setup h1 | RSS/idle tunnel h2 | RSS/idle tunnel h1 | live heap/idle tunnel h2 | live heap/idle tunnel h1 |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, r) in rows.iter().enumerate() {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            VIA_NAMES[i],
            cell_time(r.setup_med[0], f.setup_med[0]),
            cell_time(r.setup_p99[0], f.setup_p99[0]),
            cell_time(r.setup_med[1], f.setup_med[1]),
            cell_time(r.setup_p99[1], f.setup_p99[1]),
            cell_allocs(r.allocs[0], f.allocs[0]),
            cell_allocs(r.allocs[1], f.allocs[1]),
            cell_kib(r.rss[0], f.rss[0]),
            cell_kib(r.rss[1], f.rss[1]),
            cell_kib(r.heap[0], f.heap[0]),
            cell_kib(r.heap[1], f.heap[1]),
        );
    }
    let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.0}%", v * 100.0));
    for (i, r) in rows.iter().enumerate() {
        println!(
            "  target TLS resumed, {}: h2 {}, h1 {}",
            VIA_NAMES[i],
            pct(r.resumed[0]),
            pct(r.resumed[1])
        );
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// nproc, CPU model, memory and load average, for BENCHMARKS.md.
fn print_machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cpus} CPUs, {model}, MemTotal {mem}");
    println!("load average at start: {}", loadavg());
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

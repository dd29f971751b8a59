//! Round trips to the first response byte, per route: this crate's stack (a full TLS
//! handshake and a resumed session), curl, and the textbook minimum.
//!
//! A relay in this process (on a runtime of its own, so that curl can run while the
//! measuring runtime waits) sits between the client and the first hop (the proxy, or the
//! origin on the direct route) and delays every chunk by [`ONE_WAY`] in each direction.
//! The hops behind it (proxy to origin) stay on plain loopback. Since the client's TCP
//! handshake with the relay completes at once on loopback, the relay also holds the
//! client's first bytes until one round trip after it accepted the connection: a client
//! can send nothing before the SYN-ACK, one round trip after its SYN.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::Resumption;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::{
    AlpnDispatch, AlpnDispatchLayer, Http2Mode, HttpConnection, Proxy, ProxyConnect,
    ProxyConnectLayer, TlsConnect, TlsLayer,
};

use crate::args::Args;
use crate::fixtures::Env;
use crate::report::median;
use crate::tls::client_config;
use crate::util::{drain, Body, Result};

/// The delay the relay adds to every chunk in each direction. Large enough that the CPU
/// time of a connection (up to about 30 ms here: two TLS handshakes on 2 shared cores) stays
/// under half a round trip, so rounding counts round trips.
pub const ONE_WAY: Duration = Duration::from_millis(50);
/// One round trip through the relay.
pub const RTT: Duration = Duration::from_millis(2 * ONE_WAY.as_millis() as u64);

const PATH: &str = "/bytes/1024";

/// The routes of the table, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Direct,
    Connect,
    Socks5,
    Socks5h,
    Socks5hPipelined,
    HttpsH1,
    HttpsH2Fresh,
    HttpsH2Reused,
    ConnectOptimistic,
    Socks5hOptimistic,
    HttpsH1Optimistic,
    HttpsH2FreshOptimistic,
    HttpsH2ReusedOptimistic,
}

impl Route {
    pub const ALL: [Route; 13] = [
        Route::Direct,
        Route::Connect,
        Route::Socks5,
        Route::Socks5h,
        Route::Socks5hPipelined,
        Route::HttpsH1,
        Route::HttpsH2Fresh,
        Route::HttpsH2Reused,
        Route::ConnectOptimistic,
        Route::Socks5hOptimistic,
        Route::HttpsH1Optimistic,
        Route::HttpsH2FreshOptimistic,
        Route::HttpsH2ReusedOptimistic,
    ];

    /// Whether the route sends the target's `ClientHello` with its tunnel request
    /// (`Proxy::with_optimistic_data`).
    pub fn is_optimistic(self) -> bool {
        matches!(
            self,
            Route::ConnectOptimistic
                | Route::Socks5hOptimistic
                | Route::HttpsH1Optimistic
                | Route::HttpsH2FreshOptimistic
                | Route::HttpsH2ReusedOptimistic
        )
    }

    /// Whether the tunnel is an HTTP/2 `CONNECT` stream.
    pub fn is_h2(self) -> bool {
        matches!(
            self,
            Route::HttpsH2Fresh
                | Route::HttpsH2Reused
                | Route::HttpsH2FreshOptimistic
                | Route::HttpsH2ReusedOptimistic
        )
    }

    /// Whether each sample is a second tunnel on a pooled HTTP/2 proxy connection.
    pub fn is_pooled(self) -> bool {
        matches!(self, Route::HttpsH2Reused | Route::HttpsH2ReusedOptimistic)
    }

    pub fn name(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Connect => "HTTP CONNECT (http:// proxy)",
            Route::Socks5 => "SOCKS5 (socks5://, client resolves)",
            Route::Socks5h => "SOCKS5 (socks5h://, proxy resolves)",
            Route::Socks5hPipelined => {
                "SOCKS5 (socks5h://, greeting and request pipelined: Proxy::with_socks_pipelining)"
            }
            Route::HttpsH1 => "https:// proxy, HTTP/1.1 CONNECT",
            Route::HttpsH2Fresh => "https:// proxy, HTTP/2 CONNECT, fresh proxy connection",
            Route::HttpsH2Reused => "https:// proxy, HTTP/2 CONNECT, pooled proxy connection",
            Route::ConnectOptimistic => {
                "HTTP CONNECT, optimistic data (Proxy::with_optimistic_data)"
            }
            Route::Socks5hOptimistic => "SOCKS5 (socks5h://), pipelined and optimistic data",
            Route::HttpsH1Optimistic => "https:// proxy, HTTP/1.1 CONNECT, optimistic data",
            Route::HttpsH2FreshOptimistic => {
                "https:// proxy, HTTP/2 CONNECT, fresh proxy connection, optimistic data"
            }
            Route::HttpsH2ReusedOptimistic => {
                "https:// proxy, HTTP/2 CONNECT, pooled proxy connection, optimistic data"
            }
        }
    }

    /// The textbook minimum, with full TLS 1.3 handshakes and nothing sent before its
    /// answer is in (BENCHMARKS.md, "Round trips", has the table of assumptions).
    pub fn textbook(self) -> u32 {
        match self {
            // TCP + TLS + request.
            Route::Direct => 3,
            // TCP + CONNECT + TLS + request.
            Route::Connect => 4,
            // TCP + greeting + CONNECT + TLS + request.
            Route::Socks5 | Route::Socks5h => 5,
            // TCP + greeting and CONNECT in one flight + TLS + request.
            Route::Socks5hPipelined => 4,
            // TCP + proxy TLS + CONNECT + TLS + request (over h2: the preface and SETTINGS
            // go with the CONNECT's HEADERS, no wait for the proxy's SETTINGS).
            Route::HttpsH1 | Route::HttpsH2Fresh => 5,
            // CONNECT stream + TLS + request.
            Route::HttpsH2Reused => 3,
            // The ClientHello goes with the tunnel request: TCP + (CONNECT and TLS) +
            // request; for SOCKS5 the greeting goes with them too.
            Route::ConnectOptimistic | Route::Socks5hOptimistic => 3,
            // TCP + proxy TLS + (CONNECT and TLS) + request; over h2 the ClientHello is
            // DATA right behind the CONNECT's HEADERS.
            Route::HttpsH1Optimistic | Route::HttpsH2FreshOptimistic => 4,
            // (CONNECT stream and TLS) + request.
            Route::HttpsH2ReusedOptimistic => 2,
        }
    }
}

/// One row: the medians, whether the resumed cells resumed, and curl's (or why not).
pub struct RttRow {
    pub route: Route,
    pub full: Duration,
    pub resumed: Duration,
    pub resumed_ok: bool,
    pub curl: Result<Duration, String>,
}

/// The delaying relays, one per first hop, on a runtime that lives as long as this.
struct Relays {
    rt: tokio::runtime::Runtime,
}

impl Relays {
    fn new() -> Result<Relays> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        Ok(Relays { rt })
    }

    /// A relay to `upstream`; returns its address.
    fn start(&self, upstream: SocketAddr) -> Result<SocketAddr> {
        let listener = self
            .rt
            .block_on(TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))?;
        let addr = listener.local_addr()?;
        self.rt.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, Instant::now()));
            }
        });
        Ok(addr)
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, accepted: Instant) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let accepted = tokio::time::Instant::from_std(accepted);
    // The client's SYN-ACK arrives one round trip after its SYN: nothing it sends can
    // leave before then.
    tokio::join!(
        delayed_copy(cr, sw, accepted + RTT),
        delayed_copy(sr, cw, accepted)
    );
}

/// Copies `r` to `w`, each chunk (and the EOF) written `ONE_WAY` after it was read (or
/// after `not_before`): a latency, not a bandwidth limit, so chunks in flight overlap.
async fn delayed_copy(
    mut r: OwnedReadHalf,
    mut w: OwnedWriteHalf,
    not_before: tokio::time::Instant,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = r.read(&mut buf).await.unwrap_or(0);
            let at = tokio::time::Instant::now().max(not_before) + ONE_WAY;
            if tx.send((at, buf[..n].to_vec())).is_err() || n == 0 {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if chunk.is_empty() {
                let _ = w.shutdown().await;
                return;
            }
            if w.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(reader, writer);
}

/// Where each route's client connects: the relays' addresses.
struct Hops {
    origin: SocketAddr,
    proxy: SocketAddr,
    socks: SocketAddr,
    h2_proxy: SocketAddr,
}

type Stack = AlpnDispatch<TlsConnect<ProxyConnect<HttpConnector>>, Body>;

impl Hops {
    /// The URL fetched on `route`: the origin through the relay on the direct route, the
    /// origin itself (behind the proxy) otherwise.
    fn url(&self, route: Route, env: &Env) -> String {
        match route {
            Route::Direct => format!("https://localhost:{}{PATH}", self.origin.port()),
            _ => format!("{}{PATH}", env.origin_url),
        }
    }

    /// The proxy URL, through the relay.
    fn proxy_url(&self, route: Route) -> Option<String> {
        match route {
            Route::Direct => None,
            Route::Connect | Route::ConnectOptimistic => Some(format!("http://{}", self.proxy)),
            Route::Socks5 => Some(format!("socks5://{}", self.socks)),
            Route::Socks5h | Route::Socks5hPipelined | Route::Socks5hOptimistic => {
                Some(format!("socks5h://{}", self.socks))
            }
            Route::HttpsH1
            | Route::HttpsH2Fresh
            | Route::HttpsH2Reused
            | Route::HttpsH1Optimistic
            | Route::HttpsH2FreshOptimistic
            | Route::HttpsH2ReusedOptimistic => Some(format!("https://{}", self.h2_proxy)),
        }
    }

    /// This crate's stack for `route`, as the crate's docs write it.
    fn stack(
        &self,
        route: Route,
        target_tls: &Arc<ClientConfig>,
        proxy_tls: &Arc<ClientConfig>,
    ) -> Result<Stack> {
        let layer = match (route, self.proxy_url(route)) {
            (_, None) => ProxyConnectLayer::direct(),
            (Route::Connect | Route::Socks5 | Route::Socks5h, Some(url)) => {
                ProxyConnectLayer::new(Proxy::new(&url)?)
            }
            (Route::ConnectOptimistic, Some(url)) => {
                ProxyConnectLayer::new(Proxy::new(&url)?.with_optimistic_data(true))
            }
            (Route::Socks5hPipelined, Some(url)) => {
                ProxyConnectLayer::new(Proxy::new(&url)?.with_socks_pipelining(true))
            }
            (Route::Socks5hOptimistic, Some(url)) => ProxyConnectLayer::new(
                Proxy::new(&url)?
                    .with_socks_pipelining(true)
                    .with_optimistic_data(true),
            ),
            (_, Some(url)) => {
                let mode = match route {
                    Route::HttpsH1 | Route::HttpsH1Optimistic => Http2Mode::Never,
                    _ => Http2Mode::Required,
                };
                let proxy = Proxy::new(&url)?
                    .with_http2(mode)
                    .with_optimistic_data(route.is_optimistic());
                ProxyConnectLayer::new(proxy).with_proxy_tls(Arc::clone(proxy_tls))
            }
        };
        Ok(ServiceBuilder::new()
            .layer(AlpnDispatchLayer::new())
            .layer(TlsLayer::new(Arc::clone(target_tls)))
            .layer(layer)
            .service(HttpConnector::new()))
    }
}

/// Connects and sends the GET; returns the connection and the time to the response head.
async fn ttfb(stack: &mut Stack, url: &Uri) -> Result<(HttpConnection<Body>, Duration)> {
    let t0 = Instant::now();
    let mut conn = stack.ready().await?.call(url.clone()).await?;
    let res = conn
        .send_request(Request::get(PATH).body(Body::new())?)
        .await?;
    let t = t0.elapsed();
    // The body, and with it the TLS 1.3 session tickets, before the next sample.
    drain(res.into_body()).await?;
    Ok((conn, t))
}

/// The median over `samples` of this crate's time to first byte on `route`; with
/// `resume`, after one warm-up connection whose sessions (target and proxy) the samples
/// resume. Also returns whether every sample's target TLS matched `resume`.
async fn ours(
    hops: &Hops,
    env: &Env,
    route: Route,
    resume: bool,
    samples: usize,
) -> Result<(Duration, bool)> {
    let config = || -> Result<Arc<ClientConfig>> {
        let mut c = client_config(&env.ca_pem, Vec::new())?;
        if !resume {
            c.resumption = Resumption::disabled();
        }
        Ok(Arc::new(c))
    };
    let (target_tls, proxy_tls) = (config()?, config()?);
    let url: Uri = hops.url(route, env).parse()?;
    let mut shared = hops.stack(route, &target_tls, &proxy_tls)?;
    // The pooled route keeps its first tunnel (and so the proxy connection); the others
    // drop it, keeping only the sessions.
    let _keep = match route.is_pooled() || resume {
        true => Some(ttfb(&mut shared, &url).await?.0),
        false => None,
    };
    let mut times = Vec::with_capacity(samples);
    let mut ok = true;
    for _ in 0..samples {
        let (conn, t) = match route.is_pooled() {
            true => ttfb(&mut shared, &url).await?,
            // A new layer: a new pool, so a fresh proxy connection.
            false => ttfb(&mut hops.stack(route, &target_tls, &proxy_tls)?, &url).await?,
        };
        let info = conn.info();
        ok &= info.is_resumed() == resume && info.route().is_h2_tunnel() == route.is_h2();
        if route.is_pooled() {
            ok &= info.shared_tunnels().unwrap_or(0) >= 2;
        }
        times.push(t);
    }
    Ok((median(&mut times), ok))
}

/// curl's `time_starttransfer`, the median over `samples` runs, or why not measured. On the
/// pooled route, the second of two transfers in one curl process through the https://
/// proxy (to `localhost` then `127.0.0.1`, so the second needs a tunnel of its own): curl
/// 7.88 speaks HTTP/1.1 to proxies, one tunnel per proxy connection.
fn curl(
    hops: &Hops,
    env: &Env,
    route: Route,
    samples: usize,
    ca: &str,
) -> Result<Duration, String> {
    if route == Route::HttpsH2Fresh {
        return Err("curl 7.88 has no HTTP/2 to proxies (--proxy-http2 is 8.1+)".into());
    }
    if route == Route::Socks5hPipelined {
        return Err("curl does not pipeline SOCKS5 (its row is the one above)".into());
    }
    if route.is_optimistic() {
        return Err("curl waits for the proxy's answer (its rows are above)".into());
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-w", "%{time_starttransfer}\\n", "--cacert", ca]);
        if let Some(proxy) = hops.proxy_url(route) {
            cmd.args(["-x", &proxy]);
            if matches!(
                route,
                Route::HttpsH1 | Route::HttpsH2Reused | Route::HttpsH1Optimistic
            ) {
                cmd.args(["--proxy-cacert", ca]);
            }
        }
        cmd.args(["-o", "/dev/null", &hops.url(route, env)]);
        if route == Route::HttpsH2Reused {
            let second = env.origin_url.replace("//localhost:", "//127.0.0.1:");
            cmd.args(["-o", "/dev/null", &format!("{second}{PATH}")]);
        }
        let out = cmd.output().map_err(|e| format!("curl: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let secs: f64 = stdout
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .parse()
            .map_err(|_| format!("curl: {}", String::from_utf8_lossy(&out.stderr)))?;
        if !out.status.success() || secs == 0.0 {
            return Err(format!("curl failed: {:?}", out.status));
        }
        times.push(Duration::from_secs_f64(secs));
    }
    Ok(median(&mut times))
}

/// The curl binary's first `--version` line, or None when there is none.
fn curl_version() -> Option<String> {
    let out = Command::new("curl").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| text.lines().next().unwrap_or("").to_owned())
}

/// Every route: this crate full and resumed, then curl. Runs outside any runtime (the
/// relays have their own; `rt` is the clients').
pub fn measure(args: &Args, env: &Env, rt: &tokio::runtime::Runtime) -> Result<Vec<RttRow>> {
    let relays = Relays::new()?;
    let origin: SocketAddr = format!(
        "127.0.0.1:{}",
        env.authority.rsplit(':').next().unwrap_or("")
    )
    .parse()?;
    let h2_proxy: SocketAddr = env.h2_proxy_url.trim_start_matches("https://").parse()?;
    let hops = Hops {
        origin: relays.start(origin)?,
        proxy: relays.start(env.proxy_addr)?,
        socks: relays.start(env.socks_addr)?,
        h2_proxy: relays.start(h2_proxy)?,
    };
    let version = curl_version();
    let ca = std::env::temp_dir().join(format!("tower-tunnel-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &env.ca_pem)?;
    let ca = ca.to_string_lossy().into_owned();
    println!();
    println!(
        "Round trips: relay delay {} ms each way (RTT {} ms), {} sample(s) per cell, curl: {}",
        ONE_WAY.as_millis(),
        RTT.as_millis(),
        args.rtt_samples,
        version
            .as_deref()
            .unwrap_or("not found, its column skipped")
    );
    let mut rows = Vec::new();
    for route in Route::ALL {
        let (full, full_ok) = rt.block_on(ours(&hops, env, route, false, args.rtt_samples))?;
        let (resumed, resumed_ok) = rt.block_on(ours(&hops, env, route, true, args.rtt_samples))?;
        if !full_ok {
            println!(
                "  WARNING: {}: a full-handshake sample resumed or took another route",
                route.name()
            );
        }
        let curl = match version {
            Some(_) => curl(&hops, env, route, args.rtt_samples, &ca),
            None => Err("curl not installed".into()),
        };
        rows.push(RttRow {
            route,
            full,
            resumed,
            resumed_ok,
            curl,
        });
    }
    let _ = std::fs::remove_file(&ca);
    Ok(rows)
}

/// `3 (151 ms)`: round trips (time / RTT, rounded) and the raw time.
fn cell(d: Duration) -> String {
    let rt = d.as_secs_f64() / RTT.as_secs_f64();
    format!("{:.0} ({:.0} ms)", rt.round(), d.as_secs_f64() * 1000.0)
}

pub fn print_table(rows: &[RttRow]) {
    println!();
    println!(
        "### Round trips to the first response byte (RTT {} ms; round trips = time / RTT, rounded)",
        RTT.as_millis()
    );
    println!();
    println!("| route | textbook minimum | tower-tunnel, full TLS | tower-tunnel, resumed TLS | curl (full TLS) |");
    println!("|---|---|---|---|---|");
    for r in rows {
        let mark = if r.resumed_ok { "" } else { " (not resumed!)" };
        let resumed = format!("{}{mark}", cell(r.resumed));
        let curl = match &r.curl {
            Ok(d) if r.route == Route::HttpsH2Reused => {
                format!(
                    "{}, its 2nd tunnel: a new HTTP/1.1 proxy connection",
                    cell(*d)
                )
            }
            Ok(d) => cell(*d),
            Err(why) => format!("n/a: {why}"),
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            r.route.name(),
            r.route.textbook(),
            cell(r.full),
            resumed,
            curl
        );
    }
}

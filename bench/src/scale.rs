//! Memory at scale: N concurrent idle tunnels in one client process, over one pool of
//! HTTP/2 connections to an `https://` proxy, and over HTTP/1.1 `CONNECT` to an
//! `http://` proxy, each tunnel carrying TLS to the target and an HTTP/2 connection with
//! one request done. Resident memory and descriptors per tunnel.
//!
//! Every party runs in a process of its own (`--scale-serve`, `--scale-probe`): a
//! process may hold 20,000 descriptors here (`ulimit -Hn`; raising it needs
//! `CAP_SYS_RESOURCE`), and 10,000 HTTP/1.1 tunnels take 10,000 in the client, 20,000
//! in a proxy (client side and upstream) and 10,000 in the origin. So the origin has a
//! process, and the HTTP/1.1 tunnels alternate between two proxy processes.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use std::sync::Arc;
use tower::{Service, ServiceBuilder, ServiceExt};

use tower_tunnel::test_util::{TestH2Proxy, TestOrigin, TestProxy};
use tower_tunnel::{
    AlpnDispatchLayer, Http2Mode, HttpConnection, Proxy, ProxyConnectLayer, Route, TlsLayer,
};

use crate::alloc::rss_kib;
use crate::util::{current_thread_runtime, Result};

type Body = Empty<Bytes>;

/// The proxy's `SETTINGS_MAX_CONCURRENT_STREAMS`, as nghttpx and most proxies advertise.
const H2_MAX_STREAMS: u32 = 100;
/// Tunnels opened at once while filling up.
const BATCH: usize = 100;
/// The fixtures' CA certificates (PEM), for the probe.
const CAS_VAR: &str = "BENCH_SCALE_CAS";
/// Each phase of each tunnel.
const PHASE_TIMEOUT: Duration = Duration::from_secs(30);

/// One row: how the tunnels reach the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleRoute {
    /// CONNECT streams on pooled HTTP/2 connections to an `https://` proxy.
    H2,
    /// One TCP connection and an HTTP/1.1 CONNECT per tunnel, to an `http://` proxy.
    H1,
}

impl ScaleRoute {
    const ALL: [ScaleRoute; 2] = [ScaleRoute::H2, ScaleRoute::H1];

    fn arg(self) -> &'static str {
        match self {
            ScaleRoute::H2 => "h2",
            ScaleRoute::H1 => "h1",
        }
    }

    pub fn parse(s: &str) -> Result<ScaleRoute> {
        Self::ALL
            .into_iter()
            .find(|r| r.arg() == s)
            .ok_or_else(|| format!("unknown scale route {s}").into())
    }

    fn name(self) -> &'static str {
        match self {
            ScaleRoute::H2 => "HTTP/2 CONNECT streams, pooled connections to an https:// proxy",
            ScaleRoute::H1 => "HTTP/1.1 CONNECT, a TCP connection per tunnel to an http:// proxy",
        }
    }
}

/// `--scale-serve origin|h2proxy|proxy`: starts one fixture, prints its address or URL,
/// and serves until its stdin closes.
pub fn serve(what: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Kept alive until stdin closes.
        let mut keep: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        let line = match what {
            "origin" => {
                let origin = TestOrigin::start().await?;
                let port = origin.addr().port();
                keep.push(Box::new(origin));
                port.to_string()
            }
            "h2proxy" => {
                let proxy = TestH2Proxy::builder()
                    .max_concurrent_streams(H2_MAX_STREAMS)
                    .start()
                    .await?;
                let url = proxy.url();
                keep.push(Box::new(proxy));
                url
            }
            "proxy" => {
                let proxy = TestProxy::start().await?;
                let url = proxy.url();
                keep.push(Box::new(proxy));
                url
            }
            other => return Err(format!("unknown fixture {other}").into()),
        };
        // Then the CA of this process's test certificate: each process makes its own.
        println!("{line}\n{}", tower_tunnel::test_util::ca_pem().trim_end());
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await?;
        drop(keep);
        Ok(())
    })
}

fn stack(
    proxy: Proxy,
    tls: Arc<rustls::ClientConfig>,
) -> impl Service<Uri, Response = HttpConnection<Body>, Error = tower_tunnel::Error, Future: Send>
       + Clone
       + Send
       + 'static {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new().with_handshake_timeout(Some(PHASE_TIMEOUT)))
        .layer(TlsLayer::new(tls.clone()).with_handshake_timeout(Some(PHASE_TIMEOUT)))
        .layer(
            ProxyConnectLayer::new(proxy)
                .with_proxy_tls(tls)
                .with_dial_timeout(Some(PHASE_TIMEOUT))
                .with_connect_timeout(Some(PHASE_TIMEOUT)),
        )
        .service(HttpConnector::new())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// A tunnel with one `GET /` done on it.
async fn open<S>(connect: S, uri: Uri) -> std::result::Result<HttpConnection<Body>, String>
where
    S: Service<Uri, Response = HttpConnection<Body>, Error = tower_tunnel::Error>,
{
    open_inner(connect, uri).await.map_err(|e| e.to_string())
}

async fn open_inner<S>(connect: S, uri: Uri) -> Result<HttpConnection<Body>>
where
    S: Service<Uri, Response = HttpConnection<Body>, Error = tower_tunnel::Error>,
{
    let mut conn = connect.oneshot(uri).await?;
    let res = conn
        .send_request(Request::get("/").body(Body::new())?)
        .await?;
    res.into_body().collect().await?;
    Ok(conn)
}

/// `--scale-probe ROUTE COUNT ORIGIN_PORT PROXY_URL...`: opens COUNT idle tunnels and
/// prints `rss_before rss_after fds_before fds_after proxy_connections seconds`.
pub fn probe(route: ScaleRoute, count: usize, origin_port: u16, proxies: &[String]) -> Result<()> {
    let rt = current_thread_runtime()?;
    // The fixtures' CAs, one per process.
    let tls = Arc::new(crate::tls::client_config(
        &std::env::var(CAS_VAR)?,
        Vec::new(),
    )?);
    rt.block_on(async {
        let uri: Uri = format!("https://localhost:{origin_port}/").parse()?;
        let stacks: Vec<_> = proxies
            .iter()
            .map(|url| {
                let proxy = Proxy::new(url)?;
                let proxy = match route {
                    ScaleRoute::H2 => proxy.with_http2(Http2Mode::Required),
                    ScaleRoute::H1 => proxy,
                };
                Ok(stack(proxy, tls.clone()))
            })
            .collect::<Result<_>>()?;
        // Warm up (lazy statics, session caches, the runtime's buffers); for HTTP/2 one
        // tunnel stays, so its pooled connection is in the baseline.
        let mut warm = Vec::new();
        for s in &stacks {
            for _ in 0..3 {
                warm.push(open(s.clone(), uri.clone()).await?);
            }
        }
        warm.truncate(1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        unsafe { libc::malloc_trim(0) };
        let (rss0, fds0) = (rss_kib(), open_fds());
        let started = Instant::now();
        let mut kept = Vec::with_capacity(count);
        while kept.len() < count {
            let mut set = tokio::task::JoinSet::new();
            for i in kept.len()..(kept.len() + BATCH).min(count) {
                let s = stacks[i % stacks.len()].clone();
                let uri = uri.clone();
                set.spawn(open(s, uri));
            }
            while let Some(conn) = set.join_next().await {
                kept.push(conn??);
            }
        }
        let secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (rss1, fds1) = (rss_kib(), open_fds());
        // A fresh connection to the proxy starts at stream 1.
        let conns = kept
            .iter()
            .filter(|c| matches!(c.info().route(), Route::H2Tunnel { stream: 1, .. }))
            .count();
        println!("{rss0} {rss1} {fds0} {fds1} {conns} {secs:.1}");
        drop(kept);
        drop(warm);
        Ok(())
    })
}

/// A fixture process, stopped when dropped (its stdin closes).
struct Fixture {
    child: Child,
    _out: BufReader<ChildStdout>,
    line: String,
    ca_pem: String,
}

impl Fixture {
    fn start(what: &str) -> Result<Fixture> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--scale-serve", what])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim().is_empty() {
            return Err(format!("the {what} fixture did not start").into());
        }
        let mut ca_pem = String::new();
        // Bounded: a certificate is a few dozen lines.
        for _ in 0..200 {
            let mut l = String::new();
            if out.read_line(&mut l)? == 0 {
                break;
            }
            ca_pem.push_str(&l);
            if l.starts_with("-----END") {
                break;
            }
        }
        Ok(Fixture {
            child,
            _out: out,
            line: line.trim().to_owned(),
            ca_pem,
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// One row's figures.
pub struct ScaleRow {
    route: ScaleRoute,
    count: usize,
    rss_per_tunnel_kib: f64,
    rss_total_mib: f64,
    fds_per_tunnel: f64,
    proxy_connections: usize,
    seconds: f64,
}

/// Runs every row with `count` tunnels, each in fresh processes.
pub fn measure(count: usize) -> Result<Vec<ScaleRow>> {
    let mut rows = Vec::new();
    for route in ScaleRoute::ALL {
        eprintln!("scale: {count} idle tunnels, {}", route.name());
        let origin = Fixture::start("origin")?;
        let proxies: Vec<Fixture> = match route {
            ScaleRoute::H2 => vec![Fixture::start("h2proxy")?],
            ScaleRoute::H1 => vec![Fixture::start("proxy")?, Fixture::start("proxy")?],
        };
        let mut args = vec![
            "--scale-probe".to_owned(),
            route.arg().to_owned(),
            count.to_string(),
            origin.line.clone(),
        ];
        args.extend(proxies.iter().map(|p| p.line.clone()));
        let cas: String = std::iter::once(&origin)
            .chain(&proxies)
            .map(|f| f.ca_pem.as_str())
            .collect();
        let out = Command::new(std::env::current_exe()?)
            .args(&args)
            .env(CAS_VAR, cas)
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            return Err(format!("scale probe {} failed", route.arg()).into());
        }
        let text = String::from_utf8(out.stdout)?;
        let v: Vec<f64> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if v.len() != 6 {
            return Err(format!("scale probe printed {text:?}").into());
        }
        rows.push(ScaleRow {
            route,
            count,
            rss_per_tunnel_kib: (v[1] - v[0]) / count as f64,
            rss_total_mib: (v[1] - v[0]) / 1024.0,
            fds_per_tunnel: (v[3] - v[2]) / count as f64,
            // Plus the warm-up's, which the baseline holds.
            proxy_connections: v[4] as usize + usize::from(route == ScaleRoute::H2),
            seconds: v[5],
        });
    }
    Ok(rows)
}

pub fn print_table(rows: &[ScaleRow]) {
    println!();
    println!("Memory at scale: idle tunnels in one client process (TLS to the target and an HTTP/2 connection in each, one GET done)");
    println!();
    println!("| route | tunnels | RSS per tunnel | RSS added | descriptors per tunnel | HTTP/2 connections to the proxy | time to open |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let conns = match r.route {
            ScaleRoute::H2 => r.proxy_connections.to_string(),
            ScaleRoute::H1 => "-".to_owned(),
        };
        println!(
            "| {} | {} | {:.1} KiB | {:.1} MiB | {:.2} | {} | {:.1} s |",
            r.route.name(),
            r.count,
            r.rss_per_tunnel_kib,
            r.rss_total_mib,
            r.fds_per_tunnel,
            conns,
            r.seconds
        );
    }
}

//! The fixtures, in a child process (`--serve`): the http:// CONNECT proxy, the TLS origin,
//! an https:// CONNECT proxy (h2 and http/1.1) and a SOCKS5 proxy, and the parent's handle
//! on them.

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tower_tunnel::test_util::{TestH2Proxy, TestOrigin, TestProxy};

use crate::tls::{H2, HTTP11};
use crate::util::{Body, Result};

/// Counters of an https:// CONNECT proxy: TLS connections, those that spoke h2, CONNECTs.
#[derive(Default)]
struct H2ProxyCounters {
    connections: AtomicU64,
    h2_connections: AtomicU64,
    streams: AtomicU64,
}

/// The bench's own https:// CONNECT proxy (ALPN h2 and http/1.1), the same as
/// `TestH2Proxy` (same certificate, same hyper server builders, same CONNECT handling, and
/// `TCP_NODELAY` on its sockets towards the target, as `TestProxy`'s). It was written when
/// `TestH2Proxy` left Nagle on there (about 40 ms per tunnel); `--fixture-h2-proxy` runs
/// `TestH2Proxy` instead, for comparison.
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

/// A loopback SOCKS5 proxy (RFC 1928, no authentication, `CONNECT` only): every target
/// address is taken as loopback (`localhost`, `::1` and `127.0.0.1` all reach
/// `127.0.0.1:PORT`), which is all the bench's targets are. `tower_tunnel::test_util` has
/// no SOCKS server.
async fn start_socks5() -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        // Ends with the child process.
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socks5_session(tcp).await;
            });
        }
    });
    Ok(addr)
}

async fn socks5_session(mut tcp: TcpStream) -> Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let _ = tcp.set_nodelay(true);
    // Greeting: VER NMETHODS METHODS..; choose 0x00, no authentication.
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    tcp.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&0) {
        tcp.write_all(&[5, 0xff]).await?;
        return Err("no acceptable SOCKS5 method".into());
    }
    tcp.write_all(&[5, 0]).await?;
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT.
    let mut req = [0u8; 4];
    tcp.read_exact(&mut req).await?;
    let addr_len = match req[3] {
        1 => 4,
        4 => 16,
        3 => usize::from(tcp.read_u8().await?),
        _ => return Err("bad SOCKS5 address type".into()),
    };
    let mut addr = vec![0u8; addr_len + 2];
    tcp.read_exact(&mut addr).await?;
    let port = u16::from_be_bytes([addr[addr_len], addr[addr_len + 1]]);
    let upstream = match req[1] {
        1 => TcpStream::connect(("127.0.0.1", port)).await.ok(),
        _ => None,
    };
    let Some(mut upstream) = upstream else {
        // REP 0x05: connection refused (or 0x07, command not supported: both end it).
        tcp.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    let _ = upstream.set_nodelay(true);
    tcp.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await?;
    Ok(())
}

/// The child process: starts the fixtures, prints where they are and the CA, then answers
/// `stats` lines on stdin with its counters until stdin closes.
pub fn serve(fixture_h2_proxy: bool) -> Result<()> {
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
        let socks_addr = start_socks5().await?;
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
        writeln!(out, "{socks_addr}")?;
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
pub struct Env {
    pub proxy_url: String,
    pub proxy_addr: SocketAddr,
    pub origin_url: String,
    pub authority: String,
    pub ca_pem: String,
    /// `https://127.0.0.1:PORT` of the `TestH2Proxy` (ALPN h2 and http/1.1).
    pub h2_proxy_url: String,
    /// `127.0.0.1:PORT` of the SOCKS5 proxy.
    pub socks_addr: SocketAddr,
}

impl Env {
    fn new(
        proxy_url: String,
        origin_url: String,
        ca_pem: String,
        h2_proxy_url: String,
        socks_addr: &str,
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
            socks_addr: socks_addr.parse()?,
        })
    }

    /// The environment variables that hand it to a probe process (`from_vars` reads them).
    pub fn vars(&self) -> [(&'static str, String); 5] {
        [
            ("BENCH_PROXY", self.proxy_url.clone()),
            ("BENCH_ORIGIN", self.origin_url.clone()),
            ("BENCH_CA", self.ca_pem.clone()),
            ("BENCH_H2_PROXY", self.h2_proxy_url.clone()),
            ("BENCH_SOCKS", self.socks_addr.to_string()),
        ]
    }

    pub fn from_vars() -> Result<Env> {
        Env::new(
            std::env::var("BENCH_PROXY")?,
            std::env::var("BENCH_ORIGIN")?,
            std::env::var("BENCH_CA")?,
            std::env::var("BENCH_H2_PROXY")?,
            &std::env::var("BENCH_SOCKS")?,
        )
    }
}

/// The fixtures' child process, and the pipes to ask it for its counters.
pub struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Counters of the fixtures: proxy connections, origin connections, TLS handshakes,
/// resumed handshakes; then the https:// proxy's TLS connections, those that spoke h2, and
/// CONNECT requests (streams or HTTP/1.1 requests).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats(pub [u64; 7]);

impl Server {
    pub fn start(fixture_h2_proxy: bool) -> Result<(Server, Env)> {
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
        let socks_addr = line()?;
        let mut ca_pem = String::new();
        loop {
            let l = line()?;
            if l == "END" || l.is_empty() {
                break;
            }
            ca_pem.push_str(&l);
            ca_pem.push('\n');
        }
        let env = Env::new(proxy_url, origin_url, ca_pem, h2_proxy_url, &socks_addr)?;
        Ok((
            Server {
                child,
                stdin,
                stdout,
            },
            env,
        ))
    }

    pub fn stats(&mut self) -> Result<Stats> {
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

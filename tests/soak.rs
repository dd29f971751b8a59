//! Soak: thousands of tunneled HTTPS requests through the real nghttpx (HTTP/2 `CONNECT`,
//! squid behind it) and squid (HTTP/1.1 `CONNECT`) of the interop lab, while nghttpx is
//! reloaded (a graceful `GOAWAY`) and squid restarted (tunnels cut), each a given number
//! of times. Every request ends in a success or a typed failure that a restart in flight
//! explains; none is lost; descriptors come back once the load ends.
//!
//! Needs the lab (`.ci/interop/setup.sh`, then `source $INTEROP_DIR/ports.env`), so it is
//! ignored in a plain `cargo test`. The short form (CI, `.ci/run`):
//!
//! ```text
//! cargo test --all-features --test soak -- --ignored --nocapture
//! ```
//!
//! The full form (BENCHMARKS.md has its table):
//!
//! ```text
//! SOAK_REQUESTS=10000 SOAK_CONCURRENCY=200 SOAK_SECONDS=240 SOAK_RESTARTS=2 \
//!     cargo test --all-features --test soak -- --ignored --nocapture
//! ```

use std::collections::BTreeMap;
use std::env;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{client_config, TestOrigin, HELLO_BODY};
use tower_tunnel::{AlpnDispatchLayer, HttpConnection, Proxy, ProxyConnectLayer, TlsLayer};

type Body = Empty<Bytes>;

/// Each phase of the crate, and each request as a whole.
const PHASE_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A failure is explained by a restart when it ends within this long after one.
const RESTART_GRACE: Duration = Duration::from_secs(5);

fn var(name: &str, default: u64) -> u64 {
    env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn lab(name: &str) -> String {
    env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run .ci/interop/setup.sh and source $INTEROP_DIR/ports.env")
    })
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A client config trusting the PEM certificates in the file at `ca` (nghttpx's CA).
fn trusting(ca: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("a CA file") {
        roots.add(cert.expect("PEM certificates")).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

fn stack(
    proxy: Proxy,
    proxy_tls: Option<Arc<rustls::ClientConfig>>,
) -> impl Service<Uri, Response = HttpConnection<Body>, Error = tower_tunnel::Error, Future: Send>
       + Clone
       + Send
       + 'static {
    let mut route = ProxyConnectLayer::new(proxy)
        .with_dial_timeout(Some(PHASE_TIMEOUT))
        .with_connect_timeout(Some(PHASE_TIMEOUT));
    if let Some(tls) = proxy_tls {
        route = route.with_proxy_tls(tls);
    }
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new().with_handshake_timeout(Some(PHASE_TIMEOUT)))
        .layer(TlsLayer::new(client_config()).with_handshake_timeout(Some(PHASE_TIMEOUT)))
        .layer(route)
        .service(HttpConnector::new())
}

/// How one request ended.
enum Outcome {
    Ok {
        retried: bool,
    },
    /// Kind (the crate's `ErrorKind`, or where outside the crate it failed), message.
    Failed {
        kind: String,
        message: String,
    },
}

/// One tunnel: a fresh tunnel, `GET /` and its whole body, the tunnel held open for
/// `hold` (so that about `SOAK_CONCURRENCY` tunnels are open at any time, and restarts
/// hit open tunnels), then a second `GET /` on it.
async fn one<S>(connect: S, uri: Uri, hold: Duration) -> Outcome
where
    S: Service<Uri, Response = HttpConnection<Body>, Error = tower_tunnel::Error>,
{
    let mut conn = match connect.oneshot(uri).await {
        Ok(c) => c,
        Err(e) => return typed(e),
    };
    let retried = conn.info().is_h2_retried();
    if let Err(failed) = get(&mut conn).await {
        return failed;
    }
    tokio::time::sleep(hold).await;
    match get(&mut conn).await {
        Ok(()) => Outcome::Ok { retried },
        Err(failed) => failed,
    }
}

fn typed(e: tower_tunnel::Error) -> Outcome {
    Outcome::Failed {
        kind: format!("{:?}", e.kind()),
        message: e.to_string(),
    }
}

async fn get(conn: &mut HttpConnection<Body>) -> Result<(), Outcome> {
    let res = conn
        .send_request(Request::get("/").body(Body::new()).unwrap())
        .await
        .map_err(typed)?;
    if res.status() != 200 {
        return Err(Outcome::Failed {
            kind: "Status".into(),
            message: format!("{} from the origin, through {}", res.status(), conn.info()),
        });
    }
    match res.into_body().collect().await.map(|b| b.to_bytes()) {
        Ok(b) if b == HELLO_BODY.as_bytes() => Ok(()),
        Ok(_) => Err(Outcome::Failed {
            kind: "Body".into(),
            message: format!("a body other than the origin's, through {}", conn.info()),
        }),
        Err(e) => Err(Outcome::Failed {
            kind: "BodyRead".into(),
            message: format!("reading the body through {}: {e}", conn.info()),
        }),
    }
}

/// When a restart ran: from its start to its end, in time since the soak began.
#[derive(Clone, Debug)]
struct Event {
    what: String,
    from: Duration,
    to: Duration,
}

fn restart(action: &str, name: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/interop/restart.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .args([action, name])
        .status()
        .expect("run .ci/interop/restart.sh");
    assert!(status.success(), "restart.sh {action} {name}: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the interop lab (.ci/interop/setup.sh); .ci/run runs it with --ignored"]
async fn soak_through_nghttpx_and_squid_while_they_restart() {
    let requests = var("SOAK_REQUESTS", 500);
    let concurrency = var("SOAK_CONCURRENCY", 50) as usize;
    let seconds = var("SOAK_SECONDS", 15);
    let restarts = var("SOAK_RESTARTS", 1);
    let nghttpx = lab("NGHTTPX_URL");
    let squid = lab("SQUID_URL");
    let ca = lab("NGHTTPX_CA");

    let origin = TestOrigin::start().await.unwrap();
    let uri: Uri = origin.https_url().parse().unwrap();
    let (fds_start, rss_start) = (open_fds(), rss_kib());
    let peak_fds = Arc::new(AtomicU64::new(fds_start));
    let peak_rss = Arc::new(AtomicU64::new(rss_start));
    let started = Instant::now();

    // Descriptors and memory, sampled every 50 ms while the load runs.
    let sampler = {
        let (fds, rss) = (peak_fds.clone(), peak_rss.clone());
        tokio::spawn(async move {
            loop {
                fds.fetch_max(open_fds(), Ordering::Relaxed);
                rss.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // nghttpx reloaded and squid restarted `restarts` times each, alternating, spread
    // evenly over the run.
    let events = Arc::new(Mutex::new(Vec::<Event>::new()));
    let restarter = {
        let events = events.clone();
        tokio::spawn(async move {
            let total = restarts * 2;
            for n in 0..total {
                let at = Duration::from_secs(seconds) * (n as u32 + 1) / (total as u32 + 1);
                tokio::time::sleep_until((started + at).into()).await;
                let (action, name) = match n % 2 {
                    0 => ("reload", "nghttpx"),
                    _ => ("restart", "squid-open"),
                };
                let from = started.elapsed();
                tokio::task::spawn_blocking(move || restart(action, name))
                    .await
                    .unwrap();
                let event = Event {
                    what: format!("{action} {name}"),
                    from,
                    to: started.elapsed(),
                };
                eprintln!("soak: {event:?}");
                events.lock().unwrap().push(event);
            }
        })
    };

    // Every other request through each proxy; starts paced evenly over `seconds`, at
    // most `concurrency` in flight.
    let via_h2 = stack(Proxy::new(&nghttpx).unwrap(), Some(trusting(&ca)));
    let via_h1 = stack(Proxy::new(&squid).unwrap(), None);
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let hold = Duration::from_secs(seconds).mul_f64(concurrency as f64 / requests as f64);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..requests {
        let at = Duration::from_secs(seconds).mul_f64(i as f64 / requests as f64);
        tokio::time::sleep_until((started + at).into()).await;
        let permit = slots.clone().acquire_owned().await.unwrap();
        let uri = uri.clone();
        let (h2, h1) = (via_h2.clone(), via_h1.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let from = started.elapsed();
            let route = if i % 2 == 0 { "nghttpx" } else { "squid" };
            let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, async {
                match route {
                    "nghttpx" => one(h2, uri, hold).await,
                    _ => one(h1, uri, hold).await,
                }
            })
            .await
            {
                Ok(o) => o,
                Err(_) => Outcome::Failed {
                    kind: "RequestTimeout".into(),
                    message: format!("no end within {REQUEST_TIMEOUT:?} (hold included)"),
                },
            };
            (route, from, started.elapsed(), outcome)
        });
    }
    let mut results = Vec::with_capacity(requests as usize);
    while let Some(r) = tasks.join_next().await {
        results.push(r.expect("a request task panicked"));
    }
    restarter.await.unwrap();
    let load_time = started.elapsed();

    // The load has ended: drop the pools, let the runtime close what they held.
    drop((via_h2, via_h1));
    let fds_settle = Instant::now();
    while open_fds() > fds_start + 8 && fds_settle.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sampler.abort();
    let (fds_end, rss_end) = (open_fds(), rss_kib());

    let events = events.lock().unwrap().clone();
    let mut ok = 0u64;
    let mut retried = 0u64;
    let mut by_route: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut failures: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for (route, from, to, outcome) in &results {
        let counts = by_route.entry(route).or_default();
        match outcome {
            Outcome::Ok { retried: r } => {
                ok += 1;
                counts.0 += 1;
                retried += u64::from(*r);
            }
            Outcome::Failed { kind, message } => {
                counts.1 += 1;
                let entry = failures
                    .entry(format!("{route}: {kind}"))
                    .or_insert_with(|| (0, message.clone()));
                entry.0 += 1;
                let explained = events
                    .iter()
                    .any(|e| *from <= e.to + RESTART_GRACE && *to >= e.from);
                if !explained {
                    unexplained.push(format!("{route} {from:?}..{to:?} [{kind}] {message}"));
                }
            }
        }
    }
    let failed = results.len() as u64 - ok;

    println!();
    println!(
        "soak: {requests} tunnels (2 requests each, {hold:.1?} apart), {concurrency} concurrent, over {load_time:.1?} (paced over {seconds} s)"
    );
    for e in &events {
        println!(
            "  {} at {:.1?} (took {:.1?})",
            e.what,
            e.from,
            e.to - e.from
        );
    }
    println!("| | count |");
    println!("|---|---|");
    println!("| requests | {requests} |");
    println!("| succeeded | {ok} |");
    println!(
        "| failed, typed, during a restart | {} |",
        failed - unexplained.len() as u64
    );
    println!("| failed, unexplained | {} |", unexplained.len());
    println!("| succeeded after a CONNECT sent again (GOAWAY / REFUSED_STREAM) | {retried} |");
    println!(
        "| lost (no outcome) | {} |",
        requests - results.len() as u64
    );
    for (route, (o, f)) in &by_route {
        println!("| via {route}: succeeded / failed | {o} / {f} |");
    }
    for (kind, (n, example)) in &failures {
        println!("| failure {kind} (e.g. `{example}`) | {n} |");
    }
    println!(
        "| descriptors start / peak / end | {fds_start} / {} / {fds_end} |",
        peak_fds.load(Ordering::Relaxed)
    );
    println!(
        "| VmRSS KiB start / peak / end | {rss_start} / {} / {rss_end} |",
        peak_rss.load(Ordering::Relaxed)
    );
    for u in unexplained.iter().take(20) {
        println!("unexplained: {u}");
    }

    assert_eq!(results.len() as u64, requests, "requests lost");
    assert!(
        unexplained.is_empty(),
        "{} failures no restart explains",
        unexplained.len()
    );
    // Both routes came back after the last restart.
    let last = events.iter().map(|e| e.to).max().unwrap_or_default();
    for route in ["nghttpx", "squid"] {
        assert!(
            results.iter().any(|(r, from, _, o)| *r == route
                && *from > last
                && matches!(o, Outcome::Ok { .. })),
            "no request via {route} succeeded after the last restart"
        );
    }
    assert!(
        fds_end <= fds_start + 8,
        "descriptors grew: {fds_start} at the start, {fds_end} after the load"
    );
}

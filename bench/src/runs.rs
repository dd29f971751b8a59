//! The measuring runs: setup (rotating through the clients connection by connection), the
//! https:// proxy comparison, TCP_NODELAY on and off, per-phase figures, throughput, and the
//! allocation traces.

use std::time::{Duration, Instant};

use http::{Request, Uri};

use crate::alloc::{self, allocs, summarize, Marks};
use crate::args::Args;
use crate::clients::{
    Client, ClientKind, Floor, HyperUtil, Open, Ours, Target, ViaHttps, ViaRoute,
};
use crate::fixtures::{Env, Server};
use crate::report::{median, p99, print_phases, PhaseRow, Row};
use crate::tls::Proto;
use crate::util::{drain, settle, Body, Result};

#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub total: Duration,
    pub allocs: u64,
    pub bytes: usize,
    pub resumed: Option<bool>,
}

/// Connect, `GET path`, read the whole body; the connection is dropped afterwards (and the
/// returned `Open` lets the idle probe keep it instead).
pub async fn run(
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

/// What an alternating setup run measured, per client: the setup times after the
/// warm-up, the allocations they made, and how many resumed their TLS session.
struct Rotation {
    times: Vec<Vec<Duration>>,
    alloc_sum: Vec<u64>,
    resumed: Vec<usize>,
}

/// `warmup + n` rounds of one fresh connection per client, the starting client rotating
/// every round, so that drift hits every client alike. `inspect` sees each client's
/// connection (by its place in `clients`) before it is dropped.
async fn rotate<K>(
    args: &Args,
    clients: &mut [(K, Proto, Client)],
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

/// The clients whose connection splits into phases, each layer or step handed what the one
/// below made (for the phase table and the allocation traces).
struct Phased {
    ours: Ours,
    floor: Floor,
    hu: HyperUtil,
}

impl Phased {
    fn new(env: &Env, proto: Proto) -> Result<Phased> {
        Ok(Phased {
            ours: Ours::new(env, proto)?,
            floor: Floor::new(env, proto)?,
            hu: HyperUtil::new(env, proto)?,
        })
    }

    /// One connection of `kind`, phase by phase (`marks` gets a mark after each), and
    /// `GET path` on it; returns the connection and the body's length.
    async fn connect_get(
        &mut self,
        kind: ClientKind,
        t: &Target,
        path: &str,
        h2_uri: &Uri,
        marks: &mut Marks,
    ) -> Result<(Open, usize)> {
        let mut conn = match kind {
            ClientKind::TowerTunnel => Open::Ours(self.ours.connect_phased(&t.url, marks).await?),
            ClientKind::Floor => Open::Hyper(self.floor.connect(marks).await?.0),
            ClientKind::HyperUtil => Open::Hyper(self.hu.connect_phased(&t.url, marks).await?),
            ClientKind::Reqwest => return Err("reqwest's connections do not split".into()),
        };
        let n = conn.get(path, t, h2_uri).await?;
        Ok((conn, n))
    }
}

/// Every run but idle memory: TLS resumption through our stack, setup, the https:// proxy
/// comparison, phases and throughput. Returns the rows of the main table (by `ClientKind`)
/// of the https:// proxy table (by `ViaRoute`) and of the TCP_NODELAY table (by
/// `NAGLE_ROWS`); prints the phase table.
pub async fn measure(
    args: &Args,
    env: &Env,
    server: &mut Server,
) -> Result<(Vec<Row>, Vec<Row>, Vec<Row>)> {
    let t = Target::new(env)?;
    let setup_path = "/bytes/1024";
    let setup_uri = t.h2_uri(setup_path)?;

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
    let mut clients: Vec<(ClientKind, Proto, Client)> = Vec::new();
    for kind in ClientKind::ALL {
        for proto in Proto::ALL {
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

    let mut rows = vec![Row::default(); ClientKind::ALL.len()];
    for (c, (kind, proto, client)) in clients.iter().enumerate() {
        let pi = proto.column();
        let row = &mut rows[kind.index()];
        row.setup_med[pi] = Some(median(&mut times[c]));
        row.setup_p99[pi] = Some(p99(&mut times[c]));
        row.allocs[pi] = Some(alloc_sum[c] as f64 / args.n as f64);
        if !matches!(client, Client::Reqwest(_)) {
            row.resumed[pi] = Some(resumed[c] as f64 / args.n as f64);
        }
    }

    let via_rows = measure_via_https(args, env, server, &t, setup_path, &setup_uri).await?;
    let nagle_rows = measure_nagle(args, env, server, &t, setup_path, &setup_uri).await?;

    // -- Phases: allocations and time per phase, three clients that can be split ---------
    let k = args.n.min(200);
    eprintln!("phases: {k} connections per client and protocol");
    let mut phase_rows: Vec<PhaseRow> = Vec::new();
    let kinds = ClientKind::PHASED;
    for proto in Proto::ALL {
        let mut phased = Phased::new(env, proto)?;
        // [client][phase] -> samples
        let mut pt: Vec<Vec<Vec<Duration>>> = vec![vec![Vec::new(); 4]; kinds.len()];
        let mut pa: Vec<Vec<u64>> = vec![vec![0; 4]; kinds.len()];
        for i in 0..k + 5 {
            for j in 0..kinds.len() {
                let w = (i + j) % kinds.len();
                let mut m = Marks::start();
                let (conn, n) = phased
                    .connect_get(kinds[w], &t, setup_path, &setup_uri, &mut m)
                    .await?;
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
                    pt[w][p].push(t1 - t0);
                    pa[w][p] += a1 - a0;
                }
            }
        }
        for (w, kind) in kinds.into_iter().enumerate() {
            let mut cells = Vec::new();
            for p in 0..4 {
                cells.push((median(&mut pt[w][p]), pa[w][p] as f64 / k as f64));
            }
            phase_rows.push((proto, kind, cells));
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
        let v = &mut rates[c];
        v.sort_by(|a, b| a.total_cmp(b));
        rows[kind.index()].mibs[proto.column()] = Some(v[v.len() / 2]);
    }

    print_phases(&phase_rows);
    Ok((rows, via_rows, nagle_rows))
}

/// A tunnel over an existing HTTP/2 connection to the https:// proxy against a fresh
/// HTTP/1.1 CONNECT over TLS to the same proxy, each then target TLS + HTTP handshake +
/// GET /bytes/1024. Four (route, target protocol) pairs rotate connection by connection, as
/// in the main setup run. Rows by `ViaRoute`.
async fn measure_via_https(
    args: &Args,
    env: &Env,
    server: &mut Server,
    t: &Target,
    path: &str,
    uri: &Uri,
) -> Result<Vec<Row>> {
    let mut clients: Vec<(ViaRoute, Proto, Client)> = Vec::new();
    for proto in Proto::ALL {
        for route in ViaRoute::ALL {
            clients.push((route, proto, Client::new(route, env, proto)?));
        }
    }
    // The HTTP/2 clients open their proxy connection now and keep one tunnel on it.
    for (route, _, client) in &mut clients {
        if let (ViaRoute::H2Stream, Client::ViaHttps(via)) = (*route, client) {
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
    let mut rows = vec![Row::default(); ViaRoute::ALL.len()];
    for (c, (route, proto, _)) in clients.iter().enumerate() {
        let pi = proto.column();
        eprintln!(
            "  {} target {}: {} of {per} tunnels were h2 streams, at most {} tunnels shared the proxy connection",
            route.name(),
            proto.name(),
            h2_routes[c],
            max_shared[c]
        );
        let row = &mut rows[route.index()];
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

/// The rows of the TCP_NODELAY table: `ProxyConnectLayer::with_nodelay` left at its default
/// (true), then `with_nodelay(false)`.
pub const NAGLE_ROWS: [(Option<bool>, &str); 2] = [
    (None, "default (`with_nodelay(true)`)"),
    (Some(false), "`with_nodelay(false)`"),
];

/// The fresh HTTP/1.1 CONNECT over TLS to the https:// proxy (`Http2Mode::Never`), over
/// `HttpConnector::new()` (Nagle on in the connector), with the crate's default
/// `TCP_NODELAY` against `with_nodelay(false)`: target h2 and h1, four pairs rotating
/// connection by connection. `args.nagle_n` tunnels each after at most 5 warm-ups, since
/// every tunnel without `TCP_NODELAY` is expected to cost about 40 ms. Rows by `NAGLE_ROWS`.
async fn measure_nagle(
    args: &Args,
    env: &Env,
    server: &mut Server,
    t: &Target,
    path: &str,
    uri: &Uri,
) -> Result<Vec<Row>> {
    let mut clients: Vec<(usize, Proto, Client)> = Vec::new();
    for proto in Proto::ALL {
        for (i, (nodelay, _)) in NAGLE_ROWS.iter().enumerate() {
            let via = ViaHttps::with_nodelay(env, ViaRoute::FreshH1, proto, *nodelay)?;
            clients.push((i, proto, Client::ViaHttps(Box::new(via))));
        }
    }
    let nargs = Args {
        n: args.nagle_n,
        warmup: args.warmup.min(5),
        ..*args
    };
    eprintln!(
        "TCP_NODELAY: {} warm-up + {} fresh HTTP/1.1 tunnels through the https:// proxy per (with_nodelay, target protocol), rotating through {} pairs",
        nargs.warmup,
        nargs.n,
        clients.len()
    );
    let s0 = server.stats()?;
    let started = Instant::now();
    let Rotation {
        mut times,
        alloc_sum,
        resumed,
    } = rotate(&nargs, &mut clients, t, path, uri, |_, _| {}).await?;
    let s1 = server.stats()?;
    let per = nargs.warmup + nargs.n;
    let line = format!(
        "TCP_NODELAY run: {:.1} s; the proxy accepted {} TLS connections ({} h2) and {} CONNECTs for {} tunnels (one fresh connection each expected)",
        started.elapsed().as_secs_f64(),
        s1.0[4] - s0.0[4],
        s1.0[5] - s0.0[5],
        s1.0[6] - s0.0[6],
        per * clients.len()
    );
    eprintln!("  {line}");
    println!("{line}");
    let mut rows = vec![Row::default(); NAGLE_ROWS.len()];
    for (c, (i, proto, _)) in clients.iter().enumerate() {
        let pi = proto.column();
        let row = &mut rows[*i];
        row.setup_med[pi] = Some(median(&mut times[c]));
        row.setup_p99[pi] = Some(p99(&mut times[c]));
        row.allocs[pi] = Some(alloc_sum[c] as f64 / nargs.n as f64);
        row.resumed[pi] = Some(resumed[c] as f64 / nargs.n as f64);
    }
    Ok(rows)
}

/// One connection of each splittable client with a backtrace per allocation, grouped by
/// phase and call site; run after a warm-up so lazy statics and session caches exist.
/// `n` phased connections (each with its GET) per client and protocol, client by client,
/// for a profiler: under callgrind each client's cost is the inclusive cost of its
/// `connect_phased`/`connect` future (see BENCHMARKS.md, "Profile").
pub async fn profile(env: &Env, n: usize, only: Option<&str>) -> Result<()> {
    let t = Target::new(env)?;
    let uri = t.h2_uri("/bytes/1024")?;
    for proto in Proto::ALL {
        let mut phased = Phased::new(env, proto)?;
        for kind in ClientKind::PHASED {
            if only.is_some_and(|o| o != kind.short_name()) {
                continue;
            }
            // Bounded: n connections.
            for _ in 0..n {
                let mut m = Marks::start();
                let (conn, _) = phased
                    .connect_get(kind, &t, "/bytes/1024", &uri, &mut m)
                    .await?;
                drop(conn);
                settle().await;
            }
            println!("{} {}: {n} connections", kind.short_name(), proto.name());
        }
    }
    Ok(())
}

pub async fn trace_allocs(env: &Env) -> Result<()> {
    let t = Target::new(env)?;
    let uri = t.h2_uri("/bytes/1024")?;
    for proto in Proto::ALL {
        let mut phased = Phased::new(env, proto)?;
        for kind in ClientKind::PHASED {
            for round in 0..6 {
                let traced = round == 5;
                settle().await;
                if traced {
                    alloc::start_tracing();
                }
                let mut m = Marks::start();
                alloc::set_phase(0);
                let (conn, _) = phased
                    .connect_get(kind, &t, "/bytes/1024", &uri, &mut m)
                    .await?;
                alloc::stop_tracing();
                drop(conn);
                settle().await;
            }
            let traces = alloc::take_traces()?;
            println!(
                "== {} {} : {} allocations",
                kind.short_name(),
                proto.name(),
                traces.len()
            );
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

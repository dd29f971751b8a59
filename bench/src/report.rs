//! Statistics, the tables' rows and cells, the tables, and the machine they ran on.

use std::time::Duration;

use crate::args::Args;
use crate::clients::{ClientKind, ViaRoute};
use crate::tls::Proto;

pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn p99(v: &mut [Duration]) -> Duration {
    v.sort();
    let i = ((v.len() as f64) * 0.99).ceil() as usize;
    v[i.clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One client's figures; each pair is [h2, h1] (`Proto::column`).
#[derive(Default, Clone)]
pub struct Row {
    pub setup_med: [Option<Duration>; 2],
    pub setup_p99: [Option<Duration>; 2],
    pub allocs: [Option<f64>; 2],
    pub resumed: [Option<f64>; 2],
    pub mibs: [Option<f64>; 2],
    pub rss: [Option<f64>; 2],
    pub heap: [Option<f64>; 2],
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

/// One client's per-phase figures: protocol, client, (time, allocations) per phase.
pub type PhaseRow = (Proto, ClientKind, Vec<(Duration, f64)>);

pub fn print_phases(rows: &[PhaseRow]) {
    println!();
    println!("Per phase (median time, mean allocations), split by handing each layer the stream the one below made:");
    println!(
        "| client | proto | TCP + CONNECT | TLS handshake | HTTP handshake | GET /bytes/1024 | sum |"
    );
    println!("|---|---|---|---|---|---|---|");
    // The floor's name here is the short one.
    let name = |kind: ClientKind| match kind {
        ClientKind::Floor => kind.short_name(),
        _ => kind.name(),
    };
    for (proto, kind, cells) in rows {
        let mut line = format!("| {} | {} |", name(*kind), proto.name());
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

/// The main table, the live heap, TLS resumption and the targets; `rows` by `ClientKind`.
pub fn print_table(args: &Args, rows: &[Row]) {
    let row = |kind: ClientKind| &rows[kind.index()];
    let f = row(ClientKind::Floor);
    println!();
    println!(
        "Setup = TCP to proxy + CONNECT + TLS + HTTP handshake + GET /bytes/1024, N={} per client and protocol; throughput = one {} MiB body (median of {} round(s)); idle memory over {} connections. Ratios are to the floor of this run.",
        args.n, args.mib, args.rounds, args.idle
    );
    println!();
    println!("| client | h2 setup median | h2 p99 | h1 setup median | h1 p99 | throughput h2 | throughput h1 | allocs/setup h2 | allocs/setup h1 | RSS/idle conn h2 | RSS/idle conn h1 |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for kind in ClientKind::ALL {
        let r = row(kind);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            kind.name(),
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
    for kind in ClientKind::ALL {
        let r = row(kind);
        println!(
            "| {} | {} | {} |",
            kind.name(),
            cell_kib(r.heap[0], f.heap[0]),
            cell_kib(r.heap[1], f.heap[1])
        );
    }
    println!();
    println!("TLS sessions resumed during the setup runs (client side):");
    for kind in ClientKind::ALL {
        let r = row(kind);
        let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.0}%", v * 100.0));
        println!(
            "  {}: h2 {}, h1 {}",
            kind.name(),
            pct(r.resumed[0]),
            pct(r.resumed[1])
        );
    }

    // -- Targets ---------------------------------------------------------------------------
    let o = row(ClientKind::TowerTunnel);
    let (hu, rq) = (row(ClientKind::HyperUtil), row(ClientKind::Reqwest));
    println!();
    println!("Targets:");
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

/// The https:// proxy table; `rows` by `ViaRoute`, ratios to the fresh HTTP/1.1 CONNECT.
pub fn print_via_table(args: &Args, rows: &[Row]) {
    let f = &rows[ViaRoute::FreshH1.index()];
    println!();
    println!(
        "HTTP/2 to the proxy: tower-tunnel (ProxyConnectLayer::with_proxy_tls over HttpConnector::new(), TCP_NODELAY by the layer's default) through an https:// proxy offering h2 and http/1.1 ({}). Setup = (new CONNECT stream on the existing h2 proxy connection | TCP + TLS to the proxy + HTTP/1.1 CONNECT) + target TLS + HTTP handshake + GET /bytes/1024, N={} per row and target protocol; idle memory per tunnel over {} tunnels. Ratios are to the fresh HTTP/1.1 CONNECT of this run.",
        if args.fixture_h2_proxy { "TestH2Proxy" } else { "the bench's proxy: TestH2Proxy's CONNECT handling with TCP_NODELAY towards the target" },
        args.n, args.idle
    );
    println!();
    println!("| route to the proxy | target h2: setup median | p99 | target h1: setup median | p99 | allocs/setup h2 | allocs/setup h1 | RSS/idle tunnel h2 | RSS/idle tunnel h1 | live heap/idle tunnel h2 | live heap/idle tunnel h1 |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for route in ViaRoute::ALL {
        let r = &rows[route.index()];
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            route.name(),
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
    for route in ViaRoute::ALL {
        let r = &rows[route.index()];
        println!(
            "  target TLS resumed, {}: h2 {}, h1 {}",
            route.name(),
            pct(r.resumed[0]),
            pct(r.resumed[1])
        );
    }
}

/// The TCP_NODELAY table; `rows` by `runs::NAGLE_ROWS`, ratios to the default.
pub fn print_nagle_table(args: &Args, rows: &[Row]) {
    let d = &rows[0];
    println!();
    println!(
        "TCP_NODELAY: tower-tunnel's fresh HTTP/1.1 CONNECT over TLS to the https:// proxy (Http2Mode::Never) over HttpConnector::new() (Nagle on in the connector), ProxyConnectLayer's default (TCP_NODELAY set on the dialed stream) against with_nodelay(false). Setup as above, N={} per row and target protocol, alternating. Ratios are to the default of this run.",
        args.nagle_n
    );
    println!();
    println!("| ProxyConnectLayer | target h2: setup median | p99 | target h1: setup median | p99 | allocs/setup h2 | allocs/setup h1 |");
    println!("|---|---|---|---|---|---|---|");
    for (r, (_, name)) in rows.iter().zip(crate::runs::NAGLE_ROWS) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            name,
            cell_time(r.setup_med[0], d.setup_med[0]),
            cell_time(r.setup_p99[0], d.setup_p99[0]),
            cell_time(r.setup_med[1], d.setup_med[1]),
            cell_time(r.setup_p99[1], d.setup_p99[1]),
            cell_allocs(r.allocs[0], d.allocs[0]),
            cell_allocs(r.allocs[1], d.allocs[1]),
        );
    }
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// nproc, CPU model, memory and load average, for BENCHMARKS.md.
pub fn print_machine() {
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

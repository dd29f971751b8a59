//! The command line: what this process is to do, and the bench's options.

use crate::clients::Kind;
use crate::scale::ScaleRoute;
use crate::tls::Proto;
use crate::util::Result;

/// What this process does, by its first argument.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// `--serve [fixture]`: the fixtures' child process.
    Serve { fixture_h2_proxy: bool },
    /// `--idle-probe CLIENT PROTO COUNT`: one client's idle memory, in a process of its own.
    IdleProbe {
        kind: Kind,
        proto: Proto,
        count: usize,
    },
    /// `--trace-allocs`: a backtrace per allocation of one connection of each client.
    TraceAllocs,
    /// `--pac [N]`: the cost of PAC decisions, cached and uncached (`pac.rs`).
    Pac { n: usize },
    /// `--scale-serve FIXTURE`: one fixture of the memory-at-scale table, in a process
    /// of its own.
    ScaleServe,
    /// `--scale-probe ROUTE COUNT ORIGIN_PORT PROXY_URL...`: the client of that table.
    ScaleProbe {
        route: ScaleRoute,
        count: usize,
        origin_port: u16,
    },
    /// `--profile N [CLIENT]`: N phased connections per client (or only CLIENT:
    /// `tower-tunnel`, `floor`, `hyper-util`) and protocol, and nothing else, for a
    /// profiler (`valgrind --tool=callgrind`).
    Profile(usize, Option<&'static str>),
    /// The benchmark itself.
    Bench(Args),
}

pub fn mode() -> Result<Mode> {
    let argv: Vec<String> = std::env::args().collect();
    Ok(match argv.get(1).map(String::as_str) {
        Some("--serve") => Mode::Serve {
            fixture_h2_proxy: argv.get(2).map(String::as_str) == Some("fixture"),
        },
        Some("--idle-probe") => Mode::IdleProbe {
            kind: Kind::from_probe_arg(argv.get(2).ok_or("client")?)?,
            proto: Proto::parse(argv.get(3).ok_or("proto")?)?,
            count: argv.get(4).ok_or("count")?.parse()?,
        },
        Some("--trace-allocs") => Mode::TraceAllocs,
        Some("--pac") => Mode::Pac {
            n: argv.get(2).map_or(Ok(5_000), |n| n.parse())?,
        },
        Some("--scale-serve") => Mode::ScaleServe,
        Some("--scale-probe") => Mode::ScaleProbe {
            route: ScaleRoute::parse(argv.get(2).ok_or("route")?)?,
            count: argv.get(3).ok_or("count")?.parse()?,
            origin_port: argv.get(4).ok_or("origin port")?.parse()?,
        },
        Some("--profile") => Mode::Profile(
            argv.get(2).ok_or("--profile N")?.parse()?,
            argv.get(3).map(|k| &*Box::leak(k.clone().into_boxed_str())),
        ),
        _ => Mode::Bench(parse_args()),
    })
}

#[derive(Clone, Copy, Debug)]
pub struct Args {
    pub n: usize,
    pub mib: usize,
    pub idle: usize,
    pub rounds: usize,
    pub warmup: usize,
    /// Tunnels per target protocol in the TCP_NODELAY comparison (each costs about 40 ms
    /// with `with_nodelay(false)`).
    pub nagle_n: usize,
    /// The https:// proxy comparison through `TestH2Proxy` instead of the bench's own.
    pub fixture_h2_proxy: bool,
    /// Samples per cell of the round-trip table (each costs 3-5 round trips of 100 ms).
    pub rtt_samples: usize,
    /// `--rtt`: the round-trip table only.
    pub rtt_only: bool,
    /// Idle tunnels per row of the memory-at-scale table (`--scale N`).
    pub scale: usize,
    /// `--scale-only`: that table only.
    pub scale_only: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        n: 500,
        mib: 256,
        idle: 1000,
        rounds: 3,
        warmup: 20,
        nagle_n: 50,
        fixture_h2_proxy: false,
        rtt_samples: 3,
        rtt_only: false,
        scale: 10_000,
        scale_only: false,
    };
    let mut it = std::env::args().skip(1);
    let mut n = None;
    let mut mib = None;
    let mut idle = None;
    let mut scale = None;
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
            "--scale" => scale = Some(num("--scale")),
            "--scale-only" => args.scale_only = true,
            "--rounds" => args.rounds = num("--rounds").max(1),
            "--quick" => {
                args.n = 50;
                args.mib = 32;
                args.idle = 200;
                args.rounds = 1;
                args.warmup = 5;
                args.nagle_n = 20;
                args.rtt_samples = 1;
                args.scale = 200;
            }
            "--rtt" => args.rtt_only = true,
            "--rtt-samples" => args.rtt_samples = num("--rtt-samples").max(1),
            "--fixture-h2-proxy" => args.fixture_h2_proxy = true,
            "--bench" => {} // passed by `cargo bench`-style harnesses
            other => panic!(
                "unknown argument {other}; usage: [--n N] [--throughput-mib M] [--idle C] [--rounds R] [--quick] [--fixture-h2-proxy] [--rtt] [--rtt-samples S] [--scale N] [--scale-only]"
            ),
        }
    }
    args.n = n.unwrap_or(args.n).max(1);
    args.mib = mib.unwrap_or(args.mib).max(1);
    args.idle = idle.unwrap_or(args.idle).max(1);
    args.scale = scale.unwrap_or(args.scale).max(1);
    // Bounded: never more than the other runs' N.
    args.nagle_n = args.nagle_n.min(args.n);
    args
}

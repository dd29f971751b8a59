//! Connection setup, throughput, allocations and idle memory of tower-tunnel's stack against
//! a hand-written floor, hyper-util's `Tunnel` + hyper-rustls, and reqwest, in one run.
//!
//! `cargo run --release -p tower-tunnel-bench -- [--n N] [--throughput-mib M] [--idle C] [--quick]`
//! (`--rtt`: only the round trips to the first byte, through a delaying relay;
//! `--scale-only [--scale N]`: only the memory-at-scale table;
//! `--pac [N]`: only the cost of a PAC decision, cached and uncached)
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
//!
//! Modules: `fixtures` (the child process), `clients`, `runs` (setup, phases, throughput,
//! the https:// proxy comparison, TCP_NODELAY on and off, allocation traces), `rtt` (round
//! trips per route through a delaying relay, against curl), `memory`
//! (idle probes), `pac` (PAC decisions), `scale` (10,000 idle tunnels over HTTP/2 and
//! HTTP/1.1 `CONNECT`, each party in a process of its own: `--scale-serve`,
//! `--scale-probe`), `report` (statistics and tables), `alloc` (the counting allocator),
//! `args`, `tls`, `util`.

mod alloc;
mod args;
mod clients;
mod fixtures;
mod memory;
mod pac;
mod report;
mod rtt;
mod runs;
mod scale;
mod tls;
mod util;

use args::{Args, Mode};
use fixtures::Server;
use util::{current_thread_runtime, Result};

fn main() -> Result<()> {
    match args::mode()? {
        Mode::Serve { fixture_h2_proxy } => fixtures::serve(fixture_h2_proxy),
        Mode::IdleProbe { kind, proto, count } => memory::idle_probe(kind, proto, count),
        Mode::TraceAllocs => {
            let (_server, env) = Server::start(false)?;
            current_thread_runtime()?.block_on(runs::trace_allocs(&env))
        }
        Mode::Pac { n } => {
            report::print_machine();
            pac::run(n)
        }
        Mode::ScaleServe => scale::serve(&std::env::args().nth(2).unwrap_or_default()),
        Mode::ScaleProbe {
            route,
            count,
            origin_port,
        } => {
            let proxies: Vec<String> = std::env::args().skip(5).collect();
            scale::probe(route, count, origin_port, &proxies)
        }
        Mode::Profile(n, only) => {
            let (_server, env) = Server::start(false)?;
            current_thread_runtime()?.block_on(runs::profile(&env, n, only))
        }
        Mode::Bench(args) => bench(&args),
    }
}

/// The whole benchmark: every run, the idle probes, then the tables.
fn bench(args: &Args) -> Result<()> {
    report::print_machine();
    if args.scale_only {
        scale::print_table(&scale::measure(args.scale)?);
        return Ok(());
    }
    let (mut server, env) = Server::start(args.fixture_h2_proxy)?;
    let rt = current_thread_runtime()?;
    if args.rtt_only {
        rtt::print_table(&rtt::measure(args, &env, &rt)?);
        return Ok(());
    }
    let (mut rows, mut via_rows, nagle_rows) =
        rt.block_on(runs::measure(args, &env, &mut server))?;
    memory::measure_idle(args, &env, &mut server, &mut rows, &mut via_rows)?;
    report::print_table(args, &rows);
    report::print_via_table(args, &via_rows);
    report::print_nagle_table(args, &nagle_rows);
    rtt::print_table(&rtt::measure(args, &env, &rt)?);
    scale::print_table(&scale::measure(args.scale)?);
    println!();
    println!("load average at end: {}", report::loadavg());
    Ok(())
}

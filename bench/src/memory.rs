//! Idle memory: a fresh process per (client, protocol), so that allocator state left by
//! one client cannot hide another's growth.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::alloc::{live_heap, rss_kib};
use crate::args::Args;
use crate::clients::{reqwest_client, Client, ClientKind, Kind, Target, ViaRoute};
use crate::fixtures::{Env, Server};
use crate::report::Row;
use crate::runs::run;
use crate::tls::Proto;
use crate::util::{current_thread_runtime, settle, Result};

/// Fills the idle-memory cells of both tables, one probe process per (client, protocol);
/// `rows` by `ClientKind`, `via_rows` by `ViaRoute`.
pub fn measure_idle(
    args: &Args,
    env: &Env,
    server: &mut Server,
    rows: &mut [Row],
    via_rows: &mut [Row],
) -> Result<()> {
    eprintln!(
        "idle memory: {} connections per (client, protocol), one process each",
        args.idle
    );
    for kind in ClientKind::ALL {
        let row = &mut rows[kind.index()];
        for proto in Proto::ALL {
            if kind == ClientKind::Reqwest && proto == Proto::H2 {
                continue; // reqwest multiplexes HTTP/2: one connection per host in its pool
            }
            let (rss, heap) = run_idle_probe(env, server, kind.into(), proto, args.idle)?;
            row.rss[proto.column()] = Some(rss);
            row.heap[proto.column()] = Some(heap);
        }
    }
    eprintln!(
        "idle memory through the https:// proxy: {} tunnels per (route, target protocol), one process each",
        args.idle
    );
    for route in ViaRoute::ALL {
        let row = &mut via_rows[route.index()];
        for proto in Proto::ALL {
            let (rss, heap) = run_idle_probe(env, server, route.into(), proto, args.idle)?;
            row.rss[proto.column()] = Some(rss);
            row.heap[proto.column()] = Some(heap);
        }
    }
    Ok(())
}

/// `--idle-probe CLIENT PROTO COUNT`: opens COUNT tunneled TLS connections (each with one
/// GET done) and keeps them idle; prints `rss_before_kib rss_after_kib heap_before
/// heap_after` in bytes for the heap.
pub fn idle_probe(kind: Kind, proto: Proto, count: usize) -> Result<()> {
    let env = Env::from_vars()?;
    let rt = current_thread_runtime()?;
    rt.block_on(async {
        let t = Target::new(&env)?;
        let h2_uri = t.h2_uri("/bytes/1024")?;
        let mut client = match kind {
            Kind::Plain(ClientKind::Reqwest) => Client::Reqwest(reqwest_client(&env, proto, true)?),
            k => Client::new(k, &env, proto)?,
        };
        // Over HTTP/2 to the proxy: one tunnel stays open through the probe, so the pooled
        // proxy connection is in the baseline and the figure is the cost of one more tunnel.
        if let (Kind::Via(ViaRoute::H2Stream), Client::ViaHttps(via)) = (kind, &mut client) {
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

/// Runs one probe process; returns RSS (KiB) and live heap (KiB) per idle connection.
fn run_idle_probe(
    env: &Env,
    server: &mut Server,
    kind: Kind,
    proto: Proto,
    count: usize,
) -> Result<(f64, f64)> {
    let before = server.stats()?;
    let out = Command::new(std::env::current_exe()?)
        .args([
            "--idle-probe",
            kind.probe_arg(),
            proto.name(),
            &count.to_string(),
        ])
        .envs(env.vars())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("idle probe {} {} failed", kind.name(), proto.name()).into());
    }
    let after = server.stats()?;
    // Connections the proxy accepted during the probe, less the 3 warm-up ones; through the
    // https:// proxy, the CONNECTs it took (tunnels), less the warm-up ones (and the kept one).
    let conns = match kind {
        Kind::Plain(_) => (after.0[0] - before.0[0]).saturating_sub(3),
        Kind::Via(ViaRoute::H2Stream) => (after.0[6] - before.0[6]).saturating_sub(4),
        Kind::Via(ViaRoute::FreshH1) => (after.0[6] - before.0[6]).saturating_sub(3),
    }
    .max(1) as f64;
    if let Kind::Via(_) = kind {
        eprintln!(
            "  {} {}: {conns} idle tunnels, {} TLS connection(s) to the proxy in the process ({} h2)",
            kind.name(),
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
            kind.name(),
            proto.name()
        );
    }
    Ok(((v[1] - v[0]) / conns, (v[3] - v[2]) / conns / 1024.0))
}

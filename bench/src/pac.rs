//! `--pac`: the cost of a routing decision made by a PAC script, cached and uncached, next
//! to a decision by a fixed proxy. No network: the script uses IP literals only, and the
//! resolver is never asked.

use std::time::{Duration, Instant};

use http::Uri;
use tower_tunnel::{Pac, Proxies, Proxy};

use crate::report::median;
use crate::util::Result;

/// A typical corporate script: ~50 rules of `shExpMatch`, `dnsDomainIs`, `isInNet` on IP
/// literals (`isInNet(myIpAddress(), ..)`, the address set) and `isPlainHostName`, most
/// targets falling through to the default.
pub fn corporate_script() -> String {
    let mut s = String::from("function FindProxyForURL(url, host) {\n");
    s.push_str("    if (isPlainHostName(host)) return 'DIRECT';\n");
    for i in 0..16 {
        s.push_str(&format!(
            "    if (dnsDomainIs(host, '.dept{i}.corp.example')) return 'DIRECT';\n"
        ));
    }
    for i in 0..16 {
        s.push_str(&format!(
            "    if (shExpMatch(host, '*.partner{i}.example.net')) return 'PROXY partner.corp.example:3128';\n"
        ));
    }
    for i in 0..16 {
        s.push_str(&format!(
            "    if (isInNet(myIpAddress(), '10.{i}.0.0', '255.255.0.0')) return 'DIRECT';\n"
        ));
    }
    s.push_str("    if (shExpMatch(url, 'http://*.cdn.example/*')) return 'DIRECT';\n");
    s.push_str(
        "    return 'PROXY proxy1.corp.example:3128; PROXY proxy2.corp.example:3128; DIRECT';\n}\n",
    );
    s
}

struct Row {
    name: &'static str,
    per_decision: Vec<Duration>,
}

fn time(n: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        f(i)?;
        out.push(start.elapsed());
    }
    Ok(out)
}

pub fn run(n: usize) -> Result<()> {
    let script = corporate_script();
    let rules = script.matches("return").count() - 1;
    let resolver = |_: &str| -> std::io::Result<Vec<std::net::IpAddr>> {
        Err(std::io::Error::other("the benchmark resolves nothing"))
    };
    let me: std::net::IpAddr = [192, 168, 1, 20].into();
    let cached = Proxies::new().with_pac(
        Pac::from_script(script.clone())?
            .with_resolver(resolver)
            .with_my_ip_address(me),
    );
    let uncached = Proxies::new().with_pac(
        Pac::from_script(script)?
            .with_resolver(resolver)
            .with_my_ip_address(me)
            .with_cache_ttl(Duration::ZERO),
    );
    let fixed = Proxies::from(Proxy::new("http://proxy1.corp.example:3128")?);
    // Falls through every rule: the worst case for a script, and the common one.
    let target: Uri = "https://www.example.com/".parse()?;
    let hosts: Vec<Uri> = (0..64)
        .map(|i| format!("https://host{i}.example.org/").parse())
        .collect::<std::result::Result<_, _>>()?;
    // Warm up: compile, first call, cache fill.
    for _ in 0..100 {
        cached.decide(&target)?;
        uncached.decide(&target)?;
    }
    let mut rows = vec![
        Row {
            name: "fixed proxy (no PAC)",
            per_decision: time(n * 10, |_| {
                fixed.decide(&target).map(drop).map_err(Into::into)
            })?,
        },
        Row {
            name: "PAC, cached answer",
            per_decision: time(n * 10, |_| {
                cached.decide(&target).map(drop).map_err(Into::into)
            })?,
        },
        Row {
            name: "PAC, uncached (script runs)",
            per_decision: time(n, |_| {
                uncached.decide(&target).map(drop).map_err(Into::into)
            })?,
        },
        Row {
            name: "PAC, uncached, 64 hosts",
            per_decision: time(n, |i| {
                uncached
                    .decide(&hosts[i % hosts.len()])
                    .map(drop)
                    .map_err(Into::into)
            })?,
        },
    ];
    println!();
    println!("PAC decisions ({rules}-rule script, target falls through every rule; Proxies::decide, one thread)");
    println!("| decision | n | mean ns | median ns |");
    println!("|---|---:|---:|---:|");
    for row in &mut rows {
        let count = row.per_decision.len();
        let total: Duration = row.per_decision.iter().sum();
        let mean = total.as_nanos() / count as u128;
        let med = median(&mut row.per_decision).as_nanos();
        println!("| {} | {count} | {mean} | {med} |", row.name);
    }
    Ok(())
}

//! PAC conformance (issue 13, item 4): tests nobody on the team wrote.
//!
//! * `ported`: the PAC test scripts of Chromium's and pacparser's test suites
//!   (tests/pac/chromium, tests/pac/pacparser), with the expected results of
//!   those suites (tests/pac/expected.txt), plus the Chromium tests that need
//!   more than one call or look at what reached the resolver.
//! * `crosscheck`: generated (script, URL, client address) cases answered by
//!   pacparser (tests/pac/crosscheck/gen.py writes them with the reference's
//!   answers), each run through [`Pac::evaluate`] and compared.
//!
//! Every known difference is listed here with its reason, and in
//! tests/pac/README.md with the figures.

#![cfg(feature = "pac")]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tower_tunnel::Pac;

const PAC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pac");

/// Time budget per call for the table rows: generous, the machine is shared.
const BUDGET: Duration = Duration::from_secs(10);

/// Expectations of the ported suites that tower-tunnel knowingly does not
/// meet: a row (`script url host`) or one assertion of a self-testing script
/// (its expression text), with the reason. An entry that no longer fails
/// fails the test, so this list stays true.
const KNOWN: &[(&str, &str)] = &[(
    "dateRange(3, \"FEB\", 2009)",
    "tower-tunnel ends a month range on the month's last day (\"FEB\" 2009 as an end is \
     28 February 2009, so 3 March 2009 is outside 3 January..28 February). Chromium's \
     expectation (true) holds only through artefacts: in Chromium's test the MockDate \
     ignores constructor arguments (the end becomes 3 February, before the 3 March start, \
     and the range wraps), and with a real Date Chromium's library builds the end as \
     \"31 February\" = 3 March. The same spill makes dateRange(\"SEP\", \"FEB\") true on \
     3 March, which Chromium's suite expects false: with a real Date no implementation \
     meets both, and tower-tunnel takes the real month end (tests/pac/README.md)",
)];

/// A difference from pacparser in the cross-check that is explained: the
/// cases of `group` whose script contains one of `scripts` (the edge
/// scripts are `return "" + (EXPRESSION);`) and whose host is one of
/// `hosts`, with the reason (tests/pac/README.md, "Which behaviour we
/// follow"). Every script and every host of an entry must match a
/// difference, or the entry is stale and the test fails. The main groups
/// (`tree`, `probe`) have no entry: any difference there fails.
struct Allowed {
    group: &'static str,
    scripts: &'static [&'static str],
    hosts: &'static [&'static str],
    why: &'static str,
}

const CROSSCHECK_ALLOWED: &[Allowed] = &[
    Allowed {
        group: "edge-plain-ipv6",
        scripts: &["isPlainHostName(host)"],
        hosts: &["::1", "fe80::1"],
        why: "a valid IPv6 literal is not a plain host name in Chromium (IsPlainHostName; \
              pac_library_unittest.js); pacparser only looks for a dot",
    },
    Allowed {
        group: "edge-innet-odd",
        scripts: &[
            "isInNet(host, \"10.0.0.0\", \"255.0\")",
            "isInNet(host, \"10.0.0.0\", \"255.0.0.0.0\")",
            "isInNet(host, \"10.0.0\", \"255.0.0.0\")",
        ],
        hosts: &["10.1.2.3"],
        why: "Chromium's isInNet (Firefox's utility script since 2018) answers false unless \
              the pattern and the mask are dotted quads (isValidIpAddress); pacparser's older \
              script compares whatever convert_addr makes of them",
    },
    Allowed {
        group: "edge-innet-odd",
        scripts: &["isInNet(host, \"10.0.0.0\", \"255.0.0.0\")"],
        hosts: &["10.1.2", "0x0a.1.2.3"],
        why: "not dotted quads, so isInNet resolves them: pacparser's system resolver \
              (inet_aton) reads the legacy forms, the test's resolver (Rust's IpAddr parser) \
              does not, and the name is unresolvable",
    },
    Allowed {
        group: "edge-non-string",
        scripts: &[
            "return 42;",
            "return null;",
            "return undefined;",
            "return true;",
            "return ({});",
        ],
        hosts: &["x"],
        why: "an answer that is not a string fails the call in Chromium (\"FindProxyForURL() \
              did not return a string\", ProxyResolverV8Test.BadReturnType); pacparser \
              converts it to text",
    },
    Allowed {
        group: "edge-ex",
        scripts: &["typeof sortIpAddressList"],
        hosts: &["x"],
        why: "Chromium defines sortIpAddressList (one of Microsoft's IPv6 extensions); \
              pacparser 1.3.6 does not, even with the extensions enabled",
    },
    Allowed {
        group: "edge-ex",
        scripts: &["typeof getClientVersion"],
        hosts: &["x"],
        why: "getClientVersion is one of Microsoft's IPv6 extensions; issue 13 asks for all \
              of them and tower-tunnel answers \"1.0\" (Chromium and pacparser leave it out)",
    },
    Allowed {
        group: "edge-globals",
        scripts: &["typeof alert"],
        hosts: &["x"],
        why: "Chromium binds alert (tower-tunnel sends it to tracing); pacparser does not",
    },
    Allowed {
        group: "edge-wrap",
        scripts: &[
            "weekdayRange(\"SAT\", \"FRI\", \"GMT\")",
            "dateRange(2, 1, \"GMT\")",
            "dateRange(\"FEB\", \"JAN\", \"GMT\")",
            "timeRange(12, 0, 11, 59, \"GMT\")",
        ],
        hosts: &["x"],
        why: "a range whose start is after its end wraps around in Firefox and Chromium \
              (pac_library_unittest.js: \"The reverse should also work\"), so these hold at \
              every instant; pacparser's older script never holds them",
    },
];

// ---------------------------------------------------------------------------
// Shared: building a Pac for an environment
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
struct Env {
    my_ip: Option<IpAddr>,
    /// Names the resolver answers; IP literals answer themselves; the rest fail.
    dns: BTreeMap<String, Vec<IpAddr>>,
    clock: Option<SystemTime>,
}

/// Every name the resolver was asked, in order.
type Log = Arc<Mutex<Vec<String>>>;

fn build(script: &str, env: &Env, budget: Duration) -> Result<(Pac, Log), tower_tunnel::Error> {
    let log: Log = Arc::default();
    let mut pac = Pac::from_script(script)?.with_budget(budget);
    if let Some(ip) = env.my_ip {
        pac = pac.with_my_ip_address(ip);
    }
    if let Some(at) = env.clock {
        pac = pac.with_clock(move || at);
    }
    let table = env.dns.clone();
    let seen = Arc::clone(&log);
    pac = pac.with_resolver(move |name: &str| {
        seen.lock().unwrap().push(name.to_owned());
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match table.get(name) {
            Some(ips) => Ok(ips.clone()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name}: not in the test's table"),
            )),
        }
    });
    Ok((pac, log))
}

fn read(rel: &str) -> String {
    let path = Path::new(PAC_DIR).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Seconds since the epoch of a proleptic Gregorian UTC date and time.
fn utc_seconds(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    // Howard Hinnant's days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + h * 3600 + mi * 60 + s
}

fn parse_stamp(text: &str) -> [i64; 6] {
    let fields: Vec<i64> = text
        .split(['-', 'T', ':'])
        .map(|f| {
            f.parse()
                .unwrap_or_else(|_| panic!("bad date/time `{text}`"))
        })
        .collect();
    fields
        .try_into()
        .unwrap_or_else(|_| panic!("bad date/time `{text}`"))
}

/// The instant of a local wall-clock time, as the script engine's own
/// `Date` sees the local zone (so the PAC date functions and `Date` agree).
fn local_instant(stamp: &str) -> SystemTime {
    let [y, mo, d, h, mi, s] = parse_stamp(stamp);
    let script = format!(
        "function FindProxyForURL(url, host) {{ return String(new Date({y}, {}, {d}, {h}, {mi}, {s}).getTime()); }}",
        mo - 1
    );
    let ms: i64 = Pac::from_script(script)
        .and_then(|pac| pac.evaluate("http://x/", "x"))
        .expect("the engine's Date gives the local instant")
        .parse()
        .expect("getTime() is a number");
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).expect("after 1970"))
}

fn parse_env(text: &str) -> Env {
    let mut env = Env::default();
    if text == "-" {
        return env;
    }
    for setting in text.split_whitespace() {
        let (key, value) = setting
            .split_once('=')
            .unwrap_or_else(|| panic!("env setting `{setting}`"));
        match key {
            "ip" => env.my_ip = Some(value.parse().expect("ip=ADDR")),
            "dns" => {
                for entry in value.split(',') {
                    let (name, ips) = entry.split_once('>').expect("dns=NAME>IP+IP");
                    let ips = ips.split('+').map(|ip| ip.parse().expect("IP")).collect();
                    env.dns.insert(name.to_owned(), ips);
                }
            }
            "utc" => {
                let [y, mo, d, h, mi, s] = parse_stamp(value);
                let secs = utc_seconds(y, mo, d, h, mi, s);
                env.clock = Some(UNIX_EPOCH + Duration::from_secs(secs as u64));
            }
            "local" => env.clock = Some(local_instant(value)),
            _ => panic!("unknown env setting `{setting}`"),
        }
    }
    env
}

// ---------------------------------------------------------------------------
// The ported suites
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Expect {
    Answer(String),
    EvalError,
    LoadError,
    Find(String),
    FindError,
}

#[derive(Debug)]
struct Row {
    line: usize,
    source: String,
    script: String,
    url: String,
    host: String,
    env: String,
    expect: Expect,
}

impl Row {
    fn key(&self) -> String {
        format!("{} {} {}", self.script, self.url, self.host)
    }
}

fn rows() -> Vec<Row> {
    let text = read("expected.txt");
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(6, " | ").collect();
        assert_eq!(fields.len(), 6, "expected.txt:{}: six fields", i + 1);
        let expect = fields[5];
        let expect = if let Some(answer) = expect.strip_prefix('=') {
            Expect::Answer(answer.strip_prefix(' ').unwrap_or(answer).to_owned())
        } else if expect == "eval error" {
            Expect::EvalError
        } else if expect == "load error" {
            Expect::LoadError
        } else if expect == "find error" {
            Expect::FindError
        } else if let Some(list) = expect.strip_prefix("find ") {
            Expect::Find(list.to_owned())
        } else {
            panic!("expected.txt:{}: unknown expectation `{expect}`", i + 1)
        };
        rows.push(Row {
            line: i + 1,
            source: fields[0].trim().to_owned(),
            script: fields[1].trim().to_owned(),
            url: fields[2].trim().to_owned(),
            host: fields[3].trim().to_owned(),
            env: fields[4].trim().to_owned(),
            expect,
        });
    }
    rows
}

fn known(key: &str) -> Option<&'static str> {
    KNOWN.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
}

/// Runs one row; `Ok(())` when it meets its expectation, else what happened.
/// A self-testing script's failures come back one per assertion.
fn run_row(row: &Row) -> Result<(), Vec<(String, String)>> {
    let script = read(&row.script);
    let env = parse_env(&row.env);
    let whole = |got: String| Err(vec![(row.key(), got)]);
    let (pac, _log) = match (build(&script, &env, BUDGET), &row.expect) {
        (Err(_), Expect::LoadError) => return Ok(()),
        (Ok(_), Expect::LoadError) => return whole("the script loaded".into()),
        (Err(e), _) => return whole(format!("the script did not load: {e}")),
        (Ok(built), _) => built,
    };
    match &row.expect {
        Expect::LoadError => unreachable!(),
        Expect::Answer(want) => match pac.evaluate(&row.url, &row.host) {
            Ok(got) if got == *want => Ok(()),
            Ok(got) if want == "PROXY success:80" && got.starts_with("FAIL ") => Err(got
                ["FAIL ".len()..]
                .split(" | ")
                .map(|failure| {
                    let expr = failure.split(" => ").next().unwrap_or(failure);
                    (expr.to_owned(), failure.to_owned())
                })
                .collect()),
            Ok(got) => whole(format!("answered {got:?}")),
            Err(e) => whole(format!("failed: {e}")),
        },
        Expect::EvalError => match pac.evaluate(&row.url, &row.host) {
            Err(_) => Ok(()),
            Ok(got) => whole(format!("answered {got:?}")),
        },
        Expect::Find(_) | Expect::FindError => {
            let uri: http::Uri = row.url.parse().expect("the row's URL is a URI");
            match (pac.find(&uri), &row.expect) {
                (Ok((list, _)), Expect::Find(want)) if list.to_string() == *want => Ok(()),
                (Err(_), Expect::FindError) => Ok(()),
                (Ok((list, raw)), _) => whole(format!("found `{list}` (script answered {raw:?})")),
                (Err(e), _) => whole(format!("failed: {e}")),
            }
        }
    }
}

#[test]
fn ported_suites() {
    let rows = rows();
    assert!(rows.len() >= 50, "expected.txt has {} rows", rows.len());
    let mut report = String::new();
    let (mut passed, mut known_hits, mut unexplained) = (0, BTreeSet::new(), 0);
    for row in &rows {
        match run_row(row) {
            Ok(()) => passed += 1,
            Err(failures) => {
                for (key, what) in failures {
                    match known(&key) {
                        Some(why) => {
                            known_hits.insert(key.clone());
                            let _ = writeln!(
                                report,
                                "  KNOWN  expected.txt:{} {} [{}]: {what}\n         because: {why}",
                                row.line, row.source, row.script
                            );
                        }
                        None => {
                            unexplained += 1;
                            let _ = writeln!(
                                report,
                                "  FAIL   expected.txt:{} {} [{}] {}: {what}",
                                row.line, row.source, row.script, row.host
                            );
                        }
                    }
                }
            }
        }
    }
    let stale: Vec<&str> = KNOWN
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !known_hits.contains(*k))
        .collect();
    println!(
        "ported Chromium and pacparser tests: {passed} of {} rows pass; {} known differences, {unexplained} unexplained",
        rows.len(),
        known_hits.len()
    );
    print!("{report}");
    assert!(
        stale.is_empty(),
        "KNOWN entries that no longer fail (remove them, and update tests/pac/README.md): {stale:#?}"
    );
    assert_eq!(unexplained, 0, "failures not in KNOWN:\n{report}");
}

/// ProxyResolverV8Test.SideEffects: the script's globals survive between
/// calls, and loading the script again starts them over.
#[test]
fn chromium_side_effects() {
    let script = read("chromium/side_effects.js");
    for _load in 0..2 {
        let (pac, _) = build(&script, &Env::default(), BUDGET).expect("loads");
        for i in 0..3 {
            let got = pac.evaluate("http://www.google.com/", "www.google.com");
            assert_eq!(
                got.ok().as_deref(),
                Some(format!("PROXY sideffect_{i}").as_str())
            );
        }
    }
}

/// ProxyResolverV8Test.Terminate: a script that hangs after a lookup is
/// stopped (here by the time budget), and the next call works.
#[test]
fn chromium_terminate() {
    let script = read("chromium/terminate.js");
    let budget = Duration::from_millis(300);
    let (pac, log) = build(&script, &Env::default(), budget).expect("loads");
    let started = Instant::now();
    let hung = pac.evaluate("http://hang/", "hang");
    let took = started.elapsed();
    assert!(hung.is_err(), "a hanging script answered {hung:?}");
    assert!(
        took < Duration::from_secs(5),
        "stopped after {took:?} (budget {budget:?})"
    );
    assert!(
        log.lock().unwrap().iter().any(|n| n == "host1"),
        "dnsResolve ran before the hang"
    );
    let next = pac.evaluate("http://kittens/", "kittens");
    assert_eq!(next.ok().as_deref(), Some("PROXY kittens:88"));
}

/// ProxyResolverV8Test.V8Bindings: string arguments reach the resolver,
/// others do not (the in-script checks are in the table row).
#[test]
fn chromium_bindings_reach_the_resolver() {
    let script = read("chromium/bindings.js");
    let env = parse_env(
        "ip=127.0.0.1 dns=arg1>127.0.0.1,is_resolvable>127.0.0.1,foobar>127.0.0.1,>127.0.0.1",
    );
    let (pac, log) = build(&script, &env, BUDGET).expect("loads");
    let answer = pac.evaluate("http://www.google.com/", "www.google.com");
    let log = log.lock().unwrap().clone();
    assert_eq!(
        answer.ok().as_deref(),
        Some("DIRECT"),
        "resolver saw {log:?}"
    );
    for name in ["arg1", "is_resolvable", "foobar"] {
        assert!(
            log.iter().any(|n| n == name),
            "{name} never reached the resolver: {log:?}"
        );
    }
    for name in &log {
        assert!(
            ["", "arg1", "is_resolvable", "foobar"].contains(&name.as_str()),
            "a non-string argument reached the resolver as {name:?}"
        );
    }
}

/// ProxyResolverV8Test.DNSResolutionOfInternationDomainName: the resolver
/// is given the punycode form of an international name.
#[test]
fn chromium_idn_reaches_the_resolver_as_punycode() {
    let script = read("chromium/international_domain_names.js");
    let (pac, log) = build(&script, &Env::default(), BUDGET).expect("loads");
    let answer = pac.evaluate("http://www.google.com/", "www.google.com");
    assert_eq!(answer.ok().as_deref(), Some("DIRECT"));
    let log = log.lock().unwrap().clone();
    // KNOWN entries for this test go in KNOWN under this key.
    let key = "chromium/international_domain_names.js resolver";
    let ok = log.len() == 2 && log.iter().all(|n| n == "xn--bcher-kva.ch");
    match known(key) {
        Some(why) if !ok => println!("KNOWN {key}: resolver saw {log:?}; because: {why}"),
        Some(_) => panic!("KNOWN entry `{key}` no longer fails: remove it"),
        None => assert!(
            ok,
            "dnsResolve and dnsResolveEx must pass xn--bcher-kva.ch, resolver saw {log:?}"
        ),
    }
}

// ---------------------------------------------------------------------------
// The cross-check against pacparser
// ---------------------------------------------------------------------------

fn cases_path() -> PathBuf {
    match std::env::var_os("PAC_CROSSCHECK_CASES") {
        Some(path) => PathBuf::from(path),
        None => Path::new(PAC_DIR).join("crosscheck/cases.json"),
    }
}

#[test]
#[ignore = "needs the cases tests/pac/crosscheck/gen.py writes with python3-pacparser; .ci/run generates them and runs this with --include-ignored"]
fn crosscheck_against_pacparser() {
    let path = cases_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the cross-check cases are missing ({}: {e}); generate them with \
             `apt-get install python3-pacparser && /usr/bin/python3 tests/pac/crosscheck/gen.py` \
             (or set PAC_CROSSCHECK_CASES to the file gen.py --out wrote)",
            path.display()
        )
    });
    let doc: serde_json::Value = serde_json::from_str(&text).expect("cases.json is JSON");
    let scripts: Vec<&str> = doc["scripts"]
        .as_array()
        .expect("scripts")
        .iter()
        .map(|s| s.as_str().expect("a script is a string"))
        .collect();
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 500, "only {} cases", cases.len());

    let mut env = Env::default();
    env.dns
        .insert("localhost".into(), vec!["127.0.0.1".parse().unwrap()]);

    let mut agree = 0usize;
    let mut by_group: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut explained = String::new();
    let mut unexplained = String::new();
    // (entry, script or host index) pairs that matched a difference.
    let mut allowed_hits: BTreeSet<(usize, &str, usize)> = BTreeSet::new();
    for case in cases {
        let id = case["id"].as_u64().expect("id");
        let group = case["group"].as_str().expect("group").to_owned();
        let script = scripts[case["script"].as_u64().expect("script index") as usize];
        let url = case["url"].as_str().expect("url");
        let host = case["host"].as_str().expect("host");
        env.my_ip = Some(
            case["my_ip"]
                .as_str()
                .expect("my_ip")
                .parse()
                .expect("an IP"),
        );
        env.clock = Some(UNIX_EPOCH + Duration::from_secs(case["now"].as_u64().expect("now")));
        let reference = case["pacparser"].as_str();
        let ours = build(script, &env, BUDGET).and_then(|(pac, _)| pac.evaluate(url, host));
        let same = match (&ours, reference) {
            (Ok(a), Some(b)) => a == b,
            (Err(_), None) => true,
            _ => false,
        };
        let tally = by_group.entry(group.clone()).or_default();
        tally.1 += 1;
        if same {
            agree += 1;
            tally.0 += 1;
            continue;
        }
        let reference = match reference {
            Some(answer) => format!("{answer:?}"),
            None => format!(
                "error ({})",
                case["pacparser_error"].as_str().unwrap_or("?")
            ),
        };
        let ours = match ours {
            Ok(answer) => format!("{answer:?}"),
            Err(e) => format!("error ({e})"),
        };
        let line = format!(
            "  case {id} [{group}] url={url} host={host} my_ip={}: pacparser {reference}, tower-tunnel {ours}\n    script: {}\n",
            case["my_ip"].as_str().unwrap_or("?"),
            script.lines().filter(|l| !l.starts_with("function safe")).collect::<Vec<_>>().join(" ")
        );
        let allowed = CROSSCHECK_ALLOWED.iter().enumerate().find_map(|(n, a)| {
            let s = a.scripts.iter().position(|s| script.contains(s))?;
            let h = a.hosts.iter().position(|h| *h == host)?;
            (a.group == group).then_some((n, s, h, a.why))
        });
        match allowed {
            Some((n, s, h, why)) => {
                allowed_hits.insert((n, "script", s));
                allowed_hits.insert((n, "host", h));
                let _ = writeln!(explained, "{line}    allowed: {why}");
            }
            None => unexplained.push_str(&line),
        }
    }
    println!(
        "cross-check against {}: {agree} of {} agree",
        doc["reference"].as_str().unwrap_or("pacparser"),
        cases.len()
    );
    for (group, (same, all)) in &by_group {
        println!("  {group}: {same} of {all} agree");
    }
    if !explained.is_empty() {
        println!("differences explained in CROSSCHECK_ALLOWED:\n{explained}");
    }
    if !unexplained.is_empty() {
        println!("differences NOT explained:\n{unexplained}");
    }
    let mut stale = Vec::new();
    for (n, a) in CROSSCHECK_ALLOWED.iter().enumerate() {
        for (s, script) in a.scripts.iter().enumerate() {
            if !allowed_hits.contains(&(n, "script", s)) {
                stale.push(format!("{}: script {script}", a.group));
            }
        }
        for (h, host) in a.hosts.iter().enumerate() {
            if !allowed_hits.contains(&(n, "host", h)) {
                stale.push(format!("{}: host {host}", a.group));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "CROSSCHECK_ALLOWED entries that match no difference (remove them, update tests/pac/README.md): {stale:#?}"
    );
    assert!(
        unexplained.is_empty(),
        "differences from pacparser not in CROSSCHECK_ALLOWED:\n{unexplained}"
    );
}

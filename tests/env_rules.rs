//! The environment rules (`http_proxy`, `https_proxy`, `ws_proxy`, `wss_proxy`, `all_proxy`,
//! `no_proxy` and their uppercase forms) as a table: one row per case, the expected choice written beside it,
//! and a cross-check of every row against the real `curl` on this machine.
//!
//! `table` checks the crate alone, through [`Proxies::from_env_with`], so the process
//! environment is never read or written.
//!
//! `curl_agrees` runs `curl` once per row with exactly that row's environment
//! (`env -i PATH=… VARS… curl …`) against loopback fixtures: two [`TestProxy`]s standing for
//! `p1` and `p2`, and a sink that stands for every target. `--connect-to ::127.0.0.1:SINK`
//! sends every direct connection to the sink whatever the URL's host (so `10.1.2.3` or
//! `example.com` are never dialled), while curl's `no_proxy` check still sees the URL's own
//! host; the proxy addresses in the environment are `127.0.0.1:PORT`. Which fixture
//! accepted a connection tells which way curl went. It asserts that curl and the crate
//! agree on every row, except the rows marked `curl:` below, where curl's observed choice
//! is written beside the reason the crate differs on purpose (the same differences are
//! documented on [`Proxies`] and [`NoProxy`]). It is `#[ignore]`d, as it needs `curl`;
//! `.ci/run` runs it with `--ignored` (`cargo test --test env_rules -- --ignored`).
//!
//! Observed with curl 7.88.1 (Debian 12). That curl has no `ws://` support, so the WebSocket
//! rows are not run: they follow curl 8.4's source (`lib/url.c`, `detect_proxy`), and are
//! marked so.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use tokio::net::TcpListener;
use tower_tunnel::test_util::TestProxy;
use tower_tunnel::{ErrorKind, NoProxy, Proxies, Rule};

/// What the crate chose for a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// No proxy.
    Direct,
    /// This proxy, as its `Display` shows it (`scheme://host:port`).
    Via(&'static str),
    /// `Proxies::from_env_with` fails with `InvalidProxy`, naming this variable.
    Fails(&'static str),
}
use Want::{Direct, Fails, Via};

/// The rule behind the choice, short for [`Rule`].
#[derive(Clone, Copy, Debug)]
enum R {
    NoProxyConfigured,
    NoProxy(&'static str),
    Scheme(&'static str),
    All,
    NoMatch,
    /// For `Fails` rows: there is no decision.
    None,
}

impl R {
    fn rule(self) -> Option<Rule> {
        Some(match self {
            R::NoProxyConfigured => Rule::NoProxyConfigured,
            R::NoProxy(e) => Rule::NoProxy(e.to_owned()),
            R::Scheme(v) => Rule::Scheme(v),
            R::All => Rule::All,
            R::NoMatch => Rule::NoMatch,
            R::None => return None,
        })
    }
}

/// What curl does with a row, where it differs from the crate on purpose.
#[derive(Clone, Copy, Debug)]
enum Curl {
    /// Same choice as the crate.
    Same,
    /// curl goes this way instead (`Via` names the proxy by `p1`/`p2`), for this reason.
    Differs(Seen, &'static str),
    /// Not run under curl, for this reason.
    NotRun(&'static str),
}

/// Which way curl went, as the fixtures saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Direct,
    P1,
    P2,
    /// No fixture was contacted: curl refused the configuration.
    Nothing,
}

struct Case {
    line: u32,
    env: &'static [&'static str],
    url: &'static str,
    want: Want,
    rule: R,
    curl: Curl,
}

macro_rules! cases {
    ($( [$($env:literal),*] $url:literal => $want:expr, $rule:expr $(; curl: $curl:expr)? ;)*) => {
        vec![$(Case {
            line: 0,
            env: &[$($env),*],
            url: $url,
            want: $want,
            rule: $rule,
            curl: cases!(@curl $($curl)?),
        }),*]
    };
    (@curl) => { Curl::Same };
    (@curl $c:expr) => { $c };
}

// Reasons for the deliberate differences, each documented on `Proxies` / `NoProxy`.
const PORT_ENTRY: &str = "`host:port` entries are a Go/reqwest extension: they match that port only; curl has no such entries";
const BRACKETS: &str =
    "`[v6]` entries are accepted as the IP; curl compares the brackets as text and never matches";
const STAR_IN_LIST: &str = "`*` anywhere in the list bypasses every target, as in Go; curl honours `*` only as the whole value";
const STAR_DOT: &str = "`*.example.com` is read as `.example.com`, as Go and reqwest users write it; curl has no wildcards";
const DEFAULT_PORT: &str = "a missing proxy port is 80 for http:// (443 for https://), as Go and reqwest; curl uses 1080 for every scheme, so the row would dial port 1080";
const EAGER: &str = "every variable is validated up front, so a bad value never sends some targets direct; curl only parses the variable for the scheme it needs";
const PREFIX_ZERO: &str = "`/0` is the whole address family, as CIDR says; curl reads `/0` (and an unparseable prefix) as an exact address";

const CURL_V6_CIDR: &str = "IPv6 ranges match IPv6 targets; curl 7.88 compares IPv6 targets as text, so a v6 range never matches (curl/curl#19828)";
const NOT_V6: &str = "a bracketed host that is not an IPv6 address is proxied (only `*` bypasses it); curl refuses the URL";
const SCHEME_VARS: &str = "only http, https, ws and wss have a variable of their own; curl reads `<scheme>_proxy` for every scheme (here ftp_proxy)";
const NO_SCHEME: &str = "a URI without a scheme is not taken as http://, so only all_proxy applies; curl's command line guesses http://";
const ZONE_PROXY: &str = "a zone id in a proxy URL is refused, since the base connector is given host:port alone; curl accepts it and dials the link-local address (which fails here too)";
const CURL_WS: &str =
    "curl 7.88 has no ws:// support; the row follows curl 8.4's source (lib/url.c, detect_proxy)";
const BLANK: &str = "a value of only white space counts as unset, like an empty one, so the other case is read; curl takes it as set (an empty bypass list; an unusable proxy)";

const P1: &str = "http://p1:3128";
const P2: &str = "http://p2:3128";

/// The table; each row's `line` is its number, counted from 1.
fn cases() -> Vec<Case> {
    let mut rows = table_rows();
    for (i, row) in rows.iter_mut().enumerate() {
        row.line = i as u32 + 1;
    }
    rows
}

#[rustfmt::skip]
fn table_rows() -> Vec<Case> {
    cases! {
        // --- which variable, per scheme -----------------------------------------------------
        [] "https://example.com/" => Direct, R::NoProxyConfigured;
        ["http_proxy=http://p1:3128"] "http://example.com/" => Via(P1), R::Scheme("http_proxy");
        ["http_proxy=http://p1:3128"] "https://example.com/" => Direct, R::NoMatch;
        ["https_proxy=http://p1:3128"] "https://example.com/" => Via(P1), R::Scheme("https_proxy");
        ["https_proxy=http://p1:3128"] "http://example.com/" => Direct, R::NoMatch;
        ["HTTPS_PROXY=http://p1:3128"] "https://example.com/" => Via(P1), R::Scheme("https_proxy");
        ["https_proxy=http://p1:3128", "HTTPS_PROXY=http://p2:3128"] "https://example.com/" => Via(P1), R::Scheme("https_proxy");
        ["HTTP_PROXY=http://p1:3128"] "http://example.com/" => Direct, R::NoProxyConfigured;
        ["HTTP_PROXY=http://p1:3128", "all_proxy=http://p2:3128"] "http://example.com/" => Via(P2), R::All;
        ["http_proxy=http://p1:3128", "HTTP_PROXY=http://p2:3128"] "http://example.com/" => Via(P1), R::Scheme("http_proxy");
        ["all_proxy=http://p1:3128"] "http://example.com/" => Via(P1), R::All;
        ["all_proxy=http://p1:3128"] "https://example.com/" => Via(P1), R::All;
        ["ALL_PROXY=http://p1:3128"] "https://example.com/" => Via(P1), R::All;
        ["all_proxy=http://p1:3128", "ALL_PROXY=http://p2:3128"] "http://example.com/" => Via(P1), R::All;
        ["http_proxy=http://p1:3128", "all_proxy=http://p2:3128"] "http://example.com/" => Via(P1), R::Scheme("http_proxy");
        ["http_proxy=http://p1:3128", "all_proxy=http://p2:3128"] "https://example.com/" => Via(P2), R::All;
        ["https_proxy=http://p1:3128", "all_proxy=http://p2:3128"] "http://example.com/" => Via(P2), R::All;
        ["https_proxy=http://p1:3128", "all_proxy=http://p2:3128"] "https://example.com/" => Via(P1), R::Scheme("https_proxy");
        ["https_proxy=", "all_proxy=http://p2:3128"] "https://example.com/" => Via(P2), R::All;
        ["https_proxy=", "HTTPS_PROXY=http://p1:3128"] "https://example.com/" => Via(P1), R::Scheme("https_proxy");
        ["http_proxy="] "http://example.com/" => Direct, R::NoProxyConfigured;
        ["http_proxy=p1:3128"] "http://example.com/" => Via(P1), R::Scheme("http_proxy");
        ["https_proxy=http://user:pw@p1:3128/"] "https://example.com/" => Via(P1), R::Scheme("https_proxy");
        ["all_proxy=socks5h://p2:3128"] "https://example.com/" => Via("socks5h://p2:3128"), R::All;
        ["http_proxy=http://p1"] "http://example.com/" => Via("http://p1:80"), R::Scheme("http_proxy");
            curl: Curl::NotRun(DEFAULT_PORT);

        // --- other schemes: only all_proxy, as curl (its `<scheme>_proxy` aside) -------------
        ["http_proxy=http://p1:3128"] "ftp://example.com/" => Direct, R::NoMatch;
        ["https_proxy=http://p1:3128"] "ftp://example.com/" => Direct, R::NoMatch;
        ["http_proxy=http://p1:3128", "all_proxy=http://p2:3128"] "ftp://example.com/" => Via(P2), R::All;
        ["ftp_proxy=http://p1:3128", "all_proxy=http://p2:3128"] "ftp://example.com/" => Via(P2), R::All;
            curl: Curl::Differs(Seen::P1, SCHEME_VARS);
        ["http_proxy=http://p1:3128", "all_proxy=http://p2:3128", "no_proxy=example.com:80"] "ftp://example.com/" => Via(P2), R::All;
        ["http_proxy=http://p1:3128", "all_proxy=http://p2:3128"] "example.com:80" => Via(P2), R::All;
            curl: Curl::Differs(Seen::P1, NO_SCHEME);

        // --- WebSocket targets: curl 8.4+ (lib/url.c, detect_proxy; curl/curl#12058) reads
        // `<scheme>_proxy`, then its uppercase form, then http_proxy (ws) or https_proxy,
        // HTTPS_PROXY (wss), then all_proxy. curl 7.88 here has no ws:// support.
        ["ws_proxy=http://p1:3128", "http_proxy=http://p2:3128"] "ws://example.com/" => Via(P1), R::Scheme("ws_proxy");
            curl: Curl::NotRun(CURL_WS);
        ["WS_PROXY=http://p1:3128", "http_proxy=http://p2:3128"] "ws://example.com/" => Via(P1), R::Scheme("ws_proxy");
            curl: Curl::NotRun(CURL_WS);
        ["ws_proxy=http://p1:3128", "WS_PROXY=http://p2:3128"] "ws://example.com/" => Via(P1), R::Scheme("ws_proxy");
            curl: Curl::NotRun(CURL_WS);
        ["http_proxy=http://p1:3128", "all_proxy=http://p2:3128"] "ws://example.com/" => Via(P1), R::Scheme("http_proxy");
            curl: Curl::NotRun(CURL_WS);
        ["HTTP_PROXY=http://p1:3128"] "ws://example.com/" => Direct, R::NoProxyConfigured;
            curl: Curl::NotRun(CURL_WS);
        ["https_proxy=http://p1:3128"] "ws://example.com/" => Direct, R::NoMatch;
            curl: Curl::NotRun(CURL_WS);
        ["ws_proxy=http://p1:3128"] "http://example.com/" => Direct, R::NoMatch;
        ["wss_proxy=http://p1:3128", "https_proxy=http://p2:3128"] "wss://example.com/" => Via(P1), R::Scheme("wss_proxy");
            curl: Curl::NotRun(CURL_WS);
        ["WSS_PROXY=http://p1:3128"] "wss://example.com/" => Via(P1), R::Scheme("wss_proxy");
            curl: Curl::NotRun(CURL_WS);
        ["HTTPS_PROXY=http://p1:3128", "all_proxy=http://p2:3128"] "wss://example.com/" => Via(P1), R::Scheme("https_proxy");
            curl: Curl::NotRun(CURL_WS);
        ["http_proxy=http://p1:3128", "all_proxy=http://p2:3128"] "wss://example.com/" => Via(P2), R::All;
            curl: Curl::NotRun(CURL_WS);
        ["wss_proxy=http://p1:3128"] "https://example.com/" => Direct, R::NoMatch;
        ["wss_proxy=http://p1:3128", "no_proxy=example.com"] "wss://www.example.com/" => Direct, R::NoProxy("example.com");
            curl: Curl::NotRun(CURL_WS);
        ["ws_proxy=http://p1:3128", "no_proxy=example.com:80"] "ws://example.com/" => Direct, R::NoProxy("example.com:80");
            curl: Curl::NotRun(CURL_WS);
        ["wss_proxy=ftp://u:s3cret@p1:3128"] "https://example.com/" => Fails("wss_proxy"), R::None;
            curl: Curl::Differs(Seen::Direct, EAGER);

        // --- bad proxy URLs: an error naming the variable, never the password ---------------
        ["http_proxy=ftp://u:s3cret@p1:3128"] "http://example.com/" => Fails("http_proxy"), R::None;
        ["https_proxy=http://u:s3cret@p1:99999"] "https://example.com/" => Fails("https_proxy"), R::None;
        ["ALL_PROXY=gopher://u:s3cret@p1:3128"] "https://example.com/" => Fails("ALL_PROXY"), R::None;
        ["http_proxy=http://u:s3cret@[56FE::2159:5BBC::6594]:3128"] "http://example.com/" => Fails("http_proxy"), R::None;
        ["all_proxy=socks5h://[proxy.corp]:1080"] "https://example.com/" => Fails("all_proxy"), R::None;
        ["http_proxy=http://[fe80::1%25lo]:3128"] "http://example.com/" => Fails("http_proxy"), R::None;
            curl: Curl::Differs(Seen::Nothing, ZONE_PROXY);
        ["https_proxy=ftp://u:s3cret@p1:3128"] "http://example.com/" => Fails("https_proxy"), R::None;
            curl: Curl::Differs(Seen::Direct, EAGER);

        // --- no_proxy: which variable, `*`, empty -------------------------------------------
        ["https_proxy=http://p1:3128", "no_proxy=*"] "https://example.com/" => Direct, R::NoProxy("*");
        ["https_proxy=http://p1:3128", "NO_PROXY=*"] "https://example.com/" => Direct, R::NoProxy("*");
        ["https_proxy=http://p1:3128", "no_proxy=example.com", "NO_PROXY=*"] "https://other.org/" => Via(P1), R::Scheme("https_proxy");
        ["https_proxy=http://p1:3128", "no_proxy="] "https://example.com/" => Via(P1), R::Scheme("https_proxy");
        ["https_proxy=http://p1:3128", "no_proxy=", "NO_PROXY=example.com"] "https://example.com/" => Direct, R::NoProxy("example.com");
        ["https_proxy=http://p1:3128", "no_proxy=localhost,*"] "https://example.com/" => Direct, R::NoProxy("*");
            curl: Curl::Differs(Seen::P1, STAR_IN_LIST);
        ["http_proxy=http://p1:3128", "https_proxy=http://p2:3128", "no_proxy=example.com"] "http://www.example.com/" => Direct, R::NoProxy("example.com");
        ["http_proxy=http://p1:3128", "https_proxy=http://p2:3128", "no_proxy=example.com"] "https://example.org/" => Via(P2), R::Scheme("https_proxy");
        ["all_proxy=http://p1:3128", "no_proxy=example.com"] "https://example.com/" => Direct, R::NoProxy("example.com");

        // --- no_proxy: names ----------------------------------------------------------------
        ["https_proxy=http://p1:3128", "no_proxy=example.com"] "https://example.com/" => Direct, R::NoProxy("example.com");
        ["https_proxy=http://p1:3128", "no_proxy=example.com"] "https://www.example.com/" => Direct, R::NoProxy("example.com");
        ["https_proxy=http://p1:3128", "no_proxy=example.com"] "https://badexample.com/" => Via(P1), R::Scheme("https_proxy");
        ["https_proxy=http://p1:3128", "no_proxy=example.com"] "https://example.com.evil.org/" => Via(P1), R::Scheme("https_proxy");
        ["https_proxy=http://p1:3128", "no_proxy=.example.com"] "https://example.com/" => Direct, R::NoProxy(".example.com");
        ["https_proxy=http://p1:3128", "no_proxy=.example.com"] "https://a.b.example.com/" => Direct, R::NoProxy(".example.com");
        ["https_proxy=http://p1:3128", "no_proxy=*.example.com"] "https://www.example.com/" => Direct, R::NoProxy("*.example.com");
            curl: Curl::Differs(Seen::P1, STAR_DOT);
        ["https_proxy=http://p1:3128", "no_proxy=host.example.com"] "https://example.com/" => Via(P1), R::Scheme("https_proxy");
        ["https_proxy=http://p1:3128", "no_proxy=host.example.com"] "https://host.example.com/" => Direct, R::NoProxy("host.example.com");
        ["https_proxy=http://p1:3128", "no_proxy=EXAMPLE.com"] "https://Www.Example.COM/" => Direct, R::NoProxy("EXAMPLE.com");
        ["https_proxy=http://p1:3128", "no_proxy=example.com"] "https://www.example.com./" => Direct, R::NoProxy("example.com");
        ["https_proxy=http://p1:3128", "no_proxy=example.com."] "https://www.example.com/" => Direct, R::NoProxy("example.com.");
        ["http_proxy=http://p1:3128", "no_proxy=localhost"] "http://localhost:8080/" => Direct, R::NoProxy("localhost");
        ["http_proxy=http://p1:3128", "no_proxy=localhost"] "http://127.0.0.1:8080/" => Via(P1), R::Scheme("http_proxy");

        // --- no_proxy: separators -----------------------------------------------------------
        ["https_proxy=http://p1:3128", "no_proxy=a.org, example.com"] "https://example.com/" => Direct, R::NoProxy("example.com");
        ["https_proxy=http://p1:3128", "no_proxy=a.org example.com"] "https://example.com/" => Direct, R::NoProxy("example.com");
        ["https_proxy=http://p1:3128", "no_proxy=a.org,,\texample.com , b.org"] "https://example.com/" => Direct, R::NoProxy("example.com");
        ["https_proxy=http://p1:3128", "no_proxy= ", "NO_PROXY=example.com"] "https://example.com/" => Direct, R::NoProxy("example.com");
            curl: Curl::Differs(Seen::P1, BLANK);
        ["https_proxy= ", "HTTPS_PROXY=http://p1:3128"] "https://example.com/" => Via(P1), R::Scheme("https_proxy");
            curl: Curl::Differs(Seen::Nothing, BLANK);
        ["https_proxy=http://p1:3128", "no_proxy= a.org , b.org "] "https://example.com/" => Via(P1), R::Scheme("https_proxy");

        // --- no_proxy: IPv4 -----------------------------------------------------------------
        ["http_proxy=http://p1:3128", "no_proxy=127.0.0.1"] "http://127.0.0.1:8080/" => Direct, R::NoProxy("127.0.0.1");
        ["http_proxy=http://p1:3128", "no_proxy=127.0.0.1"] "http://127.0.0.2/" => Via(P1), R::Scheme("http_proxy");
        ["http_proxy=http://p1:3128", "no_proxy=127.0.0.1"] "http://localhost/" => Via(P1), R::Scheme("http_proxy");
        ["https_proxy=http://p1:3128", "no_proxy=10.0.0.0/8"] "https://10.1.2.3/" => Direct, R::NoProxy("10.0.0.0/8");
        ["https_proxy=http://p1:3128", "no_proxy=10.0.0.0/8"] "https://11.1.2.3/" => Via(P1), R::Scheme("https_proxy");
        ["https_proxy=http://p1:3128", "no_proxy=192.168.1.0/24"] "https://192.168.1.77:8443/" => Direct, R::NoProxy("192.168.1.0/24");
        ["https_proxy=http://p1:3128", "no_proxy=10.1.2.3/0"] "https://172.16.0.1/" => Direct, R::NoProxy("10.1.2.3/0");
            curl: Curl::Differs(Seen::P1, PREFIX_ZERO);

        // --- no_proxy: IPv6 -----------------------------------------------------------------
        ["http_proxy=http://p1:3128", "no_proxy=::1"] "http://[::1]:8080/" => Direct, R::NoProxy("::1");
        ["http_proxy=http://p1:3128", "no_proxy=::1"] "http://[0:0:0:0:0:0:0:1]/" => Direct, R::NoProxy("::1");
        ["https_proxy=http://p1:3128", "no_proxy=fd00::/8"] "https://[fd12:3456::1]/" => Direct, R::NoProxy("fd00::/8");
            curl: Curl::Differs(Seen::P1, CURL_V6_CIDR);
        ["https_proxy=http://p1:3128", "no_proxy=fd00::/8"] "https://[2001:db8::1]/" => Via(P1), R::Scheme("https_proxy");
        ["https_proxy=http://p1:3128", "no_proxy=[::1]"] "https://[::1]/" => Direct, R::NoProxy("[::1]");
            curl: Curl::Differs(Seen::P1, BRACKETS);

        // --- no_proxy: IPv6 zone ids (RFC 6874). curl 7.88 keeps the zone apart from the
        // address (lib/urlapi.c) and matches the address alone, as Go does since
        // CVE-2025-22870. A name entry never matches inside brackets.
        ["http_proxy=http://p1:3128", "no_proxy=internal.corp"] "http://[fe80::1%25.internal.corp]:9/" => Via(P1), R::Scheme("http_proxy");
        ["http_proxy=http://p1:3128", "no_proxy=.corp"] "http://[fe80::1%25.corp]/" => Via(P1), R::Scheme("http_proxy");
        ["http_proxy=http://p1:3128", "no_proxy=fe80::1"] "http://[fe80::1%25lo]:9/" => Direct, R::NoProxy("fe80::1");
        ["http_proxy=http://p1:3128", "no_proxy=fe80::/16"] "http://[fe80::1%25lo]:9/" => Direct, R::NoProxy("fe80::/16");
            curl: Curl::Differs(Seen::P1, CURL_V6_CIDR);
        ["http_proxy=http://p1:3128", "no_proxy=internal.corp"] "http://[internal.corp]/" => Via(P1), R::Scheme("http_proxy");
            curl: Curl::Differs(Seen::Nothing, NOT_V6);

        // --- no_proxy: host:port entries ----------------------------------------------------
        ["http_proxy=http://p1:3128", "no_proxy=example.com:8080"] "http://example.com:8080/" => Direct, R::NoProxy("example.com:8080");
            curl: Curl::Differs(Seen::P1, PORT_ENTRY);
        ["http_proxy=http://p1:3128", "no_proxy=example.com:8080"] "http://example.com/" => Via(P1), R::Scheme("http_proxy");
        ["https_proxy=http://p1:3128", "no_proxy=[::1]:8443"] "https://[::1]:8443/" => Direct, R::NoProxy("[::1]:8443");
            curl: Curl::Differs(Seen::P1, PORT_ENTRY);
        ["https_proxy=http://p1:3128", "no_proxy=[::1]:8443"] "https://[::1]/" => Via(P1), R::Scheme("https_proxy");
        ["http_proxy=http://p1:3128", "no_proxy=127.0.0.1:8080"] "http://127.0.0.1:8080/" => Direct, R::NoProxy("127.0.0.1:8080");
            curl: Curl::Differs(Seen::P1, PORT_ENTRY);
    }
}

fn lookup(env: &[&str]) -> HashMap<String, String> {
    env.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("NAME=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// What the crate does with a row: `Ok((proxy shown, rule))` or the error.
fn crate_choice(case: &Case) -> Result<(Want, Rule), tower_tunnel::Error> {
    let env = lookup(case.env);
    let proxies = Proxies::from_env_with(|name| env.get(name).cloned())?;
    let uri: Uri = case.url.parse().expect("table URL");
    let decision = proxies.decide(&uri)?;
    let want = match decision.proxy() {
        None => Direct,
        // Leak the string: `Want` holds `&'static str`, and the table is small.
        Some(p) => Via(Box::leak(p.to_string().into_boxed_str())),
    };
    Ok((want, decision.rule().clone()))
}

#[test]
fn table() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let at = format!("row {}: {:?} {}", case.line, case.env, case.url);
        match (crate_choice(case), case.want) {
            (Ok((got, rule)), want) => {
                if got != want || Some(&rule) != case.rule.rule().as_ref() {
                    failures.push(format!(
                        "{at}: got {got:?} ({rule:?}), want {want:?} ({:?})",
                        case.rule
                    ));
                }
            }
            (Err(err), Fails(var)) => {
                let shown = format!("{err} | {err:?}");
                if err.kind() != ErrorKind::InvalidProxy
                    || !shown.contains(var)
                    || shown.contains("s3cret")
                {
                    failures.push(format!("{at}: bad error: {shown}"));
                }
            }
            (Err(err), want) => failures.push(format!("{at}: got error {err}, want {want:?}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The rule's `Display` is what `fetch` prints as the reason: it names the entry or the
/// variable.
#[test]
fn rules_explain_themselves() {
    let shown = |r: R| r.rule().unwrap().to_string();
    assert!(shown(R::NoProxy(".corp")).contains("`.corp`"));
    assert!(shown(R::Scheme("https_proxy")).contains("https_proxy"));
    assert!(shown(R::All).contains("all_proxy"));
    assert!(!shown(R::NoMatch).is_empty());
    assert!(!shown(R::NoProxyConfigured).is_empty());
}

/// `NoProxy` on its own, for what the environment table cannot show.
#[test]
fn no_proxy_direct() {
    let list = NoProxy::parse("*.corp, [fe80::1]:443, 10.0.0.0/8, bad/entry, user@host, :80");
    assert!(list.matches("db.corp", 1));
    assert!(list.matches("corp", 1));
    assert!(list.matches("[fe80::1]", 443));
    assert!(list.matches("fe80::1", 443));
    assert!(!list.matches("[fe80::1]", 80));
    assert!(list.matches("10.255.0.1", 1));
    assert!(!list.matches("bad", 1));
    assert!(!list.matches("host", 1));
    assert!(NoProxy::parse("").is_empty());
    assert!(NoProxy::parse(" , ,").is_empty());
    assert!(!NoProxy::parse("*").is_empty());
    assert!(!NoProxy::parse("x").matches("", 80));
}

// --- the cross-check against curl ----------------------------------------------------------

/// A loopback listener that accepts, counts and closes: every direct connection lands here.
async fn sink() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}

fn curl_on_path() -> bool {
    std::process::Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How the crate's choice shows up at the fixtures.
fn seen_for(want: Want) -> Seen {
    match want {
        Direct => Seen::Direct,
        Via(p) if p.contains("p1:") => Seen::P1,
        Via(p) if p.contains("p2:") => Seen::P2,
        Via(p) => panic!("table proxy {p} is neither p1 nor p2"),
        Fails(_) => Seen::Nothing,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs curl on PATH (Debian: curl); .ci/run runs it with --ignored"]
async fn curl_agrees() {
    assert!(
        curl_on_path(),
        "`curl` is not on PATH, so the table cannot be cross-checked (Debian: curl)"
    );
    let p1 = TestProxy::start().await.unwrap();
    let p2 = TestProxy::start().await.unwrap();
    let (sink_port, sink_count) = sink().await;
    let path = std::env::var("PATH").unwrap_or_default();
    let p1_addr = format!("127.0.0.1:{}", p1.addr().port());
    let p2_addr = format!("127.0.0.1:{}", p2.addr().port());

    let mut report = Vec::new();
    let mut failures = Vec::new();
    for case in cases() {
        if let Curl::NotRun(why) = case.curl {
            report.push(format!("row {:>2}: not run: {why}", case.line));
            continue;
        }
        let before = (
            p1.connections(),
            p2.connections(),
            sink_count.load(Ordering::SeqCst),
        );
        let mut cmd = tokio::process::Command::new("env");
        cmd.arg("-i").arg(format!("PATH={path}"));
        for kv in case.env {
            cmd.arg(kv.replace("p1:3128", &p1_addr).replace("p2:3128", &p2_addr));
        }
        cmd.args(["curl", "-q", "-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(["--max-time", "5"])
            .arg("--connect-to")
            .arg(format!("::127.0.0.1:{sink_port}"))
            .arg(case.url)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
            .await
            .expect("curl ran past --max-time")
            .expect("run curl");
        // The fixtures count a connection when they accept it, before curl hears back.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let after = (
            p1.connections(),
            p2.connections(),
            sink_count.load(Ordering::SeqCst),
        );
        let seen = if after.0 > before.0 {
            Seen::P1
        } else if after.1 > before.1 {
            Seen::P2
        } else if after.2 > before.2 {
            Seen::Direct
        } else {
            Seen::Nothing
        };
        let expected = match case.curl {
            Curl::Differs(seen, _) => seen,
            _ => seen_for(case.want),
        };
        let line = format!(
            "row {:>2}: curl {:<7} crate {:<28} exit {:?} code {} {:?} {}",
            case.line,
            format!("{seen:?}"),
            format!("{:?}", case.want),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            case.env,
            case.url,
        );
        let line = match case.curl {
            Curl::Differs(_, why) => format!("{line}\n          differs on purpose: {why}"),
            _ => line,
        };
        if seen != expected {
            failures.push(format!("{line}   <- expected curl {expected:?}"));
        }
        report.push(line);
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "curl disagrees with the table:\n{}",
        failures.join("\n")
    );
}

//! The fuzz targets' properties, run by proptest in every `cargo test`: the CONNECT answer
//! parser, the CONNECT read loop and `Proxy::new` never panic, never stall, and never
//! buffer past the cap; and no target URI goes direct unless a bypass entry covers its
//! host, judged by a model written apart from `NoProxy`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::Uri;
use proptest::prelude::*;
use tower_tunnel::__fuzz::{connect_exchange, parse_reply, socks_reply, Exchange, Parsed};
use tower_tunnel::{ErrorKind, NoProxy, Proxies, Proxy, Rule};

/// A valid answer head: a status line with a 2xx or non-2xx code and a few header fields.
fn valid_head() -> impl Strategy<Value = (u16, Vec<u8>)> {
    let code = prop_oneof![200u16..=299, 300u16..=599];
    let field = ("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,40}");
    (code, prop::collection::vec(field, 0..8), any::<bool>()).prop_map(|(code, fields, v10)| {
        let mut head = format!("HTTP/1.{} {code} Whatever\r\n", u8::from(!v10));
        for (name, value) in fields {
            head.push_str(&format!("{name}: {}\r\n", value.trim()));
        }
        head.push_str("\r\n");
        (code, head.into_bytes())
    })
}

/// The fixed texts of `Proxy::new`'s errors that hold a digit.
const FIXED_MESSAGES: &str =
    "the scheme must be http, https, socks5, socks5h, socks4a, socks4 or socks; \
     user name is not UTF-8; password is not UTF-8; invalid IPv6 address";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn socks_parsers_never_panic_nor_overclaim(
        which in 0u8..4,
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(Some(consumed)) = socks_reply(which, &bytes) {
            prop_assert!(consumed > 0 && consumed <= bytes.len());
        }
    }

    #[test]
    fn parse_reply_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        match parse_reply(&bytes) {
            Ok(Parsed::Interim(n)) | Ok(Parsed::Established(n)) => {
                prop_assert!(n > 0 && n <= bytes.len())
            }
            _ => {}
        }
    }

    #[test]
    fn valid_head_split_anywhere((code, head) in valid_head(), cut in any::<prop::sample::Index>(), tail in prop::collection::vec(any::<u8>(), 0..32)) {
        let cut = cut.index(head.len());
        // Any prefix is incomplete, never an error.
        prop_assert_eq!(parse_reply(&head[..cut]), Ok(Parsed::Partial));
        // The whole head parses, whatever follows it.
        let mut whole = head.clone();
        whole.extend_from_slice(&tail);
        let expected = if (200..300).contains(&code) {
            Parsed::Established(head.len())
        } else {
            Parsed::Refused(code)
        };
        prop_assert_eq!(parse_reply(&whole), Ok(expected));
        // Through the read loop, split in two reads at the cut, the result is the same.
        let got = connect_exchange(&[&whole[..cut], &whole[cut..]], 16 * 1024);
        match got {
            Some(Exchange::Established { head_end, buffered }) => {
                prop_assert!((200..300).contains(&code));
                prop_assert_eq!(head_end, head.len());
                prop_assert_eq!(buffered, whole.len());
            }
            Some(Exchange::Failed(kind)) => {
                prop_assert!(!(200..300).contains(&code));
                let want = if code == 407 { ErrorKind::ProxyAuthRequired } else { ErrorKind::ProxyRefused };
                prop_assert_eq!(kind, want);
            }
            None => prop_assert!(false, "stalled"),
        }
    }

    #[test]
    fn exchange_on_arbitrary_reads_is_bounded(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..40),
        cap in 64usize..4096,
    ) {
        let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        match connect_exchange(&chunks, cap) {
            Some(Exchange::Established { head_end, buffered }) => {
                prop_assert!(head_end <= buffered && buffered <= cap)
            }
            Some(Exchange::Failed(_)) => {}
            None => prop_assert!(false, "stalled"),
        }
    }

    #[test]
    fn endless_headers_stop_at_the_cap(cap in 64usize..8192, line in "[A-Za-z]{1,8}: [a-z]{0,200}") {
        let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
        while answer.len() < 64 * 1024 {
            answer.extend_from_slice(line.as_bytes());
            answer.extend_from_slice(b"\r\n");
        }
        let got = connect_exchange(&[&answer], cap);
        prop_assert_eq!(got, Some(Exchange::Failed(ErrorKind::ProxyHeadersTooLarge)));
    }

    #[test]
    fn proxy_url_never_panics(url in prop_oneof![".{0,80}", bracketed_proxy_url()]) {
        match Proxy::new(&url) {
            Ok(p) => {
                prop_assert!(p.authority().port_u16().is_some());
                prop_assert!(!p.authority().as_str().contains('@'));
                prop_assert!(!p.to_string().contains('@'));
                // Brackets hold an IPv6 address, nothing else.
                if let Some(inner) = p.authority().host().strip_prefix('[') {
                    let inner = inner.strip_suffix(']').unwrap_or(inner);
                    prop_assert!(inner.parse::<Ipv6Addr>().is_ok(), "{}", url);
                }
            }
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidProxy),
        }
    }

    #[test]
    fn rejected_proxy_url_never_echoes_the_password(
        scheme in "(http|https|socks5|ftp|)",
        password in "[A-Za-z]{2,10}[0-9][A-Za-z0-9]{1,10}",
        rest in "[ -~]{0,30}",
    ) {
        let url = format!("{scheme}://user:{password}@{rest}");
        if let Err(e) = Proxy::new(&url) {
            let shown = format!("{e} {e:?}");
            // A "password" that is part of a fixed message ("socks5h") proves nothing.
            if !FIXED_MESSAGES.contains(&password) {
                prop_assert!(!shown.contains(&password), "{}", shown);
            }
        }
    }

    #[test]
    fn proxy_url_password_is_never_shown(
        user in "[a-z]{1,8}",
        pass in "[A-Za-z0-9]{12,20}",
        port in 1u16..,
    ) {
        let p = Proxy::new(&format!("http://{user}:{pass}@127.0.0.1:{port}")).unwrap();
        prop_assert!(p.has_credentials());
        let shown = format!("{:?}", p);
        prop_assert!(!shown.contains(&pass));
    }
}

/// A proxy URL with something in brackets: an address, a near miss, or a name.
fn bracketed_proxy_url() -> impl Strategy<Value = String> {
    ("(http|socks5h)://", host_soup(), "(|:3128)")
        .prop_map(|(scheme, inner, port)| format!("{scheme}[{inner}]{port}"))
}

// --- no target goes direct unless a bypass entry covers its host ---------------------------

/// One bypass entry, as the model sees it; [`Entry::text`] writes it for `NoProxy::parse`.
#[derive(Clone, Debug)]
enum Entry {
    Star,
    /// A name: `corp`, `.corp`, `*.corp` or `corp.`, maybe with a port.
    Name(String, &'static str, Option<u16>),
    V4(Ipv4Addr, Option<u16>),
    /// An IPv6 address, bare or in brackets (only then with a port).
    V6(Ipv6Addr, bool, Option<u16>),
    Net(IpAddr, u8),
}

impl Entry {
    fn text(&self) -> String {
        let port = |p: &Option<u16>| p.map(|p| format!(":{p}")).unwrap_or_default();
        match self {
            Entry::Star => "*".into(),
            Entry::Name(name, form, p) => format!("{}{p}", form.replace("NAME", name), p = port(p)),
            Entry::V4(ip, p) => format!("{ip}{}", port(p)),
            Entry::V6(ip, false, _) => ip.to_string(),
            Entry::V6(ip, true, p) => format!("[{ip}]{}", port(p)),
            Entry::Net(ip, bits) => format!("{ip}/{bits}"),
        }
    }

    /// The model: whether this entry covers a target whose `Uri::host()` is `host`.
    fn covers(&self, host: &str, port: Option<u16>) -> bool {
        let port_ok = |p: &Option<u16>| p.is_none() || *p == port;
        match (self, model_host(host)) {
            (Entry::Star, _) => true,
            (Entry::Name(name, _, p), ModelHost::Name(h)) => {
                let (h, name) = (h.to_ascii_lowercase(), name.to_ascii_lowercase());
                port_ok(p) && (h == name || h.ends_with(&format!(".{name}")))
            }
            (Entry::V4(ip, p), ModelHost::Ip(IpAddr::V4(h))) => port_ok(p) && *ip == h,
            (Entry::V6(ip, _, p), ModelHost::Ip(IpAddr::V6(h))) => port_ok(p) && *ip == h,
            (Entry::Net(IpAddr::V4(net), bits), ModelHost::Ip(IpAddr::V4(h))) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*net) & mask == u32::from(h) & mask
            }
            (Entry::Net(IpAddr::V6(net), bits), ModelHost::Ip(IpAddr::V6(h))) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*net) & mask == u128::from(h) & mask
            }
            _ => false,
        }
    }
}

enum ModelHost {
    Ip(IpAddr),
    Name(String),
    /// Only `*` covers it.
    Nothing,
}

/// What a host is, as RFC 3986 §3.2.2 and RFC 6874 say, written without looking at
/// `NoProxy`: brackets hold an IPv6 address, maybe followed by `%25` (or `%`) and a zone
/// id; outside brackets, an IPv4 address or a name (a trailing dot dropped).
fn model_host(host: &str) -> ModelHost {
    if let Some(inner) = host.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return ModelHost::Nothing;
        };
        let (addr, zone) = match inner.find('%') {
            Some(i) => (&inner[..i], Some(&inner[i + 1..])),
            None => (inner, None),
        };
        let zone = zone.map(|z| z.strip_prefix("25").unwrap_or(z));
        let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~%".contains(c);
        if zone.is_some_and(|z| z.is_empty() || !z.chars().all(unreserved)) {
            return ModelHost::Nothing;
        }
        return match addr.parse::<Ipv6Addr>() {
            Ok(ip) => ModelHost::Ip(ip.into()),
            Err(_) => ModelHost::Nothing,
        };
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return ModelHost::Ip(ip.into());
    }
    if host.is_empty() || host.contains([':', '[', ']', '%']) {
        return ModelHost::Nothing;
    }
    ModelHost::Name(host.to_owned())
}

/// The port a target means: its own, else its scheme's (none for other schemes).
fn model_port(uri: &Uri) -> Option<u16> {
    let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
    uri.port_u16().or(match scheme.as_deref() {
        Some("http" | "ws") => Some(80),
        Some("https" | "wss") => Some(443),
        _ => None,
    })
}

const LABELS: &[&str] = &[
    "corp", "internal", "a", "lo", "x1", "eth0", "Corp", "1", "10",
];

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(LABELS), 1..4).prop_map(|l| l.join("."))
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    prop::sample::select(vec![
        "fe80::1",
        "fe80::2",
        "::1",
        "::",
        "fd00::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",
    ])
    .prop_map(|s| s.parse().unwrap())
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    prop::sample::select(vec![
        "10.0.0.1",
        "10.1.2.3",
        "127.0.0.1",
        "192.168.1.1",
        "1.10.1.1",
    ])
    .prop_map(|s| s.parse().unwrap())
}

fn entry() -> impl Strategy<Value = Entry> {
    let port = prop::option::of(prop::sample::select(vec![9u16, 80, 443]));
    let form = prop::sample::select(vec!["NAME", ".NAME", "*.NAME", "NAME."]);
    prop_oneof![
        1 => Just(Entry::Star),
        6 => (name(), form, port.clone()).prop_map(|(n, f, p)| Entry::Name(n, f, p)),
        2 => (v4(), port.clone()).prop_map(|(ip, p)| Entry::V4(ip, p)),
        3 => (v6(), any::<bool>(), port)
            .prop_map(|(ip, b, p)| Entry::V6(ip, b, if b { p } else { None })),
        1 => (v4(), 0u8..=32).prop_map(|(ip, b)| Entry::Net(ip.into(), b)),
        2 => (v6(), 0u8..=128).prop_map(|(ip, b)| Entry::Net(ip.into(), b)),
    ]
}

/// Any string from a small alphabet of the pieces that confuse host parsers.
fn host_soup() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "[", "]", "%25", "%", ".", ":", "::", "0", "1", "fe80", "ffff", "10", "a", "corp",
        "internal", "lo", "v1", "-", "_", "~", "%2e",
    ];
    prop::collection::vec(prop::sample::select(PIECES), 0..12).prop_map(|p| p.concat())
}

/// Hosts an honest URI may hold: names, IPv4, and IPv6 with or without a zone id.
fn well_formed_host() -> impl Strategy<Value = String> {
    let zone = prop::option::of((prop::sample::select(vec!["%25", "%"]), name()));
    prop_oneof![
        (name(), any::<bool>()).prop_map(|(n, dot)| if dot { format!("{n}.") } else { n }),
        v4().prop_map(|ip| ip.to_string()),
        (v6(), zone).prop_map(|(ip, zone)| match zone {
            Some((pct, z)) => format!("[{ip}{pct}{z}]"),
            None => format!("[{ip}]"),
        }),
    ]
}

/// A target URI around `host`: some scheme (or none), some port (or none).
fn target(host: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec![
        "http://", "https://", "ws://", "wss://", "ftp://", "HTTP://", "",
    ]);
    let port = prop::sample::select(vec!["", ":9", ":80", ":443"]);
    (scheme, host, port).prop_map(|(scheme, host, port)| {
        if scheme.is_empty() {
            format!("{host}{}", if port.is_empty() { ":80" } else { port })
        } else {
            format!("{scheme}{host}{port}/")
        }
    })
}

/// Every target proxied, except what `entries` bypass.
fn proxied_except(entries: &[Entry]) -> Proxies {
    let list: Vec<String> = entries.iter().map(Entry::text).collect();
    Proxies::new()
        .with_all(Proxy::new("http://127.0.0.1:3128").unwrap())
        .with_no_proxy(NoProxy::parse(&list.join(",")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Direct only when the entry the rule names covers the host, by the model. Any
    /// string the `http` crate accepts as a URI is fair game.
    #[test]
    fn direct_only_when_an_entry_covers_the_host(
        entries in prop::collection::vec(entry(), 0..5),
        uri in target(prop_oneof![host_soup(), well_formed_host()]),
    ) {
        let Ok(uri) = uri.parse::<Uri>() else { return Ok(()) };
        let host = uri.host().unwrap_or_default();
        let port = model_port(&uri);
        let decision = proxied_except(&entries).decide(&uri).unwrap();
        if decision.proxy().is_none() {
            let Rule::NoProxy(text) = decision.rule() else {
                return Err(TestCaseError::fail(format!("direct by {:?}", decision.rule())));
            };
            prop_assert!(
                entries.iter().any(|e| e.text() == *text && e.covers(host, port)),
                "{uri} went direct by `{text}`, which does not cover host {host} port {port:?}"
            );
        }
    }

    /// And the other way, for honest hosts: what the model says is covered goes direct.
    #[test]
    fn covered_hosts_go_direct(
        entries in prop::collection::vec(entry(), 0..5),
        uri in target(well_formed_host()),
    ) {
        let uri: Uri = uri.parse().unwrap();
        let host = uri.host().unwrap_or_default();
        let covered = entries.iter().any(|e| e.covers(host, model_port(&uri)));
        let direct = proxied_except(&entries).decide(&uri).unwrap().proxy().is_none();
        prop_assert_eq!(direct, covered, "{} {:?}", uri, entries);
    }
}

#[test]
fn known_answers() {
    assert_eq!(
        parse_reply(b"HTTP/1.1 200 OK\nVia: x\n\n"),
        Ok(Parsed::Established(24))
    );
    assert_eq!(
        parse_reply(b"HTTP/1.1 100 Continue\r\n\r\n"),
        Ok(Parsed::Interim(25))
    );
    assert!(parse_reply(b"HTTP/9.9 200 OK\r\n\r\n").is_err());
    assert_eq!(
        connect_exchange(
            &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nX"],
            1024
        ),
        Some(Exchange::Established {
            head_end: 44,
            buffered: 45
        })
    );
    assert_eq!(
        connect_exchange(&[], 1024),
        Some(Exchange::Failed(ErrorKind::ProxyClosed))
    );
    assert_eq!(
        connect_exchange(&[b"HTTP/1.1 2"], 1024),
        Some(Exchange::Failed(ErrorKind::ProxyTruncated))
    );
}

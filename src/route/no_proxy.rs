//! [`NoProxy`]: the bypass list, in the `NO_PROXY` format.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// A bypass list in the `NO_PROXY` format.
///
/// Entries are separated by commas or white space:
///
/// | entry | matches |
/// |---|---|
/// | `*` | every target |
/// | `example.com`, `.example.com`, `*.example.com` | `example.com` and every name under it (not `badexample.com`) |
/// | `192.168.1.10`, `::1`, `[::1]` | that IP literal (whatever an IPv6 target's zone id) |
/// | `10.0.0.0/8`, `fd00::/8` | IP literals in the range |
/// | `example.com:8080`, `[::1]:8443` | that host on that port only |
///
/// Names match case-insensitively and without DNS: an IP entry matches a
/// target written as that IP, never a name that resolves to it (as curl).
/// A trailing dot on the target or the entry is ignored (as curl). IP
/// literals compare as addresses, so `::1` matches `[0:0:0:0:0:0:0:1]`.
/// Unparseable entries are ignored, as curl ignores them.
///
/// The target's host is read before anything is matched. A bracketed host
/// is an IPv6 address, with or without a zone id (`[fe80::1%25eth0]`,
/// RFC 6874): only IP entries can match it, by its address without the
/// zone, so `fe80::1` covers `[fe80::1%25eth0]` and a name entry never
/// matches anything inside brackets (`internal.corp` does not cover
/// `[fe80::1%25.internal.corp]`, Go's CVE-2025-22870). A bracketed host
/// that is not an IPv6 address (`[v1.x]`, `[internal.corp]`) matches only
/// `*`. curl (7.88) and Go (since that fix) also match the address
/// without its zone.
///
/// Entries with a port match only targets whose port is known: written in
/// the URI, or the default of its scheme (80 for `http` and `ws`, 443 for
/// `https` and `wss`).
///
/// Differences from curl (7.88, checked by `tests/env_rules.rs`), on
/// purpose:
///
/// - Entries with a port (`example.com:8080`, `[::1]:8443`) are a Go and
///   reqwest extension: they match that port only. curl has no such
///   entries, and they never match there.
/// - `*` bypasses every target wherever it appears in the list, as in Go;
///   curl honours `*` only as the whole value (`localhost,*` is not "all").
/// - `*.example.com` is read as `.example.com`; curl has no wildcards and
///   such an entry never matches there.
/// - Bracketed IPv6 entries (`[::1]`) are the address; curl compares the
///   brackets as text and never matches.
/// - A `/0` prefix is the whole address family, as CIDR says; curl reads
///   `/0` as "this exact address".
/// - IPv6 ranges (`fd00::/8`) match IPv6 targets; curl 7.88 compares
///   IPv6 targets as text, so a range never matches there (a curl bug,
///   curl/curl#19828).
///
/// # Example
///
/// ```
/// use tower_tunnel::NoProxy;
///
/// let bypass = NoProxy::parse(".corp, 127.0.0.0/8, [::1]:8443");
/// assert!(bypass.matches("git.corp", 443));
/// assert!(bypass.matches("corp", 443));
/// assert!(!bypass.matches("notcorp", 443));
/// assert!(bypass.matches("127.5.5.5", 80));
/// assert!(bypass.matches("[::1]", 8443));
/// assert!(!bypass.matches("[::1]", 443));
/// assert!(!bypass.matches("[fe80::1%25.corp]", 443)); // an address, not a name
/// assert!(NoProxy::parse("fe80::1").matches("[fe80::1%25eth0]", 443));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    text: String,
    kind: EntryKind,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum EntryKind {
    Domain(String),
    Ip(IpAddr),
    Net(IpNet),
}

impl NoProxy {
    /// Parses a list such as `"localhost,.corp,10.0.0.0/8"`.
    pub fn parse(list: &str) -> NoProxy {
        let mut no_proxy = NoProxy::default();
        for text in list.split(|c: char| c == ',' || c.is_whitespace()) {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if text == "*" {
                no_proxy.all = true;
                continue;
            }
            if let Some((kind, port)) = parse_entry(text) {
                no_proxy.entries.push(Entry {
                    text: text.to_owned(),
                    kind,
                    port,
                });
            }
        }
        no_proxy
    }

    /// Whether a target `host` on `port` bypasses the proxy. `host` is as
    /// [`Uri::host`](http::Uri::host) gives it: an IPv6 address in
    /// brackets, perhaps with a zone id (`[fe80::1%25eth0]`); a bare IPv6
    /// address is read as one too.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.matching(host, Some(port)).is_some()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        !self.all && self.entries.is_empty()
    }

    /// The entry that covers `host` on `port`, if any. A `port` of `None`
    /// (a scheme without a default port) is matched by entries without a
    /// port only.
    pub(crate) fn matching(&self, host: &str, port: Option<u16>) -> Option<&str> {
        if self.all {
            return Some("*");
        }
        let target = TargetHost::read(host);
        self.entries
            .iter()
            .find(|e| {
                e.port.is_none_or(|p| Some(p) == port)
                    && match (&e.kind, &target) {
                        (EntryKind::Ip(entry), TargetHost::Ip(ip)) => entry == ip,
                        (EntryKind::Net(net), TargetHost::Ip(ip)) => net.contains(ip),
                        (EntryKind::Domain(d), TargetHost::Name(name)) => domain_matches(name, d),
                        _ => false,
                    }
            })
            .map(|e| e.text.as_str())
    }
}

/// A target's host, read before any entry is matched against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TargetHost<'a> {
    /// An IP literal; an IPv6 zone id is dropped.
    Ip(IpAddr),
    /// A name, without its trailing dot.
    Name(&'a str),
    /// Neither (`[v1.x]`, `[internal.corp]`, an empty host): only `*`
    /// covers it.
    Other,
}

impl<'a> TargetHost<'a> {
    fn read(host: &'a str) -> Self {
        // RFC 3986 §3.2.2: brackets hold an IP literal, never a name, so
        // nothing inside them is ever matched as a domain.
        if let Some(inner) = host.strip_prefix('[') {
            return match inner.strip_suffix(']').and_then(ipv6_literal) {
                Some(ip) => TargetHost::Ip(IpAddr::V6(ip)),
                None => TargetHost::Other,
            };
        }
        // A bare IPv6 address, as a caller of `NoProxy::matches` may write it.
        if host.contains(':') {
            return ipv6_literal(host).map_or(TargetHost::Other, |ip| TargetHost::Ip(ip.into()));
        }
        let name = host.strip_suffix('.').unwrap_or(host);
        if let Ok(ip) = name.parse::<Ipv4Addr>() {
            return TargetHost::Ip(ip.into());
        }
        if name.is_empty() || name.contains(['[', ']', '%']) {
            return TargetHost::Other;
        }
        TargetHost::Name(name)
    }
}

/// An IPv6 address, with an optional zone id after `%25` (RFC 6874, as in
/// URIs) or `%` (RFC 4007, as `http::Uri` also accepts). The zone names an
/// interface of this machine, not the host, so it is checked and dropped.
fn ipv6_literal(text: &str) -> Option<Ipv6Addr> {
    let (addr, zone) = match text.split_once('%') {
        Some((addr, zone)) => (addr, Some(zone.strip_prefix("25").unwrap_or(zone))),
        None => (text, None),
    };
    // RFC 6874: ZoneID = 1*( unreserved / pct-encoded ).
    let zone_ok = zone.is_none_or(|z| {
        !z.is_empty()
            && z.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
    });
    zone_ok.then(|| addr.parse().ok()).flatten()
}

fn domain_matches(host: &str, domain: &str) -> bool {
    let (h, d) = (host.as_bytes(), domain.as_bytes());
    if h.len() < d.len() || !h[h.len() - d.len()..].eq_ignore_ascii_case(d) {
        return false;
    }
    h.len() == d.len() || h[h.len() - d.len() - 1] == b'.'
}

fn parse_entry(text: &str) -> Option<(EntryKind, Option<u16>)> {
    // `[v6]` or `[v6]:port`.
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: IpAddr = ip.parse().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((EntryKind::Ip(ip), port));
    }
    if let Ok(net) = text.parse::<IpNet>() {
        return Some((EntryKind::Net(net), None));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some((EntryKind::Ip(ip), None));
    }
    // `host:port` (one colon; a bare IPv6 address was taken above).
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port.parse().ok()?)),
        Some(_) => return None,
        None => (text, None),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some((EntryKind::Ip(ip), port));
    }
    let domain = host.strip_prefix("*.").unwrap_or(host);
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() || domain.contains(['/', '@', '*']) {
        return None;
    }
    Some((EntryKind::Domain(domain.to_ascii_lowercase()), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_before_matching() {
        use TargetHost::{Ip, Name, Other};
        let v6 = |s: &str| Ip(s.parse::<Ipv6Addr>().unwrap().into());
        for (host, want) in [
            ("[fe80::1]", v6("fe80::1")),
            ("[fe80::1%25eth0]", v6("fe80::1")),
            ("[fe80::1%eth0]", v6("fe80::1")),
            ("[fe80::1%25.internal.corp]", v6("fe80::1")),
            ("fe80::1%25lo", v6("fe80::1")),
            ("::1", v6("::1")),
            ("[::ffff:10.0.0.1]", v6("::ffff:10.0.0.1")),
            ("[fe80::1%25]", Other),
            ("[fe80::1%]", Other),
            ("[fe80::1%25a/b]", Other),
            ("[internal.corp]", Other),
            ("[.corp]", Other),
            ("[%25.corp]", Other),
            ("[v1.x]", Other),
            ("[127.0.0.1]", Other),
            ("[::1", Other),
            ("[]", Other),
            ("", Other),
            (".", Other),
            ("a%25b.corp", Other),
            ("127.0.0.1", Ip("127.0.0.1".parse().unwrap())),
            ("127.0.0.1.", Ip("127.0.0.1".parse().unwrap())),
            ("Db.Corp.", Name("Db.Corp")),
        ] {
            assert_eq!(TargetHost::read(host), want, "{host}");
        }
    }

    #[test]
    fn zone_ids_never_reach_name_matching() {
        // Go's CVE-2025-22870: the zone id matched as a domain suffix.
        let names = NoProxy::parse("internal.corp, .corp, *.corp, corp");
        for host in [
            "[fe80::1%25.internal.corp]",
            "[fe80::1%.internal.corp]",
            "[fe80::1%25internal.corp]",
            "[::1%25.corp]",
            "[internal.corp]",
            "[.corp]",
            "[%25.corp]",
        ] {
            assert!(!names.matches(host, 9), "{host}");
        }
        assert!(names.matches("db.internal.corp", 9));

        // The address without its zone is what IP entries see.
        for list in ["fe80::1", "[fe80::1]", "fe80::/16", "[fe80::1]:9"] {
            let list = NoProxy::parse(list);
            for host in [
                "[fe80::1%25lo]",
                "[fe80::1%lo]",
                "[fe80::1%25eth0.5]",
                "[fe80::1]",
            ] {
                assert!(list.matches(host, 9), "{list:?} {host}");
            }
            // A malformed zone is no address at all.
            assert!(!list.matches("[fe80::1%25]", 9), "{list:?}");
        }
        assert!(!NoProxy::parse("[fe80::1]:9").matches("[fe80::1%25lo]", 10));
        assert!(NoProxy::parse("*").matches("[fe80::1%25.internal.corp]", 9));
        assert!(NoProxy::parse("*").matches("[v1.x]", 9));
    }

    #[test]
    fn port_entries_need_a_known_port() {
        let list = NoProxy::parse("example.com:21, example.org");
        assert_eq!(
            list.matching("example.com", Some(21)),
            Some("example.com:21")
        );
        assert_eq!(list.matching("example.com", None), None);
        assert_eq!(list.matching("example.org", None), Some("example.org"));
    }
}

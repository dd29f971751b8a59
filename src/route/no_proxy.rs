//! [`NoProxy`]: the bypass list, in the `NO_PROXY` format.

use std::net::IpAddr;

use ipnet::IpNet;

/// A bypass list in the `NO_PROXY` format.
///
/// Entries are separated by commas or white space:
///
/// | entry | matches |
/// |---|---|
/// | `*` | every target |
/// | `example.com`, `.example.com`, `*.example.com` | `example.com` and every name under it (not `badexample.com`) |
/// | `192.168.1.10`, `::1`, `[::1]` | that IP literal |
/// | `10.0.0.0/8`, `fd00::/8` | IP literals in the range |
/// | `example.com:8080`, `[::1]:8443` | that host on that port only |
///
/// Names match case-insensitively and without DNS: an IP entry matches a
/// target written as that IP, never a name that resolves to it (as curl).
/// A trailing dot on the target or the entry is ignored (as curl). IP
/// literals compare as addresses, so `::1` matches `[0:0:0:0:0:0:0:1]`.
/// Unparseable entries are ignored, as curl ignores them.
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

    /// Whether a target `host` (as in a URI: IPv6 may be bracketed) on
    /// `port` bypasses the proxy.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.matching(host, port).is_some()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        !self.all && self.entries.is_empty()
    }

    pub(crate) fn matching(&self, host: &str, port: u16) -> Option<&str> {
        if self.all {
            return Some("*");
        }
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let host = host.strip_suffix('.').unwrap_or(host);
        let ip = host.parse::<IpAddr>().ok();
        self.entries
            .iter()
            .find(|e| {
                e.port.is_none_or(|p| p == port)
                    && match (&e.kind, ip) {
                        (EntryKind::Ip(entry), Some(ip)) => *entry == ip,
                        (EntryKind::Net(net), Some(ip)) => net.contains(&ip),
                        (EntryKind::Domain(d), None) => domain_matches(host, d),
                        _ => false,
                    }
            })
            .map(|e| e.text.as_str())
    }
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

//! The bypass lists of the desktop settings: GNOME's `ignore-hosts`, KDE's
//! `NoProxyFor`, Windows' `ProxyOverride` and macOS' `ExceptionsList`.

use std::net::{IpAddr, Ipv4Addr};

use crate::route::NoProxy;

/// How a list's plain entries read: each platform has its own rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// GLib's (`GSimpleProxyResolver`), libproxy 0.5's and KIO's:
    /// `example.com`, `.example.com` and `*.example.com` cover the domain
    /// and every name under it; IP literals, CIDR ranges, `host:port`.
    Domain,
    /// WinINet's: a plain entry is that host alone; `*` matches any run
    /// of characters anywhere in the entry (`*.corp`, `10.*`).
    Exact,
}

/// A bypass list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bypass {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// As written, for the rule's text.
    text: String,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// `<local>`: a name without a dot (not an IP literal).
    Local,
    /// A pattern with `*` wildcards, lowercase, matched against the host
    /// (an IPv6 address without brackets).
    Glob(String),
    /// An entry read as [`NoProxy`] reads it.
    Rule(NoProxy),
    /// One host, exactly (case-insensitive; IP literals as addresses).
    Exact(String),
}

impl Bypass {
    /// Parses `entries` (already split) in `flavour`; empty entries and
    /// ones that cannot match anything are dropped.
    pub(crate) fn parse<'a>(entries: impl IntoIterator<Item = &'a str>, flavour: Flavour) -> Self {
        let mut list = Bypass::default();
        for text in entries {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let kind = if text.eq_ignore_ascii_case("<local>") {
                Kind::Local
            } else if text == "*" {
                Kind::Rule(NoProxy::parse("*"))
            } else if flavour == Flavour::Domain
                && text.starts_with("*.")
                && !text[2..].contains('*')
            {
                Kind::Rule(NoProxy::parse(text))
            } else if text.contains('*') {
                Kind::Glob(text.to_ascii_lowercase())
            } else {
                match flavour {
                    Flavour::Domain => {
                        let rule = NoProxy::parse(&short_cidr(text));
                        if rule.is_empty() {
                            continue;
                        }
                        Kind::Rule(rule)
                    }
                    Flavour::Exact => Kind::Exact(text.trim_end_matches('.').to_ascii_lowercase()),
                }
            };
            list.entries.push(Entry {
                text: text.to_owned(),
                kind,
            });
        }
        list
    }

    /// Adds an entry that is not in the user's list, such as WinINet's
    /// implicit loopback bypass.
    pub(crate) fn push_rule(&mut self, text: &str, rule: &str) {
        self.entries.push(Entry {
            text: text.to_owned(),
            kind: Kind::Rule(NoProxy::parse(rule)),
        });
    }

    /// The entries as written.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.text.as_str())
    }

    /// The entry that covers `host` (as [`http::Uri::host`] gives it) on
    /// `port` (the URI's, else its scheme's default), if any.
    pub(crate) fn matching(&self, host: &str, port: Option<u16>) -> Option<&str> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let bare = bare.trim_end_matches('.').to_ascii_lowercase();
        let bracketed = host.starts_with('[');
        let is_ip = bracketed || bare.parse::<IpAddr>().is_ok();
        self.entries
            .iter()
            .find(|e| match &e.kind {
                Kind::Local => !is_ip && !bare.contains('.') && !bare.is_empty(),
                Kind::Glob(pattern) => glob(pattern.as_bytes(), bare.as_bytes()),
                Kind::Rule(rule) => rule.matching(host, port).is_some(),
                Kind::Exact(exact) => match (exact.parse::<IpAddr>(), bare.parse::<IpAddr>()) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => !bracketed && *exact == bare,
                },
            })
            .map(|e| e.text.as_str())
    }
}

/// macOS writes IPv4 ranges with the trailing zero octets left out
/// (`169.254/16`, `10/8`): the full address, for [`NoProxy`].
fn short_cidr(text: &str) -> String {
    let Some((addr, bits)) = text.split_once('/') else {
        return text.to_owned();
    };
    let octets: Vec<&str> = addr.split('.').collect();
    let numeric = octets
        .iter()
        .all(|o| !o.is_empty() && o.parse::<u8>().is_ok());
    if !numeric || octets.len() >= 4 {
        return text.to_owned();
    }
    let mut full = [0u8; 4];
    for (slot, octet) in full.iter_mut().zip(&octets) {
        *slot = octet.parse().unwrap_or(0);
    }
    format!("{}/{bits}", Ipv4Addr::from(full))
}

/// Whether `text` matches `pattern`, where `*` is any run of bytes.
/// Iterative, with one backtrack point: linear in practice, and bounded by
/// `pattern.len() * text.len()` steps.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_runs() {
        assert!(glob(b"*.corp", b"a.corp"));
        assert!(!glob(b"*.corp", b"corp"));
        assert!(glob(b"10.*", b"10.1.2.3"));
        assert!(glob(b"*", b""));
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(!glob(b"a*b*c", b"axxbyy"));
        assert!(glob(b"192.168.*.1", b"192.168.77.1"));
    }

    #[test]
    fn domain_flavour_is_glibs() {
        let list = Bypass::parse(
            [
                "localhost",
                "*.example.com",
                ".bar.org",
                "foo.org",
                "10.0.0.0/8",
                "::1",
                "<local>",
                "web:8080",
            ],
            Flavour::Domain,
        );
        let m = |h: &str, p: u16| list.matching(h, Some(p));
        assert_eq!(m("example.com", 80), Some("*.example.com"));
        assert_eq!(m("a.example.com", 80), Some("*.example.com"));
        assert_eq!(m("bar.org", 80), Some(".bar.org"));
        assert_eq!(m("a.foo.org", 80), Some("foo.org"));
        assert_eq!(m("10.9.9.9", 80), Some("10.0.0.0/8"));
        assert_eq!(m("[::1]", 80), Some("::1"));
        assert_eq!(m("intranet", 80), Some("<local>"));
        assert_eq!(m("[fe80::1]", 80), None);
        assert_eq!(m("web.x", 8080), None);
        assert_eq!(m("other.net", 80), None);
    }

    #[test]
    fn exact_flavour_is_wininets() {
        let list = Bypass::parse(
            [
                "*.corp",
                "10.*",
                "host.example.com",
                "<local>",
                "192.168.1.5",
            ],
            Flavour::Exact,
        );
        let m = |h: &str| list.matching(h, Some(443));
        assert_eq!(m("a.corp"), Some("*.corp"));
        assert_eq!(m("corp"), Some("<local>"));
        assert_eq!(m("10.1.2.3"), Some("10.*"));
        assert_eq!(m("HOST.example.com"), Some("host.example.com"));
        assert_eq!(m("a.host.example.com"), None);
        assert_eq!(m("192.168.1.5"), Some("192.168.1.5"));
        assert_eq!(m("[::1]"), None);
    }

    #[test]
    fn macos_short_ranges() {
        assert_eq!(short_cidr("169.254/16"), "169.254.0.0/16");
        assert_eq!(short_cidr("10/8"), "10.0.0.0/8");
        assert_eq!(short_cidr("fd00::/8"), "fd00::/8");
        let list = Bypass::parse(["169.254/16"], Flavour::Domain);
        assert!(list.matching("169.254.3.4", Some(80)).is_some());
    }
}

//! Which proxy a target goes through: [`Proxies`], [`NoProxy`], and the
//! environment rules of curl.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::uri::Scheme;
use http::Uri;
use ipnet::IpNet;

use super::Proxy;
use crate::error::Error;

type Matcher = Arc<dyn Fn(&Uri) -> Option<Proxy> + Send + Sync>;

/// The proxy rules: a proxy per target scheme, a fallback for all, a
/// bypass list, and an optional custom matcher.
///
/// [`Proxies::from_env`] reads them from the environment as curl does:
///
/// | variable | used for |
/// |---|---|
/// | `http_proxy` | `http://` targets (lowercase only: curl ignores `HTTP_PROXY`, since CGI servers set `HTTP_PROXY` from a request's `Proxy:` header, the "httpoxy" hole) |
/// | `https_proxy`, else `HTTPS_PROXY` | `https://` targets |
/// | `all_proxy`, else `ALL_PROXY` | any target the two above do not cover |
/// | `no_proxy`, else `NO_PROXY` | targets that go direct; see [`NoProxy`] |
///
/// Where both cases are set, lowercase wins. An empty variable counts as
/// unset.
///
/// `tests/env_rules.rs` checks a table of cases against the real curl
/// (7.88). Where the crate differs, it does so on purpose:
///
/// - A variable holding only white space counts as unset, like an empty
///   one, so the other case is read; curl takes it as set (an empty bypass
///   list, or a proxy it cannot use).
/// - Every variable is checked when it is read: a bad `https_proxy` fails
///   [`Proxies::from_env`] even if only `http://` targets follow, where curl
///   parses only the variable the target's scheme needs. A mistyped proxy
///   never sends some targets direct unnoticed.
/// - A proxy URL without a port gets 80 (`http://`) or 443 (`https://`), as
///   in Go and reqwest; curl uses 1080 for every scheme. See [`Proxy::new`].
/// - The bypass list has a few extensions; see [`NoProxy`].
///
/// # Example
///
/// ```
/// use tower_tunnel::{NoProxy, Proxies, Proxy};
///
/// let proxies = Proxies::new()
///     .with_https(Proxy::new("http://proxy.corp:3128")?)
///     .with_no_proxy(NoProxy::parse("localhost, .internal.corp, 10.0.0.0/8"));
///
/// let to = |uri: &str| proxies.decide(&uri.parse().unwrap());
/// assert!(to("https://example.com/").proxy().is_some());
/// assert!(to("https://db.internal.corp/").proxy().is_none());
/// assert!(to("https://10.1.2.3/").proxy().is_none());
/// assert!(to("http://example.com/").proxy().is_none()); // no http proxy set
/// # Ok::<(), tower_tunnel::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Proxies {
    http: Option<Arc<Proxy>>,
    https: Option<Arc<Proxy>>,
    all: Option<Arc<Proxy>>,
    no_proxy: NoProxy,
    custom: Option<Matcher>,
}

impl Proxies {
    /// No proxies: every target goes direct.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rules from the process environment, as curl reads them.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidProxy`](crate::ErrorKind::InvalidProxy) when a
    /// variable holds a URL that is not a proxy; the message names the
    /// variable, never its value. A bad proxy never falls back to a direct
    /// connection.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// The rules from an environment of your own: `get` returns a
    /// variable's value. Useful in tests, or to read a config file's
    /// section with the same rules.
    ///
    /// # Errors
    ///
    /// As [`Proxies::from_env`].
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let read = |names: &[&'static str]| -> Option<(&'static str, String)> {
            names.iter().find_map(|name| {
                get(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (*name, v))
            })
        };
        let proxy = |names: &[&'static str]| -> Result<Option<Arc<Proxy>>, Error> {
            match read(names) {
                None => Ok(None),
                Some((name, value)) => Proxy::new(&value)
                    .map(|p| Some(Arc::new(p)))
                    .map_err(|e| e.with_detail_prefix(name)),
            }
        };
        Ok(Proxies {
            http: proxy(&["http_proxy"])?,
            https: proxy(&["https_proxy", "HTTPS_PROXY"])?,
            all: proxy(&["all_proxy", "ALL_PROXY"])?,
            no_proxy: read(&["no_proxy", "NO_PROXY"])
                .map(|(_, v)| NoProxy::parse(&v))
                .unwrap_or_default(),
            custom: None,
        })
    }

    /// The proxy for `http://` targets.
    pub fn with_http(mut self, proxy: Proxy) -> Self {
        self.http = Some(Arc::new(proxy));
        self
    }

    /// The proxy for `https://` targets.
    pub fn with_https(mut self, proxy: Proxy) -> Self {
        self.https = Some(Arc::new(proxy));
        self
    }

    /// The proxy for targets no per-scheme proxy covers.
    pub fn with_all(mut self, proxy: Proxy) -> Self {
        self.all = Some(Arc::new(proxy));
        self
    }

    /// Targets that go direct, whatever else is set.
    pub fn with_no_proxy(mut self, no_proxy: NoProxy) -> Self {
        self.no_proxy = no_proxy;
        self
    }

    /// A matcher consulted after the bypass list and before the
    /// per-scheme proxies: `Some(proxy)` routes the target through it,
    /// `None` leaves the decision to the other rules.
    pub fn with_custom<F>(mut self, matcher: F) -> Self
    where
        F: Fn(&Uri) -> Option<Proxy> + Send + Sync + 'static,
    {
        self.custom = Some(Arc::new(matcher));
        self
    }

    /// Whether no proxy is configured at all.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none() && self.all.is_none() && self.custom.is_none()
    }

    /// Which way `uri` goes, and which rule said so.
    pub fn decide(&self, uri: &Uri) -> Decision {
        if self.is_empty() {
            return Decision::new(None, Rule::NoProxyConfigured);
        }
        let host = uri.host().unwrap_or_default();
        let https = uri.scheme() == Some(&Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if let Some(entry) = self.no_proxy.matching(host, port) {
            return Decision::new(None, Rule::NoProxy(entry.to_owned()));
        }
        if let Some(custom) = &self.custom {
            if let Some(proxy) = custom(uri) {
                return Decision::new(Some(Arc::new(proxy)), Rule::Custom);
            }
        }
        let (scheme_proxy, var) = if https {
            (&self.https, "https_proxy")
        } else {
            (&self.http, "http_proxy")
        };
        if let Some(p) = scheme_proxy {
            return Decision::new(Some(p.clone()), Rule::Scheme(var));
        }
        if let Some(p) = &self.all {
            return Decision::new(Some(p.clone()), Rule::All);
        }
        Decision::new(None, Rule::NoMatch)
    }
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxies")
            .field("http", &self.http)
            .field("https", &self.https)
            .field("all", &self.all)
            .field("no_proxy", &self.no_proxy)
            .field("custom", &self.custom.as_ref().map(|_| "Fn(&Uri)"))
            .finish()
    }
}

impl From<Proxy> for Proxies {
    /// One proxy for every target.
    fn from(proxy: Proxy) -> Self {
        Proxies::new().with_all(proxy)
    }
}

/// Which way a target goes; made by [`Proxies::decide`].
#[derive(Clone, Debug)]
pub struct Decision {
    proxy: Option<Arc<Proxy>>,
    rule: Rule,
}

impl Decision {
    fn new(proxy: Option<Arc<Proxy>>, rule: Rule) -> Self {
        Decision { proxy, rule }
    }

    /// The proxy to use; `None` means direct.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_deref()
    }

    /// The rule that decided.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    pub(crate) fn into_proxy(self) -> Option<Arc<Proxy>> {
        self.proxy
    }
}

/// The rule behind a [`Decision`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// No proxy is configured.
    NoProxyConfigured,
    /// This bypass entry matched the target.
    NoProxy(String),
    /// The custom matcher chose the proxy.
    Custom,
    /// The proxy for the target's scheme (`"http_proxy"`/`"https_proxy"`).
    Scheme(&'static str),
    /// The proxy for all schemes.
    All,
    /// Proxies are configured, but none for this target's scheme.
    NoMatch,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::NoProxyConfigured => f.write_str("no proxy configured"),
            Rule::NoProxy(entry) => write!(f, "no_proxy entry `{entry}` matched"),
            Rule::Custom => f.write_str("the custom matcher chose it"),
            Rule::Scheme(var) => write!(f, "the proxy for this scheme ({var})"),
            Rule::All => f.write_str("the proxy for all schemes (all_proxy)"),
            Rule::NoMatch => f.write_str("no proxy is set for this scheme"),
        }
    }
}

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

    fn matching(&self, host: &str, port: u16) -> Option<&str> {
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

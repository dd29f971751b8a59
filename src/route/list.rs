//! Ordered proxy lists: [`Hop`] and [`ProxyList`], in the syntax PAC
//! scripts answer with (`PROXY a:3128; PROXY b:3128; DIRECT`).

use std::fmt;
use std::sync::Arc;

use super::Proxy;
use crate::error::{Error, ErrorKind};

/// One entry of a [`ProxyList`]: a proxy, or `DIRECT`.
///
/// # Example
///
/// ```
/// use tower_tunnel::{Hop, Proxy};
///
/// let hop = Hop::from(Proxy::new("http://proxy.corp:3128")?);
/// assert_eq!(hop.to_string(), "PROXY proxy.corp:3128");
/// assert_eq!(Hop::Direct.to_string(), "DIRECT");
/// # Ok::<(), tower_tunnel::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hop {
    /// Straight to the target, no proxy.
    Direct,
    /// Through this proxy.
    Proxy(Arc<Proxy>),
}

impl Hop {
    /// The proxy, unless the hop is `DIRECT`.
    pub fn proxy(&self) -> Option<&Proxy> {
        match self {
            Hop::Direct => None,
            Hop::Proxy(proxy) => Some(proxy),
        }
    }
}

impl From<Proxy> for Hop {
    fn from(proxy: Proxy) -> Self {
        Hop::Proxy(Arc::new(proxy))
    }
}

impl fmt::Display for Hop {
    /// The PAC form: `DIRECT`, `PROXY host:port`, `HTTPS host:port`,
    /// `SOCKS4 host:port` or `SOCKS5 host:port`; other kinds and chains
    /// (which PAC cannot name) as their URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::ProxyKind as K;
        let proxy = match self {
            Hop::Direct => return f.write_str("DIRECT"),
            Hop::Proxy(proxy) => proxy,
        };
        let keyword = match proxy.kind() {
            _ if proxy.preproxy().is_some() => None,
            K::Http => Some("PROXY"),
            K::Https => Some("HTTPS"),
            K::Socks4 => Some("SOCKS4"),
            K::Socks5h => Some("SOCKS5"),
            K::Socks5 | K::Socks4a => None,
        };
        match keyword {
            Some(keyword) => write!(f, "{keyword} {}", proxy.authority()),
            None => write!(f, "{proxy}"),
        }
    }
}

/// An ordered list of [`Hop`]s: the connector tries them in order, and
/// moves to the next one only when a hop cannot be reached (see
/// [`Proxies`](crate::Proxies), "Proxy lists and failover").
///
/// Never empty. A single [`Proxy`] converts into a list of one, so every
/// `Proxies::with_*` method takes either.
///
/// # Example
///
/// ```
/// use tower_tunnel::{Hop, ProxyList};
///
/// let list = ProxyList::parse("PROXY a.corp:3128; proxy b.corp:3128 ;DIRECT")?;
/// assert_eq!(list.hops().len(), 3);
/// assert_eq!(list.hops()[2], Hop::Direct);
/// assert_eq!(list.to_string(), "PROXY a.corp:3128; PROXY b.corp:3128; DIRECT");
///
/// let err = ProxyList::parse("PROXY a.corp:3128; FTP b:21").unwrap_err();
/// assert!(err.to_string().contains("FTP b:21"));
/// # Ok::<(), tower_tunnel::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyList {
    hops: Arc<[Hop]>,
}

/// The longest list [`ProxyList::parse`] takes: more entries than any
/// real PAC answer, and a bound on the work one connection can cause.
const MAX_HOPS: usize = 16;

impl ProxyList {
    /// A list of these hops, in order.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidProxy`] when `hops` is empty or longer than 16.
    pub fn new(hops: impl IntoIterator<Item = Hop>) -> Result<Self, Error> {
        let hops: Arc<[Hop]> = hops.into_iter().collect();
        if hops.is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidProxy, None).with_detail("an empty proxy list")
            );
        }
        if hops.len() > MAX_HOPS {
            return Err(Error::new(ErrorKind::InvalidProxy, None)
                .with_detail(format!("a proxy list holds at most {MAX_HOPS} entries")));
        }
        Ok(ProxyList { hops })
    }

    /// Parses a PAC answer: entries separated by `;`, each `DIRECT` or a
    /// keyword and `host:port`, keywords in any case, blanks anywhere
    /// between. Empty entries (`PROXY a:1;;DIRECT;`) are skipped.
    ///
    /// | keyword | proxy | as Chromium |
    /// |---|---|---|
    /// | `DIRECT` | none | yes |
    /// | `PROXY`, `HTTP` | `http://host:port` | yes |
    /// | `HTTPS` | `https://host:port` | yes |
    /// | `SOCKS`, `SOCKS4` | `socks4://host:port` | yes (Firefox takes `SOCKS` as SOCKS5) |
    /// | `SOCKS5` | `socks5h://host:port` (the proxy resolves the target) | yes |
    ///
    /// The port may be left out: `PROXY` and `HTTP` get 80, `HTTPS` 443 and
    /// the SOCKS keywords 1080, as in Chromium.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidProxy`] naming the first entry that is not one
    /// of the forms above (the whole answer is refused: a half-understood
    /// list could send traffic somewhere the script did not mean), or an
    /// answer with no entry.
    pub fn parse(answer: &str) -> Result<Self, Error> {
        let invalid = |entry: &str, why: &str| {
            Error::new(ErrorKind::InvalidProxy, None)
                .with_detail(format!("proxy list entry `{}`: {why}", entry.trim()))
        };
        let mut hops = Vec::new();
        for entry in answer.split(';') {
            let mut words = entry.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let address = words.next();
            if words.next().is_some() {
                return Err(invalid(entry, "expected `KEYWORD host:port`"));
            }
            let scheme = match keyword.to_ascii_uppercase().as_str() {
                "DIRECT" if address.is_none() => {
                    hops.push(Hop::Direct);
                    continue;
                }
                "DIRECT" => return Err(invalid(entry, "DIRECT takes no address")),
                "PROXY" | "HTTP" => "http",
                "HTTPS" => "https",
                "SOCKS" | "SOCKS4" => "socks4",
                "SOCKS5" => "socks5h",
                _ => return Err(invalid(entry, "unknown keyword")),
            };
            let Some(address) = address else {
                return Err(invalid(entry, "no host:port"));
            };
            // The address is a bare authority: no scheme, user or path of
            // its own may sneak in.
            if address.contains(['/', '@', '?', '#']) {
                return Err(invalid(entry, "expected host:port"));
            }
            let proxy = Proxy::new(&format!("{scheme}://{address}"))
                .map_err(|_| invalid(entry, "invalid host or port"))?;
            hops.push(Hop::from(proxy));
            if hops.len() > MAX_HOPS {
                break;
            }
        }
        if hops.is_empty() {
            return Err(Error::new(ErrorKind::InvalidProxy, None)
                .with_detail(format!("proxy list `{}` has no entry", answer.trim())));
        }
        Self::new(hops)
    }

    /// The hops, in the order they are tried.
    pub fn hops(&self) -> &[Hop] {
        &self.hops
    }

    /// The hops, shared: a decision that keeps the list's order costs a
    /// reference count, not a copy.
    pub(crate) fn shared_hops(&self) -> Arc<[Hop]> {
        Arc::clone(&self.hops)
    }

    /// The first hop's proxy, unless it is `DIRECT`.
    pub fn first_proxy(&self) -> Option<&Proxy> {
        self.hops[0].proxy()
    }
}

impl From<Proxy> for ProxyList {
    /// A list of one.
    fn from(proxy: Proxy) -> Self {
        ProxyList {
            hops: Arc::new([Hop::from(proxy)]),
        }
    }
}

impl From<Arc<Proxy>> for ProxyList {
    fn from(proxy: Arc<Proxy>) -> Self {
        ProxyList {
            hops: Arc::new([Hop::Proxy(proxy)]),
        }
    }
}

impl fmt::Display for ProxyList {
    /// The PAC form, entries joined by `; `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, hop) in self.hops.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{hop}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ProxyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.hops.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::ProxyKind;

    fn kinds(answer: &str) -> Vec<String> {
        ProxyList::parse(answer)
            .unwrap()
            .hops()
            .iter()
            .map(|h| match h {
                Hop::Direct => "direct".to_owned(),
                Hop::Proxy(p) => p.to_string(),
            })
            .collect()
    }

    #[test]
    fn parses_every_keyword_in_any_case() {
        assert_eq!(
            kinds("PROXY a:1; http b:2;HTTPS c:3 ; socks d:4;Socks4 e:5; SOCKS5 f:6; direct"),
            [
                "http://a:1",
                "http://b:2",
                "https://c:3",
                "socks4://d:4",
                "socks4://e:5",
                "socks5h://f:6",
                "direct"
            ]
        );
        assert_eq!(kinds("  DIRECT  "), ["direct"]);
        assert_eq!(kinds("PROXY a:1;;DIRECT;"), ["http://a:1", "direct"]);
        assert_eq!(kinds("PROXY\ta:1"), ["http://a:1"]);
        assert_eq!(kinds("PROXY [::1]:8080"), ["http://[::1]:8080"]);
        assert_eq!(kinds("HTTPS a"), ["https://a:443"]);
        assert_eq!(kinds("SOCKS5 a"), ["socks5h://a:1080"]);
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in [
            "",
            " ; ",
            "FTP a:1",
            "PROXY",
            "PROXY a:1 b:2",
            "DIRECT a:1",
            "PROXY http://a:1",
            "PROXY u:p@a:1",
            "PROXY a:1/x",
            "PROXY a:99999",
            "PROXY [56FE::2159:5BBC::6594]:1",
            "QUIC a:443",
            "PROXY a:1; BOGUS",
        ] {
            let err = ProxyList::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidProxy, "{bad:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        let list = ProxyList::parse("proxy a:1; HTTPS b:2; socks c:3; socks5 d:4; direct").unwrap();
        assert_eq!(
            list.to_string(),
            "PROXY a:1; HTTPS b:2; SOCKS4 c:3; SOCKS5 d:4; DIRECT"
        );
        assert_eq!(ProxyList::parse(&list.to_string()).unwrap(), list);
        let socks5 = Hop::from(Proxy::new("socks5://s:1").unwrap());
        assert_eq!(socks5.to_string(), "socks5://s:1");
        assert_eq!(list.first_proxy().unwrap().kind(), ProxyKind::Http);
    }

    #[test]
    fn bounded() {
        let long = vec!["PROXY a:1"; 100].join(";");
        assert!(ProxyList::parse(&long).is_err());
        assert!(ProxyList::new([]).is_err());
    }
}

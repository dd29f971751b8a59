//! Which proxy a target goes through: [`Proxies`], and the [`Decision`]
//! it makes for each target.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Uri};

use super::failover::{Clock, Failover, Skipped};
use super::{Hop, NoProxy, Proxy, ProxyList};
use crate::error::Error;

type Matcher = Arc<dyn Fn(&Uri) -> Option<ProxyList> + Send + Sync>;

/// The proxy rules: a proxy per target scheme, a fallback for all, a
/// bypass list, and an optional custom matcher.
///
/// Which proxy a target gets, by its scheme (the first one set):
///
/// | target | proxy |
/// |---|---|
/// | `http://` | [`with_http`](Proxies::with_http), else [`with_all`](Proxies::with_all) |
/// | `https://` | [`with_https`](Proxies::with_https), else `with_all` |
/// | `ws://` | [`with_ws`](Proxies::with_ws), else `with_http`, else `with_all` |
/// | `wss://` | [`with_wss`](Proxies::with_wss), else `with_https`, else `with_all` |
/// | any other scheme (`ftp://`), or none | `with_all` |
///
/// [`Proxies::from_env`] reads them from the environment as curl does:
///
/// | variable | used for |
/// |---|---|
/// | `http_proxy` | `http://` targets, and `ws://` without `ws_proxy` (lowercase only: curl ignores `HTTP_PROXY`, since CGI servers set `HTTP_PROXY` from a request's `Proxy:` header, the "httpoxy" hole) |
/// | `https_proxy`, else `HTTPS_PROXY` | `https://` targets, and `wss://` without `wss_proxy` |
/// | `ws_proxy`, else `WS_PROXY` | `ws://` targets (curl 8.4 and later) |
/// | `wss_proxy`, else `WSS_PROXY` | `wss://` targets (curl 8.4 and later) |
/// | `all_proxy`, else `ALL_PROXY` | any target the ones above do not cover, and every other scheme (`ftp://`, a URI without a scheme) |
/// | `no_proxy`, else `NO_PROXY` | targets that go direct; see [`NoProxy`] |
///
/// Where both cases are set, lowercase wins. An empty variable counts as
/// unset. [`Proxies::from_grpc_env`] reads gRPC's variables instead, and
/// [`Proxies::from_system`] the environment, else the desktop's proxy
/// settings (GNOME, KDE, Windows, macOS).
///
/// `tests/env_rules.rs` checks a table of cases against the real curl
/// (7.88; the WebSocket rows against curl 8.4's source, `lib/url.c`,
/// `detect_proxy`, since 7.88 has no WebSocket support). Where the crate
/// differs, it does so on purpose:
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
/// - Only `http`, `https`, `ws` and `wss` targets have variables of their
///   own; curl also reads `ftp_proxy` and the like (`<scheme>_proxy`) for
///   its other schemes. Such targets get `all_proxy` here.
/// - A URI without a scheme is not taken as `http://`: only `all_proxy`
///   applies to it. curl's command line guesses `http://`.
/// - The bypass list has a few extensions; see [`NoProxy`].
///
/// # Proxy lists and failover
///
/// Every rule can give an ordered [`ProxyList`] instead of one proxy
/// (`PROXY a:3128; PROXY b:3128; DIRECT`, as a PAC script answers). The
/// connector tries the hops in order and moves to the next only when a hop
/// cannot be reached: the dial failed or timed out, the proxy's TLS
/// handshake failed, or the proxy closed, reset or stayed silent before it
/// answered. An answer (a `403`, a `407`, a SOCKS refusal) is returned as
/// the error, never passed over: a proxy that refuses must not send the
/// target to another proxy, or direct. `DIRECT` is tried only where the
/// list names it.
///
/// A hop that could not be reached is moved to the end of the list for
/// five minutes ([`with_retry_failed_after`](Proxies::with_retry_failed_after);
/// as Chromium), so later connections do not wait for it, and is tried
/// again after. [`Decision::skipped`] names the hops moved back, and
/// [`ConnectionInfo::skipped`](crate::ConnectionInfo::skipped) every hop a
/// connection passed over, with why. The memory is shared by the clones
/// of one `Proxies`, holds at most 256 hops, and keys hops by kind and
/// address (never credentials); `DIRECT` is never remembered.
///
/// ```
/// use tower_tunnel::{Proxies, ProxyList};
///
/// let proxies = Proxies::new()
///     .with_https(ProxyList::parse("PROXY a.corp:3128; PROXY b.corp:3128")?);
/// let decision = proxies.decide(&"https://example.com/".parse().unwrap())?;
/// assert_eq!(decision.hops().len(), 2);
/// # Ok::<(), tower_tunnel::Error>(())
/// ```
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
/// let to = |uri: &str| proxies.decide(&uri.parse().unwrap()).unwrap();
/// assert!(to("https://example.com/").proxy().is_some());
/// assert!(to("wss://example.com/").proxy().is_some()); // the https proxy
/// assert!(to("https://db.internal.corp/").proxy().is_none());
/// assert!(to("https://10.1.2.3/").proxy().is_none());
/// assert!(to("http://example.com/").proxy().is_none()); // no http proxy set
/// # Ok::<(), tower_tunnel::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Proxies {
    pub(super) http: Option<Slot>,
    pub(super) https: Option<Slot>,
    pub(super) ws: Option<Slot>,
    pub(super) wss: Option<Slot>,
    pub(super) all: Option<ProxyList>,
    pub(super) no_proxy: NoProxy,
    pub(super) custom: Option<Matcher>,
    #[cfg(feature = "pac")]
    pub(super) pac: Option<PacRule>,
    pub(super) failover: Failover,
    /// The system settings, for [`Proxies::from_system`]: when set, they
    /// decide alone.
    pub(super) system: Option<super::system::Source>,
}

/// A PAC script among the rules, and what a failing script gives.
#[cfg(feature = "pac")]
#[derive(Clone, Debug)]
pub(super) struct PacRule {
    pac: super::Pac,
    fallback_direct: bool,
}

/// The proxies for one scheme, and the variable [`Rule::Scheme`] names for
/// them.
#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub(super) list: ProxyList,
    pub(super) var: &'static str,
}

impl Slot {
    pub(super) fn new(list: impl Into<ProxyList>, var: &'static str) -> Self {
        Slot {
            list: list.into(),
            var,
        }
    }
}

impl Proxies {
    /// No proxies: every target goes direct.
    pub fn new() -> Self {
        Self::default()
    }

    /// The proxy for `http://` targets (and `ws://` ones, unless
    /// [`with_ws`](Proxies::with_ws) sets theirs).
    pub fn with_http(mut self, proxy: impl Into<ProxyList>) -> Self {
        self.http = Some(Slot::new(proxy, "http_proxy"));
        self
    }

    /// The proxy for `https://` targets (and `wss://` ones, unless
    /// [`with_wss`](Proxies::with_wss) sets theirs).
    pub fn with_https(mut self, proxy: impl Into<ProxyList>) -> Self {
        self.https = Some(Slot::new(proxy, "https_proxy"));
        self
    }

    /// The proxy for `ws://` (WebSocket) targets, before the `http://` one.
    pub fn with_ws(mut self, proxy: impl Into<ProxyList>) -> Self {
        self.ws = Some(Slot::new(proxy, "ws_proxy"));
        self
    }

    /// The proxy for `wss://` (WebSocket over TLS) targets, before the
    /// `https://` one.
    pub fn with_wss(mut self, proxy: impl Into<ProxyList>) -> Self {
        self.wss = Some(Slot::new(proxy, "wss_proxy"));
        self
    }

    /// The proxy for targets no per-scheme proxy covers, and for every
    /// scheme without one (`ftp://`, or a URI without a scheme).
    pub fn with_all(mut self, proxy: impl Into<ProxyList>) -> Self {
        self.all = Some(proxy.into());
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
    pub fn with_custom<F, L>(mut self, matcher: F) -> Self
    where
        F: Fn(&Uri) -> Option<L> + Send + Sync + 'static,
        L: Into<ProxyList>,
    {
        self.custom = Some(Arc::new(move |uri: &Uri| matcher(uri).map(Into::into)));
        self
    }

    /// A PAC script, consulted after the bypass list and the custom
    /// matcher and before the per-scheme proxies: its answer is final (a
    /// `DIRECT` answer goes direct, whatever else is set). See
    /// [`Pac`](super::Pac).
    ///
    /// A script that fails (throws, runs past its budget or memory, or
    /// answers something that is not a proxy list) fails the decision,
    /// and so the connection, unless
    /// [`with_pac_fallback_direct`](Proxies::with_pac_fallback_direct) is
    /// set: a failing script never sends traffic direct unasked.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_tunnel::{Pac, Proxies, Rule};
    ///
    /// let pac = Pac::from_script("function FindProxyForURL(u, h) { return 'PROXY p.corp:3128'; }")?;
    /// let proxies = Proxies::new().with_pac(pac);
    /// let decision = proxies.decide(&"https://example.com/".parse().unwrap())?;
    /// assert_eq!(decision.proxy().unwrap().authority().as_str(), "p.corp:3128");
    /// assert_eq!(decision.rule().to_string(), "the PAC script answered `PROXY p.corp:3128`");
    /// # Ok::<(), tower_tunnel::Error>(())
    /// ```
    #[cfg(feature = "pac")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pac")))]
    pub fn with_pac(mut self, pac: super::Pac) -> Self {
        let fallback_direct = self.pac.as_ref().is_some_and(|p| p.fallback_direct);
        self.pac = Some(PacRule {
            pac,
            fallback_direct,
        });
        self
    }

    /// Rules made of one PAC script given as text; see
    /// [`Proxies::with_pac`] and [`Pac::from_script`](super::Pac::from_script).
    ///
    /// # Errors
    ///
    /// As [`Pac::from_script`](super::Pac::from_script).
    #[cfg(feature = "pac")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pac")))]
    pub fn from_pac_script(script: impl Into<String>) -> Result<Self, Error> {
        Ok(Proxies::new().with_pac(super::Pac::from_script(script)?))
    }

    /// Rules made of the PAC script at `url`, fetched directly and
    /// refreshed in the background; see [`Pac::from_url`](super::Pac::from_url).
    ///
    /// A script that cannot be fetched or compiled is an error here,
    /// whatever [`with_pac_fallback_direct`](Proxies::with_pac_fallback_direct)
    /// says later; for a browser's behaviour, fall back yourself:
    /// `Proxies::from_pac_url(url).await.unwrap_or_default()`.
    ///
    /// # Errors
    ///
    /// As [`Pac::from_url`](super::Pac::from_url).
    #[cfg(feature = "pac")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pac")))]
    pub async fn from_pac_url(url: &str) -> Result<Self, Error> {
        Ok(Proxies::new().with_pac(super::Pac::from_url(url).await?))
    }

    /// Rules made of the PAC script WPAD's DNS method finds (feature
    /// `wpad`); see [`Pac::from_wpad`](super::Pac::from_wpad). Opt-in:
    /// nothing in this crate looks for WPAD unasked, except
    /// [`Proxies::from_system`] when the desktop's settings say to.
    ///
    /// # Errors
    ///
    /// As [`Pac::from_wpad`](super::Pac::from_wpad): finding no script is
    /// an error, never a silent direct connection. For a browser's
    /// behaviour (direct when WPAD finds nothing), fall back yourself:
    ///
    /// ```no_run
    /// # async fn run() {
    /// let proxies = tower_tunnel::Proxies::from_wpad().await.unwrap_or_default();
    /// # }
    /// ```
    #[cfg(feature = "wpad")]
    #[cfg_attr(docsrs, doc(cfg(feature = "wpad")))]
    pub async fn from_wpad() -> Result<Self, Error> {
        Ok(Proxies::new().with_pac(super::Pac::from_wpad().await?))
    }

    /// Whether a PAC script that fails sends its target direct (as
    /// browsers do), with [`Rule::PacFailed`] naming the error; off by
    /// default, when the decision fails with the script's error.
    #[cfg(feature = "pac")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pac")))]
    pub fn with_pac_fallback_direct(mut self, fallback: bool) -> Self {
        if let Some(rule) = &mut self.pac {
            rule.fallback_direct = fallback;
        }
        self
    }

    /// How long a hop of a proxy list that could not be reached is tried
    /// last; [five minutes](crate::route::DEFAULT_RETRY_AFTER) unless set.
    /// See "Proxy lists and failover" on [`Proxies`].
    pub fn with_retry_failed_after(mut self, after: Duration) -> Self {
        self.failover.set_retry_after(after);
        self
    }

    /// The clock the failover memory reads, for tests that move time on;
    /// [`Instant::now`](std::time::Instant::now) unless set.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Instant;
    /// use tower_tunnel::Proxies;
    ///
    /// let start = Instant::now();
    /// let proxies = Proxies::new().with_clock(Arc::new(move || start));
    /// # let _ = proxies;
    /// ```
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.failover.set_clock(clock);
        self
    }

    /// The failover memory, shared by every clone of these rules.
    pub(crate) fn failover(&self) -> &Failover {
        &self.failover
    }

    /// Whether no proxy is configured at all.
    pub fn is_empty(&self) -> bool {
        if let Some(system) = &self.system {
            return system.is_empty();
        }
        [&self.http, &self.https, &self.ws, &self.wss]
            .iter()
            .all(|slot| slot.is_none())
            && self.all.is_none()
            && self.custom.is_none()
            && !self.has_pac()
    }

    #[cfg(feature = "pac")]
    fn has_pac(&self) -> bool {
        self.pac.is_some()
    }

    #[cfg(not(feature = "pac"))]
    fn has_pac(&self) -> bool {
        false
    }

    /// Which way `uri` goes, and which rule said so.
    ///
    /// The bypass list is checked first, with the target's port: the one
    /// in the URI, else 80 for `http://` and `ws://`, 443 for `https://`
    /// and `wss://` (a target of another scheme without a port matches only
    /// entries without one). Then the custom matcher, then the PAC script
    /// (feature `pac`; its answer is final), then the proxy for the
    /// target's scheme as the table on [`Proxies`] says, then the proxy for
    /// all schemes.
    ///
    /// The decision's hops are in the order the connector tries them: the
    /// rule's list, with the hops that could not be reached lately moved to
    /// the end (see "Proxy lists and failover" on [`Proxies`]).
    ///
    /// A PAC script runs on its own thread while this one waits (a cached
    /// answer aside); the connector uses an async form of this method that
    /// does not block the runtime.
    ///
    /// # Errors
    ///
    /// Only from a PAC script that fails (see `Proxies::with_pac`); the
    /// other rules cannot fail.
    pub fn decide(&self, uri: &Uri) -> Result<Decision, Error> {
        if let Some(system) = &self.system {
            if let Some(rule) = self.bypassed(uri) {
                return Ok(self.finish(None, rule));
            }
            let (list, rule) = system.decide(uri)?;
            return Ok(self.finish(list, rule));
        }
        if let Some((list, rule)) = self.rule_before_pac(uri) {
            return Ok(self.finish(list, rule));
        }
        #[cfg(feature = "pac")]
        if let Some(pac) = &self.pac {
            let (list, rule) = pac.outcome(pac.pac.find(uri))?;
            return Ok(self.finish(list, rule));
        }
        let (list, rule) = self.rule_after_pac(uri);
        Ok(self.finish(list, rule))
    }

    /// As [`Proxies::decide`], awaiting a PAC script instead of blocking.
    pub(crate) async fn decide_async(&self, uri: &Uri) -> Result<Decision, Error> {
        if let Some(system) = &self.system {
            if let Some(rule) = self.bypassed(uri) {
                return Ok(self.finish(None, rule));
            }
            let (list, rule) = system.decide_async(uri).await?;
            return Ok(self.finish(list, rule));
        }
        if let Some((list, rule)) = self.rule_before_pac(uri) {
            return Ok(self.finish(list, rule));
        }
        #[cfg(feature = "pac")]
        if let Some(pac) = &self.pac {
            let (list, rule) = pac.outcome(pac.pac.find_async(uri).await)?;
            return Ok(self.finish(list, rule));
        }
        let (list, rule) = self.rule_after_pac(uri);
        Ok(self.finish(list, rule))
    }

    /// The bypass list's rule for `uri`, if an entry covers it.
    fn bypassed(&self, uri: &Uri) -> Option<Rule> {
        let scheme = TargetScheme::of(uri);
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().or(scheme.default_port());
        self.no_proxy
            .matching(host, port)
            .map(|entry| Rule::NoProxy(entry.to_owned()))
    }

    /// The decision for a rule's list, reordered by failover; `None` is
    /// direct.
    fn finish(&self, list: Option<ProxyList>, rule: Rule) -> Decision {
        match list {
            None => Decision::direct(rule),
            Some(list) => {
                let (hops, skipped) = self.failover.order(&list);
                Decision {
                    hops,
                    skipped,
                    rule,
                }
            }
        }
    }

    /// The rules before the PAC script: `None` when none of them decides.
    #[allow(clippy::type_complexity)]
    fn rule_before_pac(&self, uri: &Uri) -> Option<(Option<ProxyList>, Rule)> {
        if self.is_empty() {
            return Some((None, Rule::NoProxyConfigured));
        }
        let scheme = TargetScheme::of(uri);
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().or(scheme.default_port());
        if let Some(entry) = self.no_proxy.matching(host, port) {
            return Some((None, Rule::NoProxy(entry.to_owned())));
        }
        if let Some(custom) = &self.custom {
            if let Some(list) = custom(uri) {
                return Some((Some(list), Rule::Custom));
            }
        }
        None
    }

    /// The list the rules give `uri` when they hold no PAC script (as
    /// the environment's never do), before failover reorders it; `None`
    /// is direct.
    pub(super) fn rule_without_pac(&self, uri: &Uri) -> (Option<ProxyList>, Rule) {
        self.rule_before_pac(uri)
            .unwrap_or_else(|| self.rule_after_pac(uri))
    }

    /// The rules after the PAC script (there is none, or the feature is
    /// off).
    fn rule_after_pac(&self, uri: &Uri) -> (Option<ProxyList>, Rule) {
        let slots: &[&Option<Slot>] = match TargetScheme::of(uri) {
            TargetScheme::Http => &[&self.http],
            TargetScheme::Https => &[&self.https],
            // curl 8.4+: ws_proxy, else http_proxy; wss_proxy, else https_proxy.
            TargetScheme::Ws => &[&self.ws, &self.http],
            TargetScheme::Wss => &[&self.wss, &self.https],
            TargetScheme::Other => &[],
        };
        if let Some(slot) = slots.iter().find_map(|slot| slot.as_ref()) {
            return (Some(slot.list.clone()), Rule::Scheme(slot.var));
        }
        if let Some(list) = &self.all {
            return (Some(list.clone()), Rule::All);
        }
        (None, Rule::NoMatch)
    }
}

#[cfg(feature = "pac")]
impl PacRule {
    /// The rule for a script's result: its list, or direct when it failed
    /// and the fallback is on.
    fn outcome(
        &self,
        found: Result<(ProxyList, Arc<str>), Error>,
    ) -> Result<(Option<ProxyList>, Rule), Error> {
        match found {
            Ok((list, answer)) => Ok((
                Some(list),
                Rule::Pac {
                    answer: answer.to_string(),
                },
            )),
            Err(e) if self.fallback_direct => {
                tracing::debug!(error = %e, "PAC script failed; going direct as configured");
                Ok((
                    None,
                    Rule::PacFailed {
                        error: e.to_string(),
                    },
                ))
            }
            Err(e) => Err(e),
        }
    }
}

/// The target schemes the rules tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TargetScheme {
    Http,
    Https,
    Ws,
    Wss,
    /// Any other scheme, or none.
    Other,
}

impl TargetScheme {
    pub(super) fn of(uri: &Uri) -> Self {
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => TargetScheme::Http,
            Some(s) if s.eq_ignore_ascii_case("https") => TargetScheme::Https,
            Some(s) if s.eq_ignore_ascii_case("ws") => TargetScheme::Ws,
            Some(s) if s.eq_ignore_ascii_case("wss") => TargetScheme::Wss,
            _ => TargetScheme::Other,
        }
    }

    /// The port a URI of this scheme means when it names none.
    pub(super) fn default_port(self) -> Option<u16> {
        match self {
            TargetScheme::Http | TargetScheme::Ws => Some(80),
            TargetScheme::Https | TargetScheme::Wss => Some(443),
            TargetScheme::Other => None,
        }
    }
}

impl Proxies {
    /// The headers a request for `uri` must carry when it is forwarded to a
    /// proxy in absolute-form (an `http://` target through an HTTP proxy):
    /// the proxy's `Proxy-Authorization` and its extra headers, as
    /// [`Proxy::forward_headers`] gives them. `None` when the request is
    /// not forwarded (direct, tunnelled or SOCKS): then it must carry no
    /// proxy header at all.
    ///
    /// A forwarded request is the one thing the connector stack cannot
    /// finish alone: the proxy reads these headers on each request, so they
    /// are a concern of the request, not of the connection.
    /// [`ForwardProxyLayer`](crate::ForwardProxyLayer) calls this for every
    /// request sent through hyper-util's `Client` or any other request
    /// service, and [`HttpConnection`](crate::HttpConnection) does the same
    /// for the proxy its connection was routed through.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_tunnel::{Proxies, Proxy};
    ///
    /// let proxies = Proxies::from(Proxy::new("http://u:p@127.0.0.1:3128")?);
    /// let headers = proxies.forward_headers(&"http://example.com/".parse().unwrap()).unwrap();
    /// assert_eq!(headers["proxy-authorization"], "Basic dTpw");
    /// // A tunnelled target: the proxy sees only the CONNECT.
    /// assert!(proxies.forward_headers(&"https://example.com/".parse().unwrap()).is_none());
    /// # Ok::<(), tower_tunnel::Error>(())
    /// ```
    ///
    /// With a proxy list, the headers go only where every proxy of the
    /// list would get the same ones: a request service cannot know which
    /// hop its connection took, and one proxy's credentials must never
    /// reach another. [`HttpConnection`](crate::HttpConnection) knows the
    /// hop, and adds the right proxy's headers whatever the list.
    pub fn forward_headers(&self, uri: &Uri) -> Option<HeaderMap> {
        self.decide(uri)
            .ok()?
            .forward_proxy(uri)
            .map(Proxy::forward_headers)
    }
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proxy = |slot: &Option<Slot>| slot.as_ref().map(|s| s.list.clone());
        let mut d = f.debug_struct("Proxies");
        d.field("http", &proxy(&self.http))
            .field("https", &proxy(&self.https))
            .field("ws", &proxy(&self.ws))
            .field("wss", &proxy(&self.wss))
            .field("all", &self.all)
            .field("no_proxy", &self.no_proxy)
            .field("custom", &self.custom.as_ref().map(|_| "Fn(&Uri)"));
        #[cfg(feature = "pac")]
        d.field("pac", &self.pac);
        d.field("system", &self.system);
        d.field("failover", &self.failover).finish()
    }
}

impl From<Proxy> for Proxies {
    /// One proxy for every target.
    fn from(proxy: Proxy) -> Self {
        Proxies::new().with_all(proxy)
    }
}

/// Which way a target goes; made by [`Proxies::decide`].
///
/// # Example
///
/// ```
/// use tower_tunnel::{Hop, Proxies, ProxyList, Rule};
///
/// let proxies = Proxies::new().with_https(ProxyList::parse("PROXY a.corp:3128; DIRECT")?);
/// let decision = proxies.decide(&"https://example.com/".parse().unwrap())?;
/// assert_eq!(decision.proxy().unwrap().authority().as_str(), "a.corp:3128");
/// assert_eq!(decision.hops()[1], Hop::Direct);
/// assert_eq!(decision.rule(), &Rule::Scheme("https_proxy"));
/// assert!(decision.skipped().is_empty());
/// # Ok::<(), tower_tunnel::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Decision {
    hops: Arc<[Hop]>,
    skipped: Vec<Skipped>,
    rule: Rule,
}

impl Decision {
    fn direct(rule: Rule) -> Self {
        // One list for every direct decision: a reference count each.
        static DIRECT: std::sync::OnceLock<Arc<[Hop]>> = std::sync::OnceLock::new();
        Decision {
            hops: Arc::clone(DIRECT.get_or_init(|| Arc::new([Hop::Direct]))),
            skipped: Vec::new(),
            rule,
        }
    }

    /// The proxy to try first; `None` means direct first.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.hops[0].proxy()
    }

    /// Every hop, in the order the connector tries them. Never empty.
    pub fn hops(&self) -> &[Hop] {
        &self.hops
    }

    /// The hops moved to the end of the list because they could not be
    /// reached lately, with why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The rule that decided.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The proxy a forwarded request for `uri` goes to, when it is known
    /// whichever hop the connection takes: the first hop forwards `uri`,
    /// and every other proxy of the list would get the same headers.
    pub(crate) fn forward_proxy(&self, uri: &Uri) -> Option<&Proxy> {
        let first = self.proxy().filter(|p| p.forwards(uri))?;
        let others_agree = self.hops[1..].iter().all(|hop| match hop.proxy() {
            None => true,
            Some(p) => p.forward_headers() == first.forward_headers(),
        });
        others_agree.then_some(first)
    }

    /// Splits into the hops, the skipped hops and the rule.
    pub(crate) fn into_parts(self) -> (Arc<[Hop]>, Vec<Skipped>, Rule) {
        (self.hops, self.skipped, self.rule)
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
    /// The proxy for the target's scheme, named by the variable it stands
    /// for: `"http_proxy"`, `"https_proxy"`, `"ws_proxy"` or `"wss_proxy"`
    /// (whichever case was read); for [`Proxies::from_grpc_env`],
    /// `"grpc_proxy"`, `"https_proxy"` or `"http_proxy"`. A `ws://` target
    /// that falls back to the `http://` proxy names `"http_proxy"`.
    Scheme(&'static str),
    /// The proxy for all schemes.
    All,
    /// Proxies are configured, but none for this target's scheme.
    NoMatch,
    /// The operating system's proxy settings decided (see
    /// [`Proxies::from_system`]). `source` names them, their mode and the
    /// setting that chose, for example:
    ///
    /// ```text
    /// GNOME settings, mode manual, org.gnome.system.proxy.https
    /// KDE kioslaverc, ProxyType 1, NoProxyFor `.corp`
    /// Windows Internet Settings, ProxyOverride `<local>`
    /// GNOME settings, mode none
    /// ```
    System {
        /// The settings, their mode, and the setting that chose.
        source: String,
    },
    /// The PAC script answered this (feature `pac`; see
    /// `Proxies::with_pac`).
    Pac {
        /// The script's answer, as it gave it.
        answer: String,
    },
    /// The PAC script failed, and the rules go direct on a failure
    /// (feature `pac`; see `Proxies::with_pac_fallback_direct`).
    PacFailed {
        /// The script's error, as its `Display` reads.
        error: String,
    },
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
            Rule::System { source } => f.write_str(source),
            Rule::Pac { answer } => write!(f, "the PAC script answered `{answer}`"),
            Rule::PacFailed { error } => {
                write!(f, "the PAC script failed, so direct as configured: {error}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(proxies: &Proxies, uri: &str) -> (Option<String>, Rule) {
        let d = proxies.decide(&uri.parse().unwrap()).unwrap();
        (d.proxy().map(ToString::to_string), d.rule().clone())
    }

    #[test]
    fn each_scheme_gets_its_own_proxy() {
        let proxies = Proxies::new()
            .with_http(Proxy::new("http://h:1").unwrap())
            .with_https(Proxy::new("http://s:1").unwrap())
            .with_all(Proxy::new("http://a:1").unwrap());
        let via = |p: &str, r: Rule| (Some(p.to_owned()), r);
        assert_eq!(
            decide(&proxies, "http://x/"),
            via("http://h:1", Rule::Scheme("http_proxy"))
        );
        assert_eq!(
            decide(&proxies, "HTTP://x/"),
            via("http://h:1", Rule::Scheme("http_proxy"))
        );
        assert_eq!(
            decide(&proxies, "https://x/"),
            via("http://s:1", Rule::Scheme("https_proxy"))
        );
        // Not http: only the proxy for all schemes, as curl.
        assert_eq!(decide(&proxies, "ftp://x/"), via("http://a:1", Rule::All));
        assert_eq!(decide(&proxies, "x:80"), via("http://a:1", Rule::All));
        assert_eq!(
            decide(&proxies, "gopher://x:70/"),
            via("http://a:1", Rule::All)
        );

        let http_only = Proxies::new().with_http(Proxy::new("http://h:1").unwrap());
        assert_eq!(decide(&http_only, "ftp://x/"), (None, Rule::NoMatch));
        assert_eq!(decide(&http_only, "x:80"), (None, Rule::NoMatch));
    }

    #[test]
    fn websockets_fall_back_to_http_and_https() {
        let h = Proxy::new("http://h:1").unwrap();
        let s = Proxy::new("http://s:1").unwrap();
        let w = Proxy::new("http://w:1").unwrap();
        let proxies = Proxies::new().with_http(h.clone()).with_https(s.clone());
        let via = |p: &str, var| (Some(p.to_owned()), Rule::Scheme(var));
        assert_eq!(decide(&proxies, "ws://x/"), via("http://h:1", "http_proxy"));
        assert_eq!(
            decide(&proxies, "wss://x/"),
            via("http://s:1", "https_proxy")
        );
        let proxies = proxies.with_ws(w.clone()).with_wss(w.clone());
        assert_eq!(decide(&proxies, "WS://x/"), via("http://w:1", "ws_proxy"));
        assert_eq!(decide(&proxies, "wss://x/"), via("http://w:1", "wss_proxy"));
        // ws_proxy is for ws:// alone.
        assert_eq!(
            decide(&proxies, "http://x/"),
            via("http://h:1", "http_proxy")
        );
        let only_ws = Proxies::new().with_ws(w).with_all(s);
        assert!(!only_ws.is_empty());
        assert_eq!(
            decide(&only_ws, "wss://x/"),
            (Some("http://s:1".into()), Rule::All)
        );
        assert_eq!(
            decide(&only_ws, "http://x/"),
            (Some("http://s:1".into()), Rule::All)
        );
        assert!(!Proxies::new().with_wss(h).is_empty());
    }

    #[test]
    fn forward_headers_never_cross_to_another_proxy_of_a_list() {
        let uri: Uri = "http://example.com/".parse().unwrap();
        let a = Proxy::new("http://ua:pa@a:1").unwrap();
        let b = Proxy::new("http://b:2").unwrap();
        let list = |hops: Vec<Hop>| Proxies::new().with_all(ProxyList::new(hops).unwrap());
        // Same credentials everywhere (or DIRECT): known whichever hop.
        let same = list(vec![a.clone().into(), a.clone().into(), Hop::Direct]);
        let headers = same.forward_headers(&uri).unwrap();
        assert_eq!(headers["proxy-authorization"], "Basic dWE6cGE=");
        // a's credentials must not reach b after a failover.
        assert!(list(vec![a.clone().into(), b.clone().into()])
            .forward_headers(&uri)
            .is_none());
        assert!(list(vec![b.into(), a.into()])
            .forward_headers(&uri)
            .is_none());
    }

    #[test]
    fn default_ports_per_scheme() {
        let proxies = Proxies::new()
            .with_all(Proxy::new("http://a:1").unwrap())
            .with_no_proxy(NoProxy::parse("web:80, tls:443"));
        let direct = |uri: &str| decide(&proxies, uri).0.is_none();
        assert!(direct("http://web/"));
        assert!(direct("https://tls/"));
        assert!(!direct("https://web/"));
        assert!(!direct("http://tls/"));
        // No default port: a port entry cannot match.
        assert!(!direct("ftp://web/"));
        assert!(!direct("gopher://tls/"));
        assert!(direct("ftp://web:80/"));
        assert!(direct("ws://web/"));
        assert!(direct("wss://tls/"));
        assert!(!direct("wss://web/"));
    }
}

//! PAC scripts (feature `pac`): [`Pac`] runs a proxy auto-config
//! script's `FindProxyForURL(url, host)` and turns its answer into a
//! [`ProxyList`].
//!
//! The script runs on an embedded QuickJS ([`rquickjs`]), on a thread of
//! its own, never on the async runtime. Each call has a time budget
//! (default 1 s: a `while(true){}` fails within it, and the DNS lookups a
//! script makes count against it) and the script a memory limit (default
//! 32 MiB). Answers are cached per target for a short time (default 30 s),
//! so a busy client does not run JavaScript per connection.
//!
//! What the script sees:
//!
//! | target | `url` argument | `host` argument |
//! |---|---|---|
//! | `https://u:p@example.com:8443/a?b` | `https://example.com:8443/` | `example.com` |
//! | `wss://example.com/chat` | `wss://example.com/` | `example.com` |
//! | `http://u:p@example.com/a?b` | `http://example.com/a?b` | `example.com` |
//! | `example.com:443` (no scheme) | `https://example.com/` | `example.com` |
//!
//! `https://` and `wss://` URLs are cut to scheme, host and port, as
//! browsers do since 2016, so paths and queries (tokens, search terms)
//! never reach a script. `http://` and `ws://` URLs keep their path and
//! query, as in Chromium, and lose their credentials (an `http::Uri`
//! never holds a fragment). A default port is left out, as in a browser's
//! canonical URL. A target without a scheme is taken as a tunnel and shown
//! as `https://`. IPv6 hosts are given without brackets.
//!
//! Every function of the PAC API is there, with the semantics of
//! Chromium's: `isPlainHostName`, `dnsDomainIs`, `localHostOrDomainIs`,
//! `isResolvable`, `isInNet`, `dnsResolve`, `myIpAddress`,
//! `dnsDomainLevels`, `shExpMatch`, `weekdayRange`, `dateRange`,
//! `timeRange`, `alert` (an `info` event of target `tower_tunnel::pac`),
//! and Microsoft's IPv6 extensions `isResolvableEx`, `isInNetEx`,
//! `dnsResolveEx`, `myIpAddressEx`, `sortIpAddressList`,
//! `getClientVersion` (`"1.0"`) and `FindProxyForURLEx`, which is called
//! instead of `FindProxyForURL` when the script defines it. Scripts run as
//! in a browser: global code in sloppy (non-strict) mode. Where tower-tunnel
//! parts from Chromium, it is on purpose: `getClientVersion` and
//! `FindProxyForURLEx` (Microsoft's, which Chromium leaves out) are there,
//! and a `dateRange` month range ends on the month's last day (Chromium's
//! library, like Firefox's, builds an end of `"FEB"` as 31 February, in
//! March, though its own tests expect the month's end).
//! `tests/pac/README.md` lists every known difference from Chromium and
//! from pacparser, and the tests that check them.
//!
//! An answer that is a string with no entry (`""`, or only blanks and
//! semicolons) means `DIRECT`, as in Chromium; any other answer must be a
//! proxy list ([`ProxyList::parse`]).
//!
//! Name lookups go through the resolver ([`Pac::with_resolver`]; the
//! system's `getaddrinfo` by default) on a helper thread, and wait at most
//! for what is left of the call's budget. As in Chromium, `dnsResolve` and
//! `dnsResolveEx` hand every string to the resolver as it is (the empty
//! one included), except a name with non-ASCII letters, which goes as
//! punycode (`Bücher.ch` as `xn--bcher-kva.ch`); IP literals answer
//! themselves, and a non-string argument gives `null` (`dnsResolveEx`:
//! `undefined`) without a lookup. A lookup still unanswered then
//! counts as unresolvable inside the script, and the call fails with the
//! budget's timeout: no answer ever rests on a lookup cut short.
//! `myIpAddress()` is [`Pac::with_my_ip_address`] if set, else the first
//! non-loopback address of the machine's host name, else `127.0.0.1`;
//! nothing is sent on the network to find it.
//!
//! # Example
//!
//! ```
//! use tower_tunnel::{Hop, Pac};
//!
//! let pac = Pac::from_script(r#"
//!     function FindProxyForURL(url, host) {
//!         if (isPlainHostName(host) || dnsDomainIs(host, ".corp")) return "DIRECT";
//!         return "PROXY proxy.corp:3128; DIRECT";
//!     }
//! "#)?;
//! let (list, answer) = pac.find(&"https://example.com/search?q=x".parse().unwrap())?;
//! assert_eq!(&*answer, "PROXY proxy.corp:3128; DIRECT");
//! assert_eq!(list.hops()[1], Hop::Direct);
//! assert_eq!(pac.evaluate("http://intranet/", "intranet")?, "DIRECT");
//! # Ok::<(), tower_tunnel::Error>(())
//! ```
//!
//! # Errors
//!
//! - [`ErrorKind::PacScript`] when the script does not compile, defines no
//!   `FindProxyForURL`, or throws (a thrown `null` is
//!   [`ErrorKind::PacOutOfMemory`]: QuickJS's sign it could not allocate
//!   even an error).
//! - [`ErrorKind::Timeout`] in [`Phase::Pac`] when a call runs past its
//!   budget.
//! - [`ErrorKind::PacOutOfMemory`] when the script hits its memory limit,
//!   or throws `null`.
//!   The script stays usable for the next call after this and a timeout.
//! - [`ErrorKind::PacAnswer`] when the answer is not a string, or not a
//!   proxy list (an empty one is `DIRECT`); the message quotes it.
//! - [`ErrorKind::PacFetch`] when [`Pac::from_url`] cannot fetch the
//!   script.

mod engine;
mod fetch;
mod library;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use http::Uri;

use self::engine::Engine;
use super::{Hop, ProxyList};
use crate::error::{Error, ErrorKind, Phase};

/// The default time budget of one call.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(1);
/// The default memory limit of a script.
pub const DEFAULT_MEMORY_LIMIT: usize = 32 << 20;
/// How long an answer is reused for the same target by default.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
/// How often [`Pac::from_url`] fetches the script again by default.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// The most answers kept; past it, expired ones are dropped, then all.
const CACHE_ENTRIES: usize = 1024;

type Resolver = Arc<dyn Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync>;
type WallClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What a call needs besides the script; shared with the worker per call.
#[derive(Clone)]
pub(crate) struct Settings {
    budget: Duration,
    memory_limit: usize,
    cache_ttl: Duration,
    refresh_every: Duration,
    my_ip: Option<IpAddr>,
    resolver: Resolver,
    clock: Option<WallClock>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            budget: DEFAULT_BUDGET,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            cache_ttl: DEFAULT_CACHE_TTL,
            refresh_every: DEFAULT_REFRESH_INTERVAL,
            my_ip: None,
            resolver: Arc::new(engine::system_resolver),
            clock: None,
        }
    }
}

/// A compiled PAC script; see the [module docs](self).
///
/// Cheap to clone: clones share the script's thread, the answer cache and,
/// for [`Pac::from_url`], the refreshed script. The builder methods are
/// for right after construction: each gives its `Pac` a fresh answer cache.
#[derive(Clone)]
pub struct Pac {
    shared: Arc<Shared>,
    settings: Arc<Settings>,
    cache: Arc<Mutex<Cache>>,
}

struct Shared {
    engine: RwLock<Arc<Engine>>,
    source: Option<Source>,
}

/// Where a fetched script came from, and when it was last fetched.
struct Source {
    url: String,
    shown: String,
    state: Mutex<RefreshState>,
}

struct RefreshState {
    fetched: Instant,
    running: bool,
}

#[derive(Default)]
struct Cache {
    answers: HashMap<CacheKey, (Instant, ProxyList, Arc<str>)>,
}

/// The URL and host given to the script: for `https://` targets that is
/// (scheme, host, port); for `http://` ones the path and query too.
type CacheKey = (String, String);

impl Pac {
    /// Compiles `script`, which must define `FindProxyForURL` or
    /// `FindProxyForURLEx`. Its top level runs once, now, within the
    /// default budget. Blocks the calling thread for as long; in async
    /// code, prefer [`Pac::from_script_async`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PacScript`] for a syntax error, a throw at the top
    /// level, or no `FindProxyForURL`; a timeout or
    /// [`ErrorKind::PacOutOfMemory`] for a top level that runs too long or
    /// too large.
    pub fn from_script(script: impl Into<String>) -> Result<Pac, Error> {
        let settings = Arc::new(Settings::default());
        let engine = Engine::compile(script.into(), &settings)?;
        Ok(Pac::new(engine, settings, None))
    }

    /// As [`Pac::from_script`], without blocking the async runtime.
    ///
    /// # Errors
    ///
    /// As [`Pac::from_script`].
    pub async fn from_script_async(script: impl Into<String>) -> Result<Pac, Error> {
        let settings = Arc::new(Settings::default());
        let engine = Engine::compile_async(script.into(), &settings).await?;
        Ok(Pac::new(engine, settings, None))
    }

    /// Fetches the script at `url` and compiles it.
    ///
    /// The fetch is one plain HTTP/1.1 `GET`, straight to the server: never
    /// through a proxy (nor through the script itself). Only `http://` URLs
    /// are taken (a PAC URL served over `https://` is rare, and a TLS
    /// client here would need roots to trust). No redirect is followed: a
    /// 3xx is an error naming its status and target, since a redirect
    /// could lead to a scheme or host the user never named. Any status but
    /// 200 is an error; so is a body over 1 MiB (read no further) and a
    /// fetch that takes over 10 s in all.
    ///
    /// The script is fetched again every
    /// [refresh interval](Pac::with_refresh_interval) (30 minutes unless
    /// set), in the background of the calls that find it due: the old
    /// script answers meanwhile, and keeps answering when a fetch or
    /// compile fails (a warning is logged).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PacFetch`], naming the URL without its credentials or
    /// query; then as [`Pac::from_script`].
    pub async fn from_url(url: &str) -> Result<Pac, Error> {
        let text = fetch::fetch(url).await?;
        let settings = Arc::new(Settings::default());
        let engine = Engine::compile_async(text, &settings).await?;
        let shown = url
            .parse::<Uri>()
            .map(|u| fetch::display_url(&u))
            .unwrap_or_default();
        let source = Source {
            url: url.to_owned(),
            shown,
            state: Mutex::new(RefreshState {
                fetched: Instant::now(),
                running: false,
            }),
        };
        Ok(Pac::new(engine, settings, Some(source)))
    }

    /// The first of `urls`, in their order, that serves a script that
    /// compiles: each fetched as [`Pac::from_url`] fetches one, all at
    /// once, so the whole search takes at most one fetch's time limit
    /// (10 s) and one compile's budget. A URL that answers is taken only once every URL before it
    /// has failed; the rest are then dropped. The script is refreshed
    /// from the URL that served it.
    ///
    /// This is WPAD's search ([`Pac::from_wpad`]) with candidates of your
    /// own, for a network that publishes its script at one of a few known
    /// places.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PacFetch`] when no URL is given, or none serves a
    /// script that compiles; the message names each URL (without
    /// credentials or query) and why it failed.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_tunnel::Error> {
    /// use tower_tunnel::Pac;
    ///
    /// let pac = Pac::discover([
    ///     "http://wpad.eng.corp.example/wpad.dat",
    ///     "http://proxy-config.corp.example/proxy.pac",
    /// ])
    /// .await?;
    /// println!("using the script at {}", pac.url().unwrap());
    /// # Ok(()) }
    /// ```
    pub async fn discover<I>(urls: I) -> Result<Pac, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        use futures_util::stream::{FuturesOrdered, StreamExt};

        let urls: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        if urls.is_empty() {
            return Err(Error::new(ErrorKind::PacFetch, None).with_detail("no PAC URL to try"));
        }
        let mut pending: FuturesOrdered<_> = urls.iter().map(|url| Pac::from_url(url)).collect();
        let mut failures = Vec::with_capacity(urls.len());
        let mut tried = urls.iter();
        while let Some(result) = pending.next().await {
            let url = tried.next().map(String::as_str).unwrap_or_default();
            match result {
                Ok(pac) => return Ok(pac),
                // A fetch error names its URL; a script that does not
                // compile is named here.
                Err(e) if e.kind() == ErrorKind::PacFetch => failures.push(e.to_string()),
                Err(e) => {
                    let shown = url
                        .parse::<Uri>()
                        .map(|u| fetch::display_url(&u))
                        .unwrap_or_else(|_| "a URL that does not parse".to_owned());
                    failures.push(format!("{shown}: {e}"));
                }
            }
        }
        Err(Error::new(ErrorKind::PacFetch, None).with_detail(format!(
            "no script at any of {} URLs: {}",
            urls.len(),
            failures.join("; ")
        )))
    }

    /// WPAD's DNS method (feature `wpad`): the script at the first of
    /// [`wpad_urls`](crate::route::wpad_urls) for the machine's
    /// [`search_domains`](crate::route::search_domains) that serves one,
    /// as [`Pac::discover`] finds it: `http://wpad.<domain>/wpad.dat` up
    /// each search domain, never above the registrable domain, most
    /// specific first. DHCP option 252 is not asked (see
    /// [`wpad_urls`](crate::route::wpad_urls) for why).
    ///
    /// WPAD sends name lookups for `wpad.<domain>` to the network's DNS
    /// and fetches whatever answers: use it only on networks you trust,
    /// as browsers that enable it do.
    ///
    /// # Errors
    ///
    /// As [`Pac::discover`]: [`ErrorKind::PacFetch`] when the machine has
    /// no search domain or no candidate serves a script. Browsers go
    /// direct then; for that, fall back yourself:
    /// `Proxies::from_wpad().await.unwrap_or_default()`.
    #[cfg(feature = "wpad")]
    #[cfg_attr(docsrs, doc(cfg(feature = "wpad")))]
    pub async fn from_wpad() -> Result<Pac, Error> {
        let urls = super::wpad_urls(&super::search_domains());
        if urls.is_empty() {
            return Err(Error::new(ErrorKind::PacFetch, None).with_detail(
                "WPAD has no URL to try: no DNS search domain in /etc/resolv.conf, \
                 or only public suffixes",
            ));
        }
        Pac::discover(urls).await
    }

    /// The URL the script was fetched from (as errors show it: no
    /// credentials, no query); `None` for a script given as text.
    pub fn url(&self) -> Option<&str> {
        self.shared.source.as_ref().map(|s| s.shown.as_str())
    }

    fn new(engine: Engine, settings: Arc<Settings>, source: Option<Source>) -> Pac {
        Pac {
            shared: Arc::new(Shared {
                engine: RwLock::new(Arc::new(engine)),
                source,
            }),
            settings,
            cache: Arc::default(),
        }
    }

    fn set(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self.cache = Arc::default();
        self
    }

    /// The time budget of one call ([1 s](DEFAULT_BUDGET) unless set),
    /// name lookups included.
    pub fn with_budget(self, per_call: Duration) -> Self {
        self.set(|s| s.budget = per_call)
    }

    /// The memory limit of the script's JavaScript heap
    /// ([32 MiB](DEFAULT_MEMORY_LIMIT) unless set). A call that needs more
    /// fails with [`ErrorKind::PacOutOfMemory`]; the script stays usable.
    pub fn with_memory_limit(self, bytes: usize) -> Self {
        self.set(|s| s.memory_limit = bytes.max(1 << 20))
    }

    /// How long an answer is reused for the same script arguments
    /// ([30 s](DEFAULT_CACHE_TTL) unless set; zero turns the cache off).
    /// For `https://` targets the arguments are scheme, host and port; for
    /// `http://` ones the path and query too. At most 1024 answers are
    /// kept.
    pub fn with_cache_ttl(self, ttl: Duration) -> Self {
        self.set(|s| s.cache_ttl = ttl)
    }

    /// How often a script from [`Pac::from_url`] is fetched again
    /// ([30 minutes](DEFAULT_REFRESH_INTERVAL) unless set). No effect on
    /// a script given as text.
    pub fn with_refresh_interval(self, every: Duration) -> Self {
        self.set(|s| s.refresh_every = every)
    }

    /// The address `myIpAddress()` and `myIpAddressEx()` return.
    pub fn with_my_ip_address(self, ip: IpAddr) -> Self {
        self.set(|s| s.my_ip = Some(ip))
    }

    /// The resolver behind `dnsResolve`, `isResolvable`, `isInNet` with a
    /// name, the `*Ex` functions and `myIpAddress`; the system's unless
    /// set. It runs on a helper thread, and its answer is waited for only
    /// within the call's budget. It gets names as the script gave them
    /// (any string, the empty one included), international ones as
    /// punycode. Within one call an answer is reused for the same name
    /// and function (`dnsResolve` and `dnsResolveEx` each ask), as in
    /// Chromium.
    pub fn with_resolver(
        self,
        resolver: impl Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync + 'static,
    ) -> Self {
        self.set(|s| s.resolver = Arc::new(resolver))
    }

    /// The clock `weekdayRange`, `dateRange` and `timeRange` read (the
    /// script's `Date` objects otherwise keep the system's time); for
    /// tests.
    pub fn with_clock(self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.set(|s| s.clock = Some(Arc::new(clock)))
    }

    /// Calls `FindProxyForURL(url, host)` (or `FindProxyForURLEx`) exactly
    /// as given, within the budget, and returns the script's answer: no URL
    /// stripping, no cache, no parsing. Blocks the calling thread while the
    /// script's thread runs it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PacScript`] when the script throws,
    /// [`ErrorKind::Timeout`] when it runs past its budget,
    /// [`ErrorKind::PacOutOfMemory`], and [`ErrorKind::PacAnswer`] when it
    /// returns something other than a string.
    pub fn evaluate(&self, url: &str, host: &str) -> Result<String, Error> {
        self.engine().call(url, host, &self.settings)
    }

    /// The proxy list for `uri`, and the script's answer it was parsed
    /// from: what [`Proxies`](crate::Proxies) uses. Strips the URL as the
    /// [module docs](self) say, reuses a cached answer, and otherwise runs
    /// the script on the calling thread's behalf (blocking it).
    ///
    /// # Errors
    ///
    /// As [`Pac::evaluate`]; [`ErrorKind::PacAnswer`] quoting the answer
    /// when it is not a proxy list ([`ProxyList::parse`]).
    pub fn find(&self, uri: &Uri) -> Result<(ProxyList, Arc<str>), Error> {
        self.refresh_if_due();
        let (url, host) = script_args(uri)?;
        if let Some(hit) = self.cached(&url, &host) {
            return Ok(hit);
        }
        let answer = self.engine().call(&url, &host, &self.settings)?;
        self.store(url, host, &answer)
    }

    /// As [`Pac::find`], without blocking: a cached answer comes back at
    /// once, and otherwise the call waits on the script's thread.
    ///
    /// # Errors
    ///
    /// As [`Pac::find`].
    pub async fn find_async(&self, uri: &Uri) -> Result<(ProxyList, Arc<str>), Error> {
        self.refresh_if_due();
        let (url, host) = script_args(uri)?;
        if let Some(hit) = self.cached(&url, &host) {
            return Ok(hit);
        }
        let engine = self.engine();
        let answer = engine.call_async(&url, &host, &self.settings).await?;
        self.store(url, host, &answer)
    }

    fn engine(&self) -> Arc<Engine> {
        self.shared
            .engine
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn cached(&self, url: &str, host: &str) -> Option<(ProxyList, Arc<str>)> {
        if self.settings.cache_ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // A lookup by borrowed parts: the key is a pair of Strings.
        let (expires, list, answer) = cache.answers.get(&(url.to_owned(), host.to_owned()))?;
        (Instant::now() < *expires).then(|| (list.clone(), answer.clone()))
    }

    fn store(
        &self,
        url: String,
        host: String,
        answer: &str,
    ) -> Result<(ProxyList, Arc<str>), Error> {
        let list = if answer.split(';').all(|entry| entry.trim().is_empty()) {
            // An empty answer is DIRECT, as in Chromium.
            ProxyList::new([Hop::Direct])
        } else {
            ProxyList::parse(answer)
        };
        let list = list.map_err(|e| {
            let why = e.to_string();
            engine::answer_error(format!(
                "`{}` ({})",
                engine::quote(answer),
                why.strip_prefix("invalid proxy URL: ").unwrap_or(&why)
            ))
        })?;
        let answer: Arc<str> = answer.into();
        let ttl = self.settings.cache_ttl;
        if !ttl.is_zero() {
            let now = Instant::now();
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.answers.len() >= CACHE_ENTRIES {
                cache.answers.retain(|_, (expires, _, _)| *expires > now);
                if cache.answers.len() >= CACHE_ENTRIES {
                    cache.answers.clear();
                }
            }
            cache
                .answers
                .insert((url, host), (now + ttl, list.clone(), answer.clone()));
        }
        Ok((list, answer))
    }

    /// Starts a background fetch of a script from [`Pac::from_url`] when
    /// its refresh interval has passed and none is running.
    fn refresh_if_due(&self) {
        let Some(source) = &self.shared.source else {
            return;
        };
        {
            let mut state = source.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.running || state.fetched.elapsed() < self.settings.refresh_every {
                return;
            }
            state.running = true;
        }
        let pac = self.clone();
        // A thread of its own with a small runtime: the refresh must work
        // from `find` outside any runtime, and its compile step blocks.
        let spawned = std::thread::Builder::new()
            .name("tower-tunnel-pac-refresh".into())
            .spawn(move || pac.refresh());
        if spawned.is_err() {
            let mut state = source.state.lock().unwrap_or_else(|e| e.into_inner());
            state.running = false;
        }
    }

    fn refresh(self) {
        let Some(source) = &self.shared.source else {
            return;
        };
        let fetched = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::PacFetch, None)
                    .with_detail("could not start a runtime")
                    .with_source(e)
            })
            .and_then(|rt| rt.block_on(fetch::fetch(&source.url)));
        let compiled = fetched.and_then(|text| Engine::compile(text, &self.settings));
        match compiled {
            Ok(engine) => {
                *self
                    .shared
                    .engine
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = Arc::new(engine);
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .answers
                    .clear();
                tracing::debug!(target: "tower_tunnel::pac", url = %source.shown, "PAC script refreshed");
            }
            Err(e) => {
                tracing::warn!(target: "tower_tunnel::pac", url = %source.shown, error = %e, "PAC script refresh failed; keeping the previous script");
            }
        }
        let mut state = source.state.lock().unwrap_or_else(|e| e.into_inner());
        state.running = false;
        state.fetched = Instant::now();
    }
}

impl fmt::Debug for Pac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Pac");
        if let Some(source) = &self.shared.source {
            d.field("url", &source.shown);
        }
        d.field("budget", &self.settings.budget)
            .field("memory_limit", &self.settings.memory_limit)
            .field("cache_ttl", &self.settings.cache_ttl)
            .field("my_ip", &self.settings.my_ip)
            .finish_non_exhaustive()
    }
}

/// The `url` and `host` a script is called with for `uri`; see the table
/// in the [module docs](self).
fn script_args(uri: &Uri) -> Result<(String, String), Error> {
    let host = match uri.host() {
        Some(h) if !h.is_empty() => h.trim_matches(['[', ']']).to_ascii_lowercase(),
        _ => {
            return Err(Error::new(ErrorKind::InvalidTarget, Some(Phase::Pac))
                .with_detail("the target has no host"))
        }
    };
    let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
    let (scheme, default_port, keep_path) = match scheme.as_deref() {
        Some("https") => ("https", 443, false),
        Some("wss") => ("wss", 443, false),
        Some("http") => ("http", 80, true),
        Some("ws") => ("ws", 80, true),
        None => ("https", 443, false),
        Some(other) => (other, 0, true),
    };
    let bracketed = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let port = match uri.port_u16() {
        Some(p) if p != default_port => format!(":{p}"),
        _ => String::new(),
    };
    let rest = match uri.path_and_query() {
        Some(pq) if keep_path => pq.as_str(),
        _ => "/",
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    Ok((format!("{scheme}://{bracketed}{port}{rest}"), host))
}

#[cfg(test)]
mod tests;

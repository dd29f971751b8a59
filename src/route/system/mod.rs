//! The operating system's proxy settings: [`Proxies::from_system`].
//!
//! Each platform's settings are read into a neutral [`SystemSettings`]
//! (plain code, compiled and tested everywhere); only the reads themselves
//! are platform code: the `gsettings` command (GNOME), a file (KDE), the
//! registry (Windows, through `winreg`) and SystemConfiguration's proxy
//! dictionary as `scutil --proxy` prints it (macOS).

mod bypass;
mod gnome;
mod kde;
mod macos;
mod windows;

use std::fmt;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use http::Uri;

use self::bypass::Bypass;
pub use self::macos::{MacProxy, MacProxySettings};
pub use self::windows::WinInetSettings;
use super::rules::TargetScheme;
use super::{Proxies, ProxyList, Rule};
use crate::error::{Error, ErrorKind};

/// An [`ErrorKind::SystemSettings`] error with this detail.
pub(crate) fn settings_error(detail: String) -> Error {
    Error::new(ErrorKind::SystemSettings, None).with_detail(detail)
}

/// How long a settings command (`gsettings`, `scutil`) may take before it
/// is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `program` with `args` in an environment of `envs` alone (plus a
/// default `PATH`), within [`COMMAND_TIMEOUT`], and returns its output.
/// `label` starts every error message; `hint` says where the program
/// comes from.
pub(crate) fn run(
    program: &str,
    args: &[&str],
    envs: &[(&str, String)],
    label: &str,
    hint: &str,
) -> Result<String, Error> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| settings_error(format!("{label}: cannot run {program} ({hint}): {e}")))?;
    // Both pipes are drained on threads, so a chatty child never blocks on
    // a full pipe while it is waited for.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    // Bounded: COMMAND_TIMEOUT in steps of 5 ms.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < COMMAND_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(settings_error(format!(
                    "{label}: {program} did not answer within {COMMAND_TIMEOUT:?}"
                )));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(settings_error(format!(
                    "{label}: waiting for {program} failed: {e}"
                )));
            }
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        return Err(settings_error(format!(
            "{label}: {program} failed ({status}): {}",
            err.trim()
        )));
    }
    Ok(out)
}

/// One desktop's proxy settings, read into a neutral form.
///
/// Made by the platform readers behind [`Proxies::from_system`], or from
/// settings you read yourself: [`SystemSettings::from_gsettings`] (GNOME),
/// [`SystemSettings::from_kioslaverc`] (KDE),
/// [`SystemSettings::from_wininet`] (Windows),
/// [`SystemSettings::from_macos`] (macOS). Turn them into rules with
/// [`Proxies::from_system_settings`].
///
/// # Example
///
/// ```
/// use tower_tunnel::{Proxies, SystemSettings, WinInetSettings};
///
/// let settings = SystemSettings::from_wininet(&WinInetSettings {
///     proxy_enable: true,
///     proxy_server: "http=proxy.corp:3128;https=proxy.corp:3129".into(),
///     proxy_override: "<local>;*.corp".into(),
///     ..Default::default()
/// })?;
/// let proxies = Proxies::from_system_settings(settings)?;
/// let to = |uri: &str| proxies.decide(&uri.parse().unwrap()).unwrap();
/// assert_eq!(to("https://example.com/").proxy().unwrap().to_string(), "http://proxy.corp:3129");
/// assert!(to("http://intranet/").proxy().is_none());
/// assert_eq!(
///     to("http://intranet/").rule().to_string(),
///     "Windows Internet Settings, ProxyOverride `<local>`"
/// );
/// # Ok::<(), tower_tunnel::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SystemSettings {
    source: String,
    proxy: SystemProxy,
    use_same_proxy: bool,
}

/// What the settings say, whatever the platform.
#[derive(Clone, Debug)]
enum SystemProxy {
    /// Every target direct.
    None,
    /// Fixed proxies.
    Manual(Manual),
    /// The PAC script at `url`, for targets the bypass list lets through.
    Pac { url: String, bypass: Bypass },
    /// Web Proxy Auto-Discovery.
    Wpad { bypass: Bypass },
}

/// Fixed proxies: a list per target scheme (`ws://` takes the `http://`
/// one, `wss://` the `https://` one), each with the setting's name.
#[derive(Clone, Debug)]
struct Manual {
    http: Option<(ProxyList, &'static str)>,
    https: Option<(ProxyList, &'static str)>,
    other: Option<(ProxyList, &'static str)>,
    bypass: Bypass,
    bypass_name: &'static str,
    /// KDE's `ReversedException`: only the listed hosts use the proxy.
    reversed: bool,
}

impl SystemSettings {
    /// Where the settings came from and their mode, as
    /// [`Rule::System`] shows it: `"GNOME settings, mode manual"`,
    /// `"KDE kioslaverc, ProxyType 1"`, `"Windows Internet Settings"`,
    /// `"macOS network settings"`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The PAC script's URL, when the settings name one (GNOME's `auto`
    /// mode with an `autoconfig-url`, KDE's `ProxyType=2`, Windows'
    /// `AutoConfigURL`, macOS' `ProxyAutoConfigURLString`).
    pub fn pac_url(&self) -> Option<&str> {
        match &self.proxy {
            SystemProxy::Pac { url, .. } => Some(url),
            _ => None,
        }
    }

    /// Whether the settings ask for Web Proxy Auto-Discovery.
    pub fn is_wpad(&self) -> bool {
        matches!(self.proxy, SystemProxy::Wpad { .. })
    }

    /// Whether no proxy is set: every target goes direct.
    pub fn is_direct(&self) -> bool {
        matches!(self.proxy, SystemProxy::None)
    }

    /// GNOME's `use-same-proxy`, as read (`false` elsewhere). It routes
    /// nothing; see [`SystemSettings::from_gsettings`].
    pub fn use_same_proxy(&self) -> bool {
        self.use_same_proxy
    }

    /// The bypass list as written, with implicit entries (Windows'
    /// loopback, macOS' `ExcludeSimpleHostnames` as `<local>`).
    pub fn bypass(&self) -> Vec<&str> {
        match &self.proxy {
            SystemProxy::None => Vec::new(),
            SystemProxy::Manual(m) => m.bypass.entries().collect(),
            SystemProxy::Pac { bypass, .. } | SystemProxy::Wpad { bypass } => {
                bypass.entries().collect()
            }
        }
    }

    /// The rule naming these settings and `detail`.
    fn rule(&self, detail: &str) -> Rule {
        Rule::System {
            source: if detail.is_empty() {
                self.source.clone()
            } else {
                format!("{}, {detail}", self.source)
            },
        }
    }

    /// The list and the rule for `uri`; `None` when the PAC script must
    /// answer (the bypass list let `uri` through).
    #[allow(clippy::type_complexity)]
    fn rule_for(&self, uri: &Uri) -> Option<(Option<ProxyList>, Rule)> {
        let system = |detail: String| self.rule(&detail);
        let scheme = TargetScheme::of(uri);
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().or(scheme.default_port());
        let m = match &self.proxy {
            SystemProxy::None => return Some((None, system(String::new()))),
            SystemProxy::Pac { bypass, .. } | SystemProxy::Wpad { bypass } => {
                let name = match self.source.split(',').next() {
                    Some("GNOME settings") => "ignore-hosts",
                    Some("Windows Internet Settings") => "ProxyOverride",
                    Some("macOS network settings") => "ExceptionsList",
                    _ => "bypass list",
                };
                return bypass
                    .matching(host, port)
                    .map(|entry| (None, system(format!("{name} `{entry}`"))));
            }
            SystemProxy::Manual(m) => m,
        };
        Some(self.manual_rule(m, scheme, host, port))
    }

    fn manual_rule(
        &self,
        m: &Manual,
        scheme: TargetScheme,
        host: &str,
        port: Option<u16>,
    ) -> (Option<ProxyList>, Rule) {
        let system = |detail: String| self.rule(&detail);
        let hit = m.bypass.matching(host, port);
        match (hit, m.reversed) {
            (Some(entry), false) => {
                return (None, system(format!("{} `{entry}`", m.bypass_name)));
            }
            (None, true) => {
                return (
                    None,
                    system(format!("not in {} (ReversedException)", m.bypass_name)),
                );
            }
            _ => {}
        }
        let slot = match scheme {
            TargetScheme::Http | TargetScheme::Ws => &m.http,
            TargetScheme::Https | TargetScheme::Wss => &m.https,
            TargetScheme::Other => &m.other,
        };
        match slot {
            Some((list, name)) => (Some(list.clone()), system((*name).to_owned())),
            None => (None, system("no proxy for this scheme".into())),
        }
    }
}

impl fmt::Display for SystemSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Which desktop's settings apply, from the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Desktop {
    Gnome,
    Kde,
    Windows,
    MacOs,
    Unknown,
}

impl Desktop {
    /// On Linux and the BSDs: `XDG_CURRENT_DESKTOP` (a `:`-separated
    /// list) naming GNOME or a desktop built on its settings (Unity,
    /// Cinnamon, Pantheon, Budgie), or KDE; else `KDE_FULL_SESSION`; else
    /// `DESKTOP_SESSION` (`gnome`, `gnome-wayland`, `ubuntu`) or
    /// `GNOME_DESKTOP_SESSION_ID`.
    fn detect(get: &dyn Fn(&str) -> Option<String>) -> Desktop {
        if cfg!(windows) {
            return Desktop::Windows;
        }
        if cfg!(target_os = "macos") {
            return Desktop::MacOs;
        }
        if let Some(list) = get("XDG_CURRENT_DESKTOP") {
            for name in list.split(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "gnome" | "gnome-classic" | "gnome-flashback" | "unity" | "cinnamon"
                    | "x-cinnamon" | "pantheon" | "budgie" | "budgie:gnome" => {
                        return Desktop::Gnome
                    }
                    "kde" => return Desktop::Kde,
                    _ => {}
                }
            }
        }
        if get("KDE_FULL_SESSION").is_some_and(|v| !v.is_empty()) {
            return Desktop::Kde;
        }
        let session = get("DESKTOP_SESSION").unwrap_or_default();
        if matches!(session.as_str(), "gnome" | "gnome-wayland" | "ubuntu")
            || get("GNOME_DESKTOP_SESSION_ID").is_some()
        {
            return Desktop::Gnome;
        }
        Desktop::Unknown
    }
}

type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The rules [`Proxies::from_system`] found: the environment's, a
/// desktop's, or none.
#[derive(Clone, Debug)]
enum Found {
    Env(Proxies),
    Desktop(SystemSettings),
    /// Settings that name a PAC script (or found one through WPAD), and
    /// the script, fetched and compiled.
    #[cfg(feature = "pac")]
    DesktopPac(SystemSettings, crate::route::Pac),
    Nothing,
}

/// The system source inside [`Proxies`]: what was read, shared by every
/// clone, and how to read it again.
#[derive(Clone)]
pub(crate) struct Source {
    shared: Arc<Shared>,
}

struct Shared {
    found: RwLock<Found>,
    /// `None` for settings given to [`Proxies::from_system_settings`]:
    /// nothing to read again.
    env: Option<Env>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let found = self.shared.found.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("SystemSource")
            .field("found", &*found)
            .finish()
    }
}

/// What deciding a target takes: the rules' answer, or a PAC script's.
enum Step {
    Done(Option<ProxyList>, Rule),
    #[cfg(feature = "pac")]
    Pac(crate::route::Pac, SystemSettings),
}

impl Source {
    /// The rule for `uri`, short of running a PAC script; the lock is
    /// released before any script runs.
    fn step(&self, uri: &Uri) -> Step {
        let found = self.shared.found.read().unwrap_or_else(|e| e.into_inner());
        let (list, rule) = match &*found {
            Found::Env(proxies) => proxies.rule_without_pac(uri),
            Found::Desktop(settings) => match settings.rule_for(uri) {
                Some(done) => done,
                // check_usable keeps PAC settings out of Found::Desktop.
                None => (None, settings.rule("no PAC script")),
            },
            #[cfg(feature = "pac")]
            Found::DesktopPac(settings, pac) => match settings.rule_for(uri) {
                Some(done) => done,
                None => return Step::Pac(pac.clone(), settings.clone()),
            },
            Found::Nothing => (None, Rule::NoProxyConfigured),
        };
        Step::Done(list, rule)
    }

    pub(crate) fn decide(&self, uri: &Uri) -> Result<(Option<ProxyList>, Rule), Error> {
        match self.step(uri) {
            Step::Done(list, rule) => Ok((list, rule)),
            #[cfg(feature = "pac")]
            Step::Pac(pac, settings) => pac_rule(&settings, &pac, pac.find(uri)),
        }
    }

    pub(crate) async fn decide_async(&self, uri: &Uri) -> Result<(Option<ProxyList>, Rule), Error> {
        match self.step(uri) {
            Step::Done(list, rule) => Ok((list, rule)),
            #[cfg(feature = "pac")]
            Step::Pac(pac, settings) => pac_rule(&settings, &pac, pac.find_async(uri).await),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        let found = self.shared.found.read().unwrap_or_else(|e| e.into_inner());
        match &*found {
            Found::Env(proxies) => proxies.is_empty(),
            Found::Desktop(_) => false,
            #[cfg(feature = "pac")]
            Found::DesktopPac(..) => false,
            Found::Nothing => true,
        }
    }

    fn refresh(&self) -> Result<(), Error> {
        let Some(env) = &self.shared.env else {
            return Ok(());
        };
        let found = find(&**env)?;
        *self.shared.found.write().unwrap_or_else(|e| e.into_inner()) = found;
        Ok(())
    }
}

/// The environment, then the desktop, then nothing.
fn find(get: &dyn Fn(&str) -> Option<String>) -> Result<Found, Error> {
    let env = Proxies::from_env_with(get)?;
    if !env.is_empty() {
        return Ok(Found::Env(env));
    }
    let settings = match Desktop::detect(get) {
        Desktop::Gnome => gnome::read(get)?,
        Desktop::Kde => kde::read(get)?,
        #[cfg(windows)]
        Desktop::Windows => windows::read()?,
        #[cfg(target_os = "macos")]
        Desktop::MacOs => macos::read()?,
        _ => return Ok(Found::Nothing),
    };
    with_pac(settings)
}

/// The rule for a PAC script's answer.
#[cfg(feature = "pac")]
fn pac_rule(
    settings: &SystemSettings,
    pac: &crate::route::Pac,
    found: Result<(ProxyList, Arc<str>), Error>,
) -> Result<(Option<ProxyList>, Rule), Error> {
    let (list, answer) = found?;
    // The URL the script came from (WPAD's, whichever served it).
    let url = settings.pac_url().or(pac.url()).unwrap_or(WPAD_URL);
    let rule = settings.rule(&format!(
        "the PAC script ({}) answered `{answer}`",
        redact(url)
    ));
    let direct = list.hops().iter().all(|hop| hop.proxy().is_none());
    Ok((if direct { None } else { Some(list) }, rule))
}

/// Where WPAD looks for a script: the DNS form (the name `wpad` in the
/// host's search domains), as libproxy's `wpad_dns_alias` and browsers
/// try it. DHCP option 252 is not read.
#[cfg(feature = "pac")]
const WPAD_URL: &str = "http://wpad/wpad.dat";

/// WPAD's candidates: [`WPAD_URL`] first, as libproxy and browsers try it;
/// with feature `wpad`, then `wpad.<domain>` up each search domain, as
/// [`Pac::from_wpad`](crate::route::Pac::from_wpad) does.
#[cfg(feature = "pac")]
fn wpad_candidates() -> Vec<String> {
    #[allow(unused_mut)]
    let mut urls = vec![WPAD_URL.to_owned()];
    #[cfg(feature = "wpad")]
    urls.extend(crate::route::wpad_urls(&crate::route::search_domains()));
    urls
}

/// The settings, with their PAC script fetched and compiled when they
/// name one (feature `pac`); without the feature, such settings are an
/// error, never a silent direct connection.
#[cfg(feature = "pac")]
fn with_pac(settings: SystemSettings) -> Result<Found, Error> {
    use crate::route::Pac;

    let (urls, wpad) = match &settings.proxy {
        SystemProxy::Pac { url, .. } => (vec![url.clone()], false),
        SystemProxy::Wpad { .. } => (wpad_candidates(), true),
        _ => return Ok(Found::Desktop(settings)),
    };
    let url = &urls[0];
    let pac = match url.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| {
                settings_error(format!(
                    "{}: cannot read the PAC script {path}: {e}",
                    settings.source
                ))
            })
            .and_then(Pac::from_script),
        // Fetched on a thread with a runtime of its own, so this works
        // inside and outside an async runtime alike (the fetch is bounded
        // by Pac::from_url's own time limit; WPAD's candidates are fetched
        // at once, so by the same).
        None => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| {
                            settings_error(format!("no runtime to fetch the PAC script: {e}"))
                        })
                        .and_then(|rt| {
                            rt.block_on(async {
                                if wpad {
                                    Pac::discover(&urls).await
                                } else {
                                    Pac::from_url(url).await
                                }
                            })
                        })
                })
                .join()
                .unwrap_or_else(|_| Err(settings_error("the PAC fetch panicked".into())))
        }),
    };
    match pac {
        Ok(pac) => Ok(Found::DesktopPac(settings, pac)),
        // WPAD that finds no script means no proxy, as in browsers.
        Err(e) if wpad => Ok(Found::Desktop(SystemSettings {
            source: format!("{}, WPAD found no script ({e})", settings.source),
            proxy: SystemProxy::None,
            use_same_proxy: settings.use_same_proxy,
        })),
        Err(e) => Err(e),
    }
}

#[cfg(not(feature = "pac"))]
fn with_pac(settings: SystemSettings) -> Result<Found, Error> {
    check_usable(&settings)?;
    Ok(Found::Desktop(settings))
}

/// Settings that need PAC support this build lacks are an error, never a
/// silent direct connection.
#[cfg(not(feature = "pac"))]
fn check_usable(settings: &SystemSettings) -> Result<(), Error> {
    match &settings.proxy {
        SystemProxy::Pac { url, .. } => Err(settings_error(format!(
            "{} name a PAC script ({}); PAC support needs the `pac` feature",
            settings.source,
            redact(url)
        ))),
        SystemProxy::Wpad { .. } => Err(settings_error(format!(
            "{} ask for proxy auto-discovery (WPAD); PAC support needs the `pac` feature",
            settings.source
        ))),
        _ => Ok(()),
    }
}

/// A URL without its userinfo and query, for messages.
fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
            format!("{scheme}://{rest}")
        }
        None => url.to_owned(),
    }
}

impl Proxies {
    /// The rules the user set for the whole system: the environment
    /// first, then the desktop's proxy settings, then none.
    ///
    /// 1. The environment, as [`Proxies::from_env`] reads it, when it
    ///    sets any proxy (`http_proxy`, `https_proxy`, `all_proxy` and the
    ///    rest; `no_proxy` alone, or `HTTP_PROXY`, which `from_env` never
    ///    reads, does not count). Its rules are used as they are.
    /// 2. Else the desktop's settings:
    ///    - GNOME (and desktops on its settings) through `gsettings`; see
    ///      [`SystemSettings::from_gsettings`];
    ///    - KDE's `kioslaverc`; see [`SystemSettings::from_kioslaverc`];
    ///    - Windows' WinINet registry values; see
    ///      [`SystemSettings::from_wininet`];
    ///    - macOS' SystemConfiguration, through `scutil --proxy`; see
    ///      [`SystemSettings::from_scutil`].
    ///
    ///    On Linux and the BSDs the desktop is told by
    ///    `XDG_CURRENT_DESKTOP`, else `KDE_FULL_SESSION`, else
    ///    `DESKTOP_SESSION`/`GNOME_DESKTOP_SESSION_ID`.
    ///    [`Rule::System`] names the source and the setting that decided.
    /// 3. Else no proxy ([`Rule::NoProxyConfigured`]).
    ///
    /// The system rules decide alone: [`Proxies::with_no_proxy`] still
    /// applies before them, while the per-scheme proxies, the custom
    /// matcher and a PAC script set on the result are not consulted.
    ///
    /// The settings are read once, here (this blocks: GNOME's are read by
    /// running `gsettings`, at most 5 seconds). Every clone of the rules
    /// shares them; [`Proxies::refresh`] reads them again, and
    /// [`Proxies::with_refresh_interval`] does so on a timer. Nothing is
    /// read per connection.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidProxy`](crate::ErrorKind::InvalidProxy) for a
    /// bad proxy variable, as [`Proxies::from_env`];
    /// [`ErrorKind::SystemSettings`](crate::ErrorKind::SystemSettings)
    /// when the settings cannot be read or hold a proxy that cannot be
    /// used. Settings that name a PAC script (GNOME's `auto` mode, KDE's
    /// `ProxyType` 2, Windows' `AutoConfigURL`, macOS' automatic
    /// configuration) need the `pac` feature: with it the script is fetched
    /// here (as `Pac::from_url` fetches it, on a thread of its
    /// own; a `file://` URL is read) and a script that cannot be fetched or
    /// compiled is its error; without it, such settings are an
    /// `ErrorKind::SystemSettings` error. WPAD (GNOME's `auto` mode without
    /// a URL, KDE's `ProxyType` 3, `AutoDetect`, `ProxyAutoDiscoveryEnable`)
    /// tries `http://wpad/wpad.dat` (the DNS form; DHCP is not asked) and,
    /// with feature `wpad`, then the candidates of
    /// `Pac::from_wpad`, and goes direct
    /// when no script is found, as browsers do, with the reason in the
    /// rule. Never a silent direct connection otherwise.
    pub fn from_system() -> Result<Self, Error> {
        Self::from_system_with(|name| std::env::var(name).ok())
    }

    /// As [`Proxies::from_system`], with an environment of your own: `get`
    /// returns a variable's value. It serves the proxy variables, the
    /// desktop's detection, `HOME`, `XDG_CONFIG_HOME` and `XDG_CONFIG_DIRS`
    /// (KDE), and the
    /// environment `gsettings` runs in (`PATH`, `HOME`, `XDG_*`,
    /// `GSETTINGS_BACKEND`, `GSETTINGS_SCHEMA_DIR`,
    /// `DBUS_SESSION_BUS_ADDRESS`; nothing else is passed). Kept for
    /// [`Proxies::refresh`].
    ///
    /// # Errors
    ///
    /// As [`Proxies::from_system`].
    pub fn from_system_with(
        get: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        let env: Env = Arc::new(get);
        let found = find(&*env)?;
        Ok(Proxies {
            system: Some(Source {
                shared: Arc::new(Shared {
                    found: RwLock::new(found),
                    env: Some(env),
                }),
            }),
            ..Proxies::default()
        })
    }

    /// Rules from settings read by other means; see [`SystemSettings`].
    /// [`Proxies::refresh`] does nothing on them.
    ///
    /// # Errors
    ///
    /// Without feature `pac`,
    /// [`ErrorKind::SystemSettings`](crate::ErrorKind::SystemSettings) for
    /// settings that name a PAC script or WPAD. With it, the errors of
    /// `Pac::from_url` when the script the settings name cannot be fetched
    /// or compiled; WPAD that finds no script goes direct.
    pub fn from_system_settings(settings: SystemSettings) -> Result<Self, Error> {
        let found = with_pac(settings)?;
        Ok(Proxies {
            system: Some(Source {
                shared: Arc::new(Shared {
                    found: RwLock::new(found),
                    env: None,
                }),
            }),
            ..Proxies::default()
        })
    }

    /// Reads the system settings again, for these rules and every clone of
    /// them (a [`ProxyConnectLayer`](crate::ProxyConnectLayer) made from
    /// them included). Does nothing for rules not made by
    /// [`Proxies::from_system`].
    ///
    /// # Errors
    ///
    /// As [`Proxies::from_system`]; the rules read before are kept.
    pub fn refresh(&self) -> Result<(), Error> {
        match &self.system {
            Some(source) => source.refresh(),
            None => Ok(()),
        }
    }

    /// Reads the system settings again every `every`, on a thread of its
    /// own that ends once these rules and all their clones are dropped
    /// (within one `every`). A read that fails keeps the rules read
    /// before. Does nothing for rules not made by [`Proxies::from_system`].
    pub fn with_refresh_interval(self, every: Duration) -> Self {
        if let Some(source) = &self.system {
            if source.shared.env.is_some() {
                let weak: Weak<Shared> = Arc::downgrade(&source.shared);
                let every = every.max(Duration::from_millis(10));
                let spawned = std::thread::Builder::new()
                    .name("tower-tunnel-system-proxy".into())
                    .spawn(move || loop {
                        std::thread::sleep(every);
                        // Ends once every clone is gone.
                        let Some(shared) = weak.upgrade() else { break };
                        if let Err(e) = (Source { shared }).refresh() {
                            tracing::debug!(error = %e, "system proxy settings: re-read failed");
                        }
                    });
                if let Err(e) = spawned {
                    tracing::debug!(error = %e, "system proxy settings: no refresh thread");
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    fn route(proxies: &Proxies, uri: &str) -> (Option<String>, String) {
        let d = proxies.decide(&uri.parse().unwrap()).unwrap();
        (d.proxy().map(ToString::to_string), d.rule().to_string())
    }

    #[test]
    fn desktops_are_told_apart() {
        let d = |vars: &[(&str, &str)]| Desktop::detect(&env(vars));
        assert_eq!(
            d(&[("XDG_CURRENT_DESKTOP", "ubuntu:GNOME")]),
            Desktop::Gnome
        );
        assert_eq!(d(&[("XDG_CURRENT_DESKTOP", "X-Cinnamon")]), Desktop::Gnome);
        assert_eq!(d(&[("XDG_CURRENT_DESKTOP", "KDE")]), Desktop::Kde);
        assert_eq!(d(&[("KDE_FULL_SESSION", "true")]), Desktop::Kde);
        assert_eq!(d(&[("DESKTOP_SESSION", "gnome")]), Desktop::Gnome);
        assert_eq!(d(&[("XDG_CURRENT_DESKTOP", "XFCE")]), Desktop::Unknown);
        assert_eq!(d(&[]), Desktop::Unknown);
    }

    #[test]
    fn the_environment_comes_first() {
        let dir = std::env::temp_dir().join(format!("tt-sys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("kioslaverc"),
            "[Proxy Settings]\nProxyType=1\nhttpProxy=http://kde.corp 3128\nNoProxyFor=.internal\n",
        )
        .unwrap();
        let kde = [
            ("XDG_CURRENT_DESKTOP", "KDE"),
            ("XDG_CONFIG_HOME", dir.to_str().unwrap()),
        ];
        let proxies = Proxies::from_system_with(env(&kde)).unwrap();
        assert_eq!(
            route(&proxies, "http://example.com/"),
            (
                Some("http://kde.corp:3128".into()),
                "KDE kioslaverc, ProxyType 1, httpProxy".into()
            )
        );
        assert_eq!(
            route(&proxies, "http://db.internal/").1,
            "KDE kioslaverc, ProxyType 1, NoProxyFor `.internal`"
        );
        let mut with_env = kde.to_vec();
        with_env.push(("https_proxy", "http://env.corp:1"));
        let proxies = Proxies::from_system_with(env(&with_env)).unwrap();
        assert_eq!(
            route(&proxies, "https://example.com/"),
            (
                Some("http://env.corp:1".into()),
                "the proxy for this scheme (https_proxy)".into()
            )
        );
        // no_proxy alone does not count: the desktop decides.
        with_env.pop();
        with_env.push(("no_proxy", "*"));
        let proxies = Proxies::from_system_with(env(&with_env)).unwrap();
        assert!(route(&proxies, "http://example.com/").0.is_some());
        // Nothing at all.
        let proxies = Proxies::from_system_with(env(&[])).unwrap();
        assert_eq!(
            route(&proxies, "http://example.com/").1,
            "no proxy configured"
        );
        assert!(proxies.is_empty());

        // refresh() reads the file again, and clones see it.
        let proxies = Proxies::from_system_with(env(&kde)).unwrap();
        let clone = proxies.clone();
        std::fs::write(dir.join("kioslaverc"), "[Proxy Settings]\nProxyType=0\n").unwrap();
        assert!(route(&clone, "http://example.com/").0.is_some());
        proxies.refresh().unwrap();
        assert_eq!(
            route(&clone, "http://example.com/"),
            (None, "KDE kioslaverc, ProxyType 0".into())
        );
        // A read that fails keeps what was read before.
        std::fs::write(dir.join("kioslaverc"), "[Proxy Settings]\nProxyType=7\n").unwrap();
        assert!(proxies.refresh().is_err());
        assert_eq!(
            route(&clone, "http://example.com/").1,
            "KDE kioslaverc, ProxyType 0"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[cfg(not(feature = "pac"))]
    fn pac_is_a_typed_error_without_the_feature() {
        let s = SystemSettings::from_kioslaverc(
            "[Proxy Settings]\nProxyType=2\nProxy Config Script=http://u:pw@wpad.corp/p.pac?k=v\n",
            |_| None,
        )
        .unwrap();
        let err = Proxies::from_system_settings(s).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SystemSettings);
        let shown = err.to_string();
        assert!(
            shown.contains("PAC support needs the `pac` feature"),
            "{shown}"
        );
        assert!(
            shown.contains("http://wpad.corp/p.pac") && !shown.contains("pw"),
            "{shown}"
        );
    }

    #[test]
    #[cfg(feature = "pac")]
    fn a_pac_script_named_by_the_settings_answers() {
        let dir = std::env::temp_dir().join(format!("tt-sys-pac-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("proxy.pac");
        std::fs::write(
            &script,
            "function FindProxyForURL(url, host) { return host == 'direct.test' ? 'DIRECT' : 'PROXY p.corp:3128; DIRECT'; }",
        )
        .unwrap();
        let text = format!(
            "[Proxy Settings]\nProxyType=2\nProxy Config Script={}\n",
            script.display()
        );
        let s = SystemSettings::from_kioslaverc(&text, |_| None).unwrap();
        let proxies = Proxies::from_system_settings(s).unwrap();
        let (proxy, rule) = route(&proxies, "https://example.com/");
        assert_eq!(proxy.as_deref(), Some("http://p.corp:3128"));
        assert!(
            rule.starts_with("KDE kioslaverc, ProxyType 2, the PAC script (file://")
                && rule.ends_with("answered `PROXY p.corp:3128; DIRECT`"),
            "{rule}"
        );
        assert_eq!(route(&proxies, "http://direct.test/").0, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reversed_exception() {
        let s = SystemSettings::from_kioslaverc(
            "[Proxy Settings]\nProxyType=1\nhttpProxy=p.corp:1\nNoProxyFor=.ext.com\nReversedException=true\n",
            |_| None,
        )
        .unwrap();
        let proxies = Proxies::from_system_settings(s).unwrap();
        assert!(route(&proxies, "http://a.ext.com/").0.is_some());
        assert_eq!(
            route(&proxies, "http://example.org/"),
            (
                None,
                "KDE kioslaverc, ProxyType 1, not in NoProxyFor (ReversedException)".into()
            )
        );
    }

    #[test]
    fn interval_thread_ends_with_the_rules() {
        let proxies = Proxies::from_system_with(env(&[]))
            .unwrap()
            .with_refresh_interval(Duration::from_millis(10));
        let weak = Arc::downgrade(&proxies.system.as_ref().unwrap().shared);
        drop(proxies);
        assert!(weak.upgrade().is_none());
    }
}

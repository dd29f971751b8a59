//! macOS: the proxy dictionary of SystemConfiguration
//! (`SCDynamicStoreCopyProxies`), as `scutil --proxy` prints it.

use super::bypass::{Bypass, Flavour};
use super::{settings_error, Manual, SystemProxy, SystemSettings};
use crate::error::Error;
use crate::route::{Hop, Proxy, ProxyList};

/// The keys of macOS' proxy dictionary that choose a proxy, as
/// [`SystemSettings::from_macos`] reads them (`kSCPropNetProxies*`). An
/// absent key is the default (`0`, empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MacProxySettings {
    /// `HTTPEnable`, `HTTPProxy`, `HTTPPort`.
    pub http: MacProxy,
    /// `HTTPSEnable`, `HTTPSProxy`, `HTTPSPort`.
    pub https: MacProxy,
    /// `SOCKSEnable`, `SOCKSProxy`, `SOCKSPort`.
    pub socks: MacProxy,
    /// `ExceptionsList`: hosts and domains that go direct.
    pub exceptions: Vec<String>,
    /// `ExcludeSimpleHostnames`: names without a dot go direct.
    pub exclude_simple_hostnames: bool,
    /// `ProxyAutoConfigEnable`: use the PAC script below.
    pub auto_config_enable: bool,
    /// `ProxyAutoConfigURLString`.
    pub auto_config_url: String,
    /// `ProxyAutoDiscoveryEnable`: WPAD.
    pub auto_discovery_enable: bool,
}

/// One proxy of [`MacProxySettings`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MacProxy {
    /// `…Enable`.
    pub enable: bool,
    /// `…Proxy`: the host.
    pub host: String,
    /// `…Port`; `None` when absent.
    pub port: Option<u16>,
}

/// Reads the settings through `scutil --proxy` (macOS only).
///
/// Why the command and not SystemConfiguration's C API: the proxy
/// dictionary's `ExceptionsList` is a `CFArray` whose items the
/// `core-foundation` crate hands out only as raw pointers, which this
/// crate (`#![forbid(unsafe_code)]`) cannot wrap; `scutil --proxy` prints
/// the same dictionary (`SCDynamicStoreCopyProxies`), ships with every
/// macOS in `/usr/sbin`, and its text is parsed by
/// [`SystemSettings::from_scutil`], which is tested everywhere.
// Compiled for tests too, so it is type-checked (and its error seen) on
// every platform.
#[cfg(any(target_os = "macos", test))]
pub(super) fn read() -> Result<SystemSettings, Error> {
    let text = super::run(
        "/usr/sbin/scutil",
        &["--proxy"],
        &[],
        "macOS network settings",
        "part of macOS",
    )?;
    SystemSettings::from_scutil(&text)
}

/// An array of the dictionary: its key and items.
type Array = (String, Vec<String>);

/// The dictionary `scutil --proxy` prints: `key : value` lines, arrays as
/// `key : <array> {` with `index : value` lines up to `}`.
fn scutil_values(text: &str) -> (Vec<(String, String)>, Vec<Array>) {
    let mut scalars = Vec::new();
    let mut arrays: Vec<Array> = Vec::new();
    let mut open: Option<Array> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "}" {
            if let Some(array) = open.take() {
                arrays.push(array);
            }
            continue;
        }
        let Some((key, value)) = line.split_once(" : ") else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match &mut open {
            Some((_, items)) => items.push(value.to_owned()),
            None if value.starts_with("<array>") => open = Some((key.to_owned(), Vec::new())),
            None if value.starts_with('<') => {}
            None => scalars.push((key.to_owned(), value.to_owned())),
        }
    }
    (scalars, arrays)
}

impl SystemSettings {
    /// macOS' settings from the output of `scutil --proxy`, which prints
    /// SystemConfiguration's proxy dictionary; read as
    /// [`SystemSettings::from_macos`] reads the dictionary.
    ///
    /// # Errors
    ///
    /// As [`SystemSettings::from_macos`].
    pub fn from_scutil(text: &str) -> Result<SystemSettings, Error> {
        let (scalars, arrays) = scutil_values(text);
        let get = |key: &str| {
            scalars
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let flag = |key: &str| get(key).parse::<i64>().is_ok_and(|n| n != 0);
        let proxy = |prefix: &str| MacProxy {
            enable: flag(&format!("{prefix}Enable")),
            host: get(&format!("{prefix}Proxy")).to_owned(),
            port: get(&format!("{prefix}Port")).parse().ok(),
        };
        SystemSettings::from_macos(&MacProxySettings {
            http: proxy("HTTP"),
            https: proxy("HTTPS"),
            socks: proxy("SOCKS"),
            exceptions: arrays
                .into_iter()
                .find(|(k, _)| k == "ExceptionsList")
                .map(|(_, items)| items)
                .unwrap_or_default(),
            exclude_simple_hostnames: flag("ExcludeSimpleHostnames"),
            auto_config_enable: flag("ProxyAutoConfigEnable"),
            auto_config_url: get("ProxyAutoConfigURLString").to_owned(),
            auto_discovery_enable: flag("ProxyAutoDiscoveryEnable"),
        })
    }
}

impl SystemSettings {
    /// macOS' settings from SystemConfiguration's proxy dictionary.
    ///
    /// Precedence: `ProxyAutoDiscoveryEnable` (WPAD), then
    /// `ProxyAutoConfigEnable` with `ProxyAutoConfigURLString` (a PAC
    /// script), then the fixed proxies: `http://` targets through the HTTP
    /// proxy, `https://` through the HTTPS proxy, each else through the
    /// SOCKS proxy (SOCKS5, names resolved by the proxy), which also takes
    /// every other scheme. A proxy counts when enabled with a host; a
    /// missing port is 80 for HTTP and HTTPS (as Chromium reads it) and
    /// 1080 for SOCKS. The host may carry a scheme (`http://p.corp`).
    ///
    /// `ExceptionsList` entries: `*.local` and `*` wildcards anywhere,
    /// `example.com` (the domain and names under it), IP addresses, CIDR
    /// ranges in macOS' short form (`169.254/16`, `10/8`) or in full;
    /// `ExcludeSimpleHostnames` sends names without a dot direct.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::SystemSettings`](crate::ErrorKind::SystemSettings) for
    /// an enabled proxy that cannot be used.
    pub fn from_macos(values: &MacProxySettings) -> Result<SystemSettings, Error> {
        let source = "macOS network settings".to_owned();
        let mut entries: Vec<&str> = values.exceptions.iter().map(String::as_str).collect();
        if values.exclude_simple_hostnames {
            entries.push("<local>");
        }
        let bypass = Bypass::parse(entries, Flavour::Domain);
        let proxy = if values.auto_discovery_enable {
            SystemProxy::Wpad { bypass }
        } else if values.auto_config_enable && !values.auto_config_url.trim().is_empty() {
            SystemProxy::Pac {
                url: values.auto_config_url.trim().to_owned(),
                bypass,
            }
        } else {
            let read = |p: &MacProxy, scheme: &str, port: u16, name: &str| {
                let host = p.host.trim();
                if !p.enable || host.is_empty() {
                    return Ok(None);
                }
                let with_scheme = if host.contains("://") {
                    host.to_owned()
                } else {
                    format!("{scheme}://{host}")
                };
                let has_port = with_scheme
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
                let url = if has_port {
                    with_scheme
                } else {
                    format!("{with_scheme}:{}", p.port.unwrap_or(port))
                };
                Proxy::new(&url)
                    .map(Some)
                    .map_err(|e| settings_error(format!("{source}: {name} is not a proxy: {e}")))
            };
            let http = read(&values.http, "http", 80, "HTTPProxy")?;
            let https = read(&values.https, "http", 80, "HTTPSProxy")?;
            let socks = read(&values.socks, "socks5h", 1080, "SOCKSProxy")?;
            if http.is_none() && https.is_none() && socks.is_none() {
                SystemProxy::None
            } else {
                let pick = |own: Option<(&Proxy, &'static str)>| {
                    own.or(socks.as_ref().map(|p| (p, "SOCKSProxy")))
                        .and_then(|(p, n)| {
                            ProxyList::new([Hop::from(p.clone())]).ok().map(|l| (l, n))
                        })
                };
                SystemProxy::Manual(Manual {
                    http: pick(http.as_ref().map(|p| (p, "HTTPProxy"))),
                    https: pick(https.as_ref().map(|p| (p, "HTTPSProxy"))),
                    other: pick(None),
                    bypass,
                    bypass_name: "ExceptionsList",
                    reversed: false,
                })
            }
        };
        Ok(SystemSettings {
            source,
            proxy,
            use_same_proxy: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scutil --proxy` on macOS 14, manual HTTP and HTTPS proxies.
    const SCUTIL: &str = "<dictionary> {
  ExceptionsList : <array> {
    0 : *.local
    1 : 169.254/16
    2 : corp.example
  }
  ExcludeSimpleHostnames : 1
  FTPPassive : 1
  HTTPEnable : 1
  HTTPPort : 3128
  HTTPProxy : proxy.corp
  HTTPSEnable : 1
  HTTPSPort : 3129
  HTTPSProxy : proxy.corp
  ProxyAutoConfigEnable : 0
  SOCKSEnable : 0
}
";

    #[test]
    #[cfg(not(target_os = "macos"))]
    fn the_reader_says_what_it_ran() {
        let err = read().unwrap_err();
        assert!(
            err.to_string()
                .contains("macOS network settings: cannot run /usr/sbin/scutil"),
            "{err}"
        );
    }

    #[test]
    fn scutil_output() {
        let s = SystemSettings::from_scutil(SCUTIL).unwrap();
        assert_eq!(s.source(), "macOS network settings");
        let SystemProxy::Manual(m) = &s.proxy else {
            panic!("{s:?}")
        };
        assert_eq!(
            m.http.as_ref().unwrap().0.to_string(),
            "PROXY proxy.corp:3128"
        );
        assert_eq!(
            m.https.as_ref().unwrap().0.to_string(),
            "PROXY proxy.corp:3129"
        );
        assert!(m.other.is_none());
        assert_eq!(
            s.bypass(),
            ["*.local", "169.254/16", "corp.example", "<local>"]
        );
        let pac = "<dictionary> {\n  ProxyAutoConfigEnable : 1\n  ProxyAutoConfigURLString : http://wpad.corp/proxy.pac\n}\n";
        assert_eq!(
            SystemSettings::from_scutil(pac).unwrap().pac_url(),
            Some("http://wpad.corp/proxy.pac")
        );
        assert!(SystemSettings::from_scutil("<dictionary> {\n}\n")
            .unwrap()
            .is_direct());
    }

    fn on(host: &str, port: Option<u16>) -> MacProxy {
        MacProxy {
            enable: true,
            host: host.into(),
            port,
        }
    }

    #[test]
    fn fixed_proxies_and_exceptions() {
        let s = SystemSettings::from_macos(&MacProxySettings {
            http: on("h.corp", Some(3128)),
            https: MacProxy {
                enable: false,
                ..on("s.corp", Some(1))
            },
            socks: on("k.corp", None),
            exceptions: vec!["*.local".into(), "169.254/16".into(), "corp.example".into()],
            exclude_simple_hostnames: true,
            ..Default::default()
        })
        .unwrap();
        let SystemProxy::Manual(m) = &s.proxy else {
            panic!()
        };
        assert_eq!(m.http.as_ref().unwrap().0.to_string(), "PROXY h.corp:3128");
        assert_eq!(
            m.https.as_ref().unwrap().0.to_string(),
            "SOCKS5 k.corp:1080"
        );
        assert_eq!(m.other.as_ref().unwrap().1, "SOCKSProxy");
        let hit = |h: &str| m.bypass.matching(h, Some(80)).map(str::to_owned);
        assert_eq!(hit("printer.local").as_deref(), Some("*.local"));
        assert_eq!(hit("169.254.1.1").as_deref(), Some("169.254/16"));
        assert_eq!(hit("a.corp.example").as_deref(), Some("corp.example"));
        assert_eq!(hit("nas").as_deref(), Some("<local>"));
        assert_eq!(hit("example.org"), None);
    }

    #[test]
    fn precedence_and_ports() {
        let pac = MacProxySettings {
            http: on("h.corp", None),
            auto_config_enable: true,
            auto_config_url: "http://wpad/proxy.pac".into(),
            ..Default::default()
        };
        assert_eq!(
            SystemSettings::from_macos(&pac).unwrap().pac_url(),
            Some("http://wpad/proxy.pac")
        );
        let plain = MacProxySettings {
            auto_config_enable: false,
            ..pac
        };
        let s = SystemSettings::from_macos(&plain).unwrap();
        let SystemProxy::Manual(m) = &s.proxy else {
            panic!()
        };
        assert_eq!(m.http.as_ref().unwrap().0.to_string(), "PROXY h.corp:80");
        assert!(m.https.is_none());
        assert!(matches!(
            SystemSettings::from_macos(&MacProxySettings::default())
                .unwrap()
                .proxy,
            SystemProxy::None
        ));
    }
}

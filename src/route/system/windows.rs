//! Windows: WinINet's per-user settings,
//! `HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings`.

use super::bypass::{Bypass, Flavour};
use super::{settings_error, Manual, SystemProxy, SystemSettings};
use crate::error::Error;
use crate::route::{Hop, Proxy, ProxyList};

/// The values of WinINet's `Internet Settings` key that choose a proxy,
/// as [`SystemSettings::from_wininet`] reads them. An absent value is the
/// default (`0`, or empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WinInetSettings {
    /// `ProxyEnable` (DWORD): the fixed proxies below are used.
    pub proxy_enable: bool,
    /// `ProxyServer` (string): `host:port` for every scheme, or a list
    /// `http=a:1;https=b:2;socks=c:3`.
    pub proxy_server: String,
    /// `ProxyOverride` (string): the bypass list, `;`-separated.
    pub proxy_override: String,
    /// `AutoConfigURL` (string): a PAC script's URL.
    pub auto_config_url: String,
    /// `AutoDetect` (DWORD): WPAD.
    pub auto_detect: bool,
}

/// Reads the registry (Windows only).
#[cfg(windows)]
pub(super) fn read() -> Result<SystemSettings, Error> {
    use winreg::enums::HKEY_CURRENT_USER;
    use winreg::RegKey;

    const KEY: &str = r"Software\Microsoft\Windows\CurrentVersion\Internet Settings";
    let key = match RegKey::predef(HKEY_CURRENT_USER).open_subkey(KEY) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return SystemSettings::from_wininet(&WinInetSettings::default())
        }
        Err(e) => {
            return Err(settings_error(format!(
                "Windows Internet Settings: cannot open HKCU\\{KEY}: {e}"
            )))
        }
    };
    let dword = |name: &str| {
        key.get_value::<u32, _>(name)
            .map(|v| v != 0)
            .unwrap_or(false)
    };
    let string = |name: &str| key.get_value::<String, _>(name).unwrap_or_default();
    SystemSettings::from_wininet(&WinInetSettings {
        proxy_enable: dword("ProxyEnable"),
        proxy_server: string("ProxyServer"),
        proxy_override: string("ProxyOverride"),
        auto_config_url: string("AutoConfigURL"),
        auto_detect: dword("AutoDetect"),
    })
}

/// One `ProxyServer` value: `host:port`, `http://host:port`,
/// `socks5://host:port`; `scheme` when none is written.
fn server(value: &str, scheme: &str) -> Result<Proxy, Error> {
    let value = value.trim();
    let url = if value.contains("://") {
        value.to_owned()
    } else {
        format!("{scheme}://{value}")
    };
    Proxy::new(&url)
}

impl SystemSettings {
    /// Windows' settings from WinINet's registry values.
    ///
    /// Precedence, as WinINet and Chromium apply it: `AutoDetect` (WPAD),
    /// then `AutoConfigURL` (a PAC script), then `ProxyEnable` with
    /// `ProxyServer`. `ProxyServer` forms:
    ///
    /// | value | route |
    /// |---|---|
    /// | `proxy.corp:3128`, `http://proxy.corp:3128` | every target through it |
    /// | `http=a:1;https=b:2;socks=c:3` | `http://` targets through `a`, `https://` through `b`, everything else (and a scheme left out) through the SOCKS proxy; `ftp=` is ignored |
    /// | `https=b:2` alone | `https://` targets only; the others go direct |
    /// | entries written `http=http://a:1` or `https=https://b:2` | the scheme written is the proxy's |
    ///
    /// `socks=` is SOCKS4, as WinINet speaks it (write `socks=socks5://c:3`
    /// for SOCKS5). A bare `host:port` entry in a list is the proxy for the
    /// schemes the list does not name. Entries are separated by `;` (or
    /// white space).
    ///
    /// `ProxyOverride` is a `;`-separated list: `<local>` (a name without a
    /// dot, as WinINet reads it: not the private address ranges), `*`
    /// wildcards anywhere, on names and on IP addresses alike (`*.corp`,
    /// `127.*`, `192.168.*.1`), and
    /// otherwise one host exactly (`example.com` does not cover
    /// `www.example.com`). Loopback (`localhost`, `127.0.0.0/8`, `::1`) is
    /// always bypassed, as in WinINet, unless the list holds `<-loopback>`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::SystemSettings`](crate::ErrorKind::SystemSettings) for
    /// a `ProxyServer` entry that is not a proxy.
    pub fn from_wininet(values: &WinInetSettings) -> Result<SystemSettings, Error> {
        let source = "Windows Internet Settings".to_owned();
        let mut bypass = Bypass::parse(
            values
                .proxy_override
                .split(|c: char| c == ';' || c.is_whitespace())
                .filter(|e| !e.eq_ignore_ascii_case("<-loopback>")),
            Flavour::Exact,
        );
        let loopback = !values
            .proxy_override
            .to_ascii_lowercase()
            .contains("<-loopback>");
        if loopback {
            bypass.push_rule(
                "loopback (WinINet bypasses it always)",
                "localhost, 127.0.0.0/8, ::1",
            );
        }
        let proxy = if values.auto_detect {
            SystemProxy::Wpad { bypass }
        } else if !values.auto_config_url.trim().is_empty() {
            SystemProxy::Pac {
                url: values.auto_config_url.trim().to_owned(),
                bypass,
            }
        } else if values.proxy_enable && !values.proxy_server.trim().is_empty() {
            let bad = |entry: &str, e: Error| {
                settings_error(format!(
                    "{source}: ProxyServer entry `{entry}` is not a proxy: {}",
                    e.to_string().trim_start_matches("invalid proxy URL: ")
                ))
            };
            let (mut http, mut https, mut socks, mut bare) = (None, None, None, None);
            for entry in values
                .proxy_server
                .split(|c: char| c == ';' || c.is_whitespace())
                .map(str::trim)
                .filter(|e| !e.is_empty())
            {
                match entry.split_once('=') {
                    Some((scheme, value)) if !value.trim().is_empty() => {
                        let slot = match scheme.trim().to_ascii_lowercase().as_str() {
                            "http" => (&mut http, "http"),
                            "https" => (&mut https, "http"),
                            "socks" => (&mut socks, "socks4"),
                            _ => continue, // ftp=, gopher=: not proxied here
                        };
                        *slot.0 = Some(server(value, slot.1).map_err(|e| bad(entry, e))?);
                    }
                    Some(_) => {}
                    None => bare = Some(server(entry, "http").map_err(|e| bad(entry, e))?),
                }
            }
            let one = |p: &Proxy, name: &'static str| {
                ProxyList::new([Hop::from(p.clone())])
                    .ok()
                    .map(|l| (l, name))
            };
            let pick = |own: Option<(&Proxy, &'static str)>| {
                own.or(socks.as_ref().map(|p| (p, "ProxyServer `socks=`")))
                    .or(bare.as_ref().map(|p| (p, "ProxyServer")))
                    .and_then(|(p, n)| one(p, n))
            };
            SystemProxy::Manual(Manual {
                http: pick(http.as_ref().map(|p| (p, "ProxyServer `http=`"))),
                https: pick(https.as_ref().map(|p| (p, "ProxyServer `https=`"))),
                other: pick(None),
                bypass,
                bypass_name: "ProxyOverride",
                reversed: false,
            })
        } else {
            SystemProxy::None
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

    fn manual(server: &str, bypass: &str) -> Manual {
        let s = SystemSettings::from_wininet(&WinInetSettings {
            proxy_enable: true,
            proxy_server: server.into(),
            proxy_override: bypass.into(),
            ..Default::default()
        })
        .unwrap();
        match s.proxy {
            SystemProxy::Manual(m) => m,
            other => panic!("{other:?}"),
        }
    }

    fn shown(slot: &Option<(ProxyList, &'static str)>) -> Option<String> {
        slot.as_ref().map(|(l, _)| l.to_string())
    }

    #[test]
    fn proxy_server_forms() {
        // The single form, with and without a scheme.
        for single in [
            "proxy.corp:3128",
            "http://proxy.corp:3128",
            " proxy.corp:3128 ",
        ] {
            let m = manual(single, "");
            for slot in [&m.http, &m.https, &m.other] {
                assert_eq!(
                    shown(slot).as_deref(),
                    Some("PROXY proxy.corp:3128"),
                    "{single}"
                );
            }
        }
        // The list form (hyper-util and reqwest read it as one host).
        let m = manual("http=a.corp:1;https=b.corp:2;socks=c.corp:3", "");
        assert_eq!(shown(&m.http).as_deref(), Some("PROXY a.corp:1"));
        assert_eq!(shown(&m.https).as_deref(), Some("PROXY b.corp:2"));
        assert_eq!(shown(&m.other).as_deref(), Some("SOCKS4 c.corp:3"));
        // Schemes written inside the list, a trailing `;`, white space.
        let m = manual("http=http://a.corp:1; https=https://b.corp:2;", "");
        assert_eq!(shown(&m.http).as_deref(), Some("PROXY a.corp:1"));
        assert_eq!(shown(&m.https).as_deref(), Some("HTTPS b.corp:2"));
        assert_eq!(shown(&m.other), None);
        // https alone: http targets go direct.
        let m = manual("https=b.corp:2", "");
        assert_eq!(shown(&m.http), None);
        assert_eq!(m.https.as_ref().unwrap().1, "ProxyServer `https=`");
        // socks covers the schemes the list leaves out; ftp= is ignored.
        let m = manual("ftp=f.corp:21;socks=socks5://c.corp:3", "");
        assert_eq!(shown(&m.http).as_deref(), Some("socks5://c.corp:3"));
        // A bad entry names itself.
        let err = SystemSettings::from_wininet(&WinInetSettings {
            proxy_enable: true,
            proxy_server: "http=a.corp:99999".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("`http=a.corp:99999`"), "{err}");
    }

    #[test]
    fn proxy_override_forms() {
        let m = manual("p:1", "<local>;*.corp;10.*;exact.example.com");
        let hit = |h: &str| m.bypass.matching(h, Some(80)).map(str::to_owned);
        assert_eq!(hit("intranet").as_deref(), Some("<local>"));
        assert_eq!(hit("a.corp").as_deref(), Some("*.corp"));
        assert_eq!(hit("10.0.0.1").as_deref(), Some("10.*"));
        assert_eq!(
            hit("exact.example.com").as_deref(),
            Some("exact.example.com")
        );
        assert_eq!(hit("sub.exact.example.com"), None);
        assert_eq!(hit("example.com"), None);
        assert!(hit("localhost").is_some());
        assert!(hit("127.0.0.1").is_some());
        assert!(hit("[::1]").is_some());
        let m = manual("p:1", "<-loopback>");
        assert_eq!(m.bypass.matching("127.0.0.1", Some(80)), None);
    }

    /// The forms users reported broken elsewhere, as they reported them.
    #[test]
    fn reported_forms() {
        // hyperium/hyper#4128 (hyper-util): Clash's "system proxy", whose
        // `127.*` IP wildcards and `<local>` hyper-util never matched, so
        // loopback dials went through the proxy.
        let clash = manual(
            "127.0.0.1:7890",
            "localhost;127.*;192.168.*;10.*;172.16.*;172.17.*;172.18.*;172.19.*;172.20.*;\
             172.21.*;172.22.*;172.23.*;172.24.*;172.25.*;172.26.*;172.27.*;172.28.*;\
             172.29.*;172.30.*;172.31.*;<local>",
        );
        let rule = |h: &str| clash.bypass.matching(h, Some(80)).map(str::to_owned);
        assert_eq!(rule("127.0.0.1").as_deref(), Some("127.*"));
        assert!(rule("[::1]").is_some());
        assert_eq!(rule("localhost").as_deref(), Some("localhost"));
        assert_eq!(rule("192.168.3.4").as_deref(), Some("192.168.*"));
        assert_eq!(rule("172.20.0.1").as_deref(), Some("172.20.*"));
        assert_eq!(rule("172.32.0.1"), None);
        // seanmonstar/reqwest#2873: the "local addresses" checkbox.
        assert_eq!(rule("intranet").as_deref(), Some("<local>"));
        assert_eq!(rule("example.com"), None);
        // seanmonstar/reqwest#1005 and #1080: Fiddler's list form, where
        // `https=` names an HTTP proxy that tunnels, not an https:// one.
        let fiddler = manual("http=127.0.0.1:8888;https=127.0.0.1:8888", "");
        assert_eq!(
            shown(&fiddler.https).as_deref(),
            Some("PROXY 127.0.0.1:8888")
        );
        assert_eq!(
            shown(&fiddler.http).as_deref(),
            Some("PROXY 127.0.0.1:8888")
        );
    }

    #[test]
    fn precedence() {
        let all = WinInetSettings {
            proxy_enable: true,
            proxy_server: "p:1".into(),
            auto_config_url: "http://wpad/proxy.pac".into(),
            auto_detect: true,
            ..Default::default()
        };
        assert!(matches!(
            SystemSettings::from_wininet(&all).unwrap().proxy,
            SystemProxy::Wpad { .. }
        ));
        let pac = WinInetSettings {
            auto_detect: false,
            ..all.clone()
        };
        assert_eq!(
            SystemSettings::from_wininet(&pac).unwrap().pac_url(),
            Some("http://wpad/proxy.pac")
        );
        let off = WinInetSettings {
            proxy_enable: true,
            proxy_server: "  ".into(),
            ..Default::default()
        };
        assert!(matches!(
            SystemSettings::from_wininet(&off).unwrap().proxy,
            SystemProxy::None
        ));
        let disabled = WinInetSettings {
            proxy_enable: false,
            proxy_server: "p:1".into(),
            ..Default::default()
        };
        assert!(matches!(
            SystemSettings::from_wininet(&disabled).unwrap().proxy,
            SystemProxy::None
        ));
    }
}

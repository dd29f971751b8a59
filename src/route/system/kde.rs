//! KDE: the `[Proxy Settings]` group of `kioslaverc`.

use std::path::PathBuf;

use super::bypass::{Bypass, Flavour};
use super::{settings_error, Manual, SystemProxy, SystemSettings};
use crate::error::Error;
use crate::route::{Hop, Proxy, ProxyList};

/// The file: `$XDG_CONFIG_HOME/kioslaverc`, else `~/.config/kioslaverc`.
pub(super) fn path(get: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let config = get("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("kioslaverc"))
}

/// The system-wide files, least important first: `kioslaverc` in each
/// directory of `$XDG_CONFIG_DIRS` (else `/etc/xdg`), which lists the most
/// important first.
fn system_paths(get: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let dirs = get("XDG_CONFIG_DIRS")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/etc/xdg".to_owned());
    dirs.split(':')
        .filter(|d| !d.is_empty())
        .rev()
        .map(|d| PathBuf::from(d).join("kioslaverc"))
        .collect()
}

/// Reads `kioslaverc` as KConfig cascades it: the system-wide files, then
/// the user's, a later key winning. No file at all is "no proxy", as in
/// KDE.
pub(super) fn read(get: &dyn Fn(&str) -> Option<String>) -> Result<SystemSettings, Error> {
    let mut text = String::new();
    for path in system_paths(get).into_iter().chain(path(get)) {
        match std::fs::read_to_string(&path) {
            Ok(file) => {
                text.push_str(&file);
                // Each file starts outside any group.
                text.push_str("\n[]\n");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(settings_error(format!(
                    "KDE kioslaverc: cannot read {}: {e}",
                    path.display()
                )))
            }
        }
    }
    SystemSettings::from_kioslaverc(&text, get)
}

/// The `[Proxy Settings]` entries: `key=value`, KConfig escapes undone,
/// `key[$e]` flags dropped; a later entry wins.
fn group(text: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            inside = line == "[Proxy Settings]";
            continue;
        }
        if !inside {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let key = key.split_once('[').map_or(key, |(k, _)| k).trim();
        out.retain(|(k, _)| k != key);
        out.push((key.to_owned(), unescape(value.trim())));
    }
    out
}

/// KConfig's escapes: `\s` (a space), `\t`, `\n`, `\r`, `\\`.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A proxy as KDE writes it: `http://host 8080` (KDE's own form, a space
/// before the port), `http://host:8080`, `host:8080`, `host 8080`; a
/// missing scheme is `default_scheme`.
pub(super) fn parse_proxy(value: &str, default_scheme: &str) -> Result<Option<Proxy>, Error> {
    let value = value.trim().trim_matches('"').trim();
    if value.is_empty() {
        return Ok(None);
    }
    let value = match value.rsplit_once(char::is_whitespace) {
        Some((head, port)) if port.trim().parse::<u16>().is_ok() => {
            format!("{}:{}", head.trim(), port.trim())
        }
        _ => value.to_owned(),
    };
    let url = if value.contains("://") {
        value
    } else {
        format!("{default_scheme}://{value}")
    };
    // KDE's SOCKS is SOCKS5 with the name resolved by the proxy.
    let url = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("socks") => format!("socks5h://{rest}"),
        _ => url,
    };
    Proxy::new(&url).map(Some)
}

impl SystemSettings {
    /// KDE's settings from the text of `kioslaverc`, group `[Proxy
    /// Settings]`; `env` reads environment variables (for `ProxyType=4`).
    /// A key given twice takes its last value, so the files of a KConfig
    /// cascade can be passed one after the other, the most important last
    /// ([`Proxies::from_system`](crate::Proxies::from_system) reads
    /// `$XDG_CONFIG_DIRS` (else `/etc/xdg`), then `$XDG_CONFIG_HOME` (else
    /// `~/.config`); KConfig's `[$i]` locks are not honoured).
    ///
    /// | `ProxyType` | route |
    /// |---|---|
    /// | `0`, missing | direct |
    /// | `1` (manual) | `http://` targets: `httpProxy`; `https://`: `httpsProxy`, else `httpProxy`; other schemes: `httpProxy`; then, for each, `socksProxy` when none is set (libproxy's order) |
    /// | `2` | the PAC script at `Proxy Config Script` (a path is a `file://` URL) |
    /// | `3` | WPAD |
    /// | `4` | as `1`, but each key names the environment variable that holds the proxy (`httpProxy=http_proxy`; a comma-separated list: the first set) |
    ///
    /// Proxies are read in KDE's forms: `http://host 8080` (a space before
    /// the port), `http://host:8080`, `host:8080`, `host 8080`; a SOCKS
    /// proxy is SOCKS5 with remote name resolution. `NoProxyFor` is a
    /// comma-separated list read as GNOME's `ignore-hosts` is (see
    /// [`SystemSettings::from_gsettings`]); with `ReversedException=true`
    /// only its hosts go through the proxy. It applies in modes `1` and
    /// `4`. `ftpProxy` is ignored.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::SystemSettings`](crate::ErrorKind::SystemSettings) for
    /// an unknown `ProxyType`, or a proxy that cannot be used.
    pub fn from_kioslaverc(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SystemSettings, Error> {
        let entries = group(text);
        let get = |key: &str| {
            entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let kind = get("ProxyType");
        let kind = kind.trim();
        let source = format!(
            "KDE kioslaverc, ProxyType {}",
            if kind.is_empty() { "0" } else { kind }
        );
        let bypass_of = |list: &str| Bypass::parse(list.split(','), Flavour::Domain);
        let proxy = match kind {
            "" | "0" => SystemProxy::None,
            "2" => {
                let script = get("Proxy Config Script");
                let script = script.trim();
                if script.is_empty() {
                    SystemProxy::Wpad {
                        bypass: Bypass::default(),
                    }
                } else if script.starts_with('/') {
                    SystemProxy::Pac {
                        url: format!("file://{script}"),
                        bypass: Bypass::default(),
                    }
                } else {
                    SystemProxy::Pac {
                        url: script.to_owned(),
                        bypass: Bypass::default(),
                    }
                }
            }
            "3" => SystemProxy::Wpad {
                bypass: Bypass::default(),
            },
            "1" | "4" => {
                let via_env = kind == "4";
                let value = |key: &str| -> String {
                    let v = get(key);
                    if !via_env {
                        return v;
                    }
                    v.split(',')
                        .map(|name| name.trim().trim_start_matches('$'))
                        .filter(|name| !name.is_empty())
                        .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))
                        .unwrap_or_default()
                };
                let read = |key: &'static str, scheme: &str| {
                    parse_proxy(&value(key), scheme)
                        .map_err(|e| settings_error(format!("{source}: {key} is not a proxy: {e}")))
                };
                let http = read("httpProxy", "http")?;
                let https = read("httpsProxy", "http")?;
                let socks = read("socksProxy", "socks5h")?;
                let one = |p: &Proxy, name: &'static str| {
                    ProxyList::new([Hop::from(p.clone())])
                        .ok()
                        .map(|l| (l, name))
                };
                let pick = |own: Option<(&Proxy, &'static str)>| {
                    own.or(http.as_ref().map(|p| (p, "httpProxy")))
                        .or(socks.as_ref().map(|p| (p, "socksProxy")))
                        .and_then(|(p, name)| one(p, name))
                };
                let reversed = matches!(
                    get("ReversedException")
                        .trim()
                        .to_ascii_lowercase()
                        .as_str(),
                    "true" | "1"
                );
                SystemProxy::Manual(Manual {
                    http: pick(None),
                    https: pick(https.as_ref().map(|p| (p, "httpsProxy"))),
                    other: pick(None),
                    bypass: bypass_of(&value("NoProxyFor")),
                    bypass_name: "NoProxyFor",
                    reversed,
                })
            }
            other => {
                return Err(settings_error(format!(
                    "KDE kioslaverc: unknown ProxyType `{other}`"
                )))
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

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn manual(s: &SystemSettings) -> &Manual {
        match &s.proxy {
            SystemProxy::Manual(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kde_proxy_forms() {
        for (text, want) in [
            ("http://proxy.corp 8080", "http://proxy.corp:8080"),
            ("http://proxy.corp:8080", "http://proxy.corp:8080"),
            ("proxy.corp:8080", "http://proxy.corp:8080"),
            ("proxy.corp 8080", "http://proxy.corp:8080"),
            ("\"http://proxy.corp 8080\"", "http://proxy.corp:8080"),
            ("socks://s.corp 1080", "socks5h://s.corp:1080"),
        ] {
            let p = parse_proxy(text, "http").unwrap().unwrap();
            assert_eq!(p.to_string(), want, "{text}");
        }
        assert!(parse_proxy("  ", "http").unwrap().is_none());
        assert!(parse_proxy("http://a b c", "http").is_err());
    }

    #[test]
    fn manual_with_fallbacks() {
        let text = "[General]\nProxyType=0\n\n[Proxy Settings]\nProxyType=1\nhttpProxy=http://hp.corp 3128\nhttpsProxy=\nsocksProxy=socks://sk.corp 1080\nNoProxyFor=localhost,127.0.0.0/8,.internal\nReversedException=false\n";
        let s = SystemSettings::from_kioslaverc(text, no_env).unwrap();
        assert_eq!(s.source(), "KDE kioslaverc, ProxyType 1");
        let m = manual(&s);
        assert_eq!(m.http.as_ref().unwrap().0.to_string(), "PROXY hp.corp:3128");
        assert_eq!(m.https.as_ref().unwrap().1, "httpProxy");
        assert_eq!(m.other.as_ref().unwrap().1, "httpProxy");
        assert!(!m.reversed);
        assert_eq!(
            m.bypass.entries().collect::<Vec<_>>(),
            ["localhost", "127.0.0.0/8", ".internal"]
        );
        let only_socks = "[Proxy Settings]\nProxyType=1\nsocksProxy=sk.corp 1080\n";
        let s = SystemSettings::from_kioslaverc(only_socks, no_env).unwrap();
        assert_eq!(
            manual(&s).https.as_ref().unwrap().0.to_string(),
            "SOCKS5 sk.corp:1080"
        );
    }

    #[test]
    fn other_types() {
        let s = SystemSettings::from_kioslaverc(
            "[Proxy Settings]\nProxyType=2\nProxy Config Script=http://wpad/x.pac\n",
            no_env,
        )
        .unwrap();
        assert_eq!(s.pac_url(), Some("http://wpad/x.pac"));
        let s = SystemSettings::from_kioslaverc(
            "[Proxy Settings]\nProxyType=2\nProxy Config Script=/etc/x.pac\n",
            no_env,
        )
        .unwrap();
        assert_eq!(s.pac_url(), Some("file:///etc/x.pac"));
        let s = SystemSettings::from_kioslaverc("[Proxy Settings]\nProxyType=3\n", no_env).unwrap();
        assert!(matches!(s.proxy, SystemProxy::Wpad { .. }));
        let s = SystemSettings::from_kioslaverc("", no_env).unwrap();
        assert!(matches!(s.proxy, SystemProxy::None));
        let err =
            SystemSettings::from_kioslaverc("[Proxy Settings]\nProxyType=9\n", no_env).unwrap_err();
        assert!(err.to_string().contains("ProxyType `9`"), "{err}");
    }

    #[test]
    fn env_var_names() {
        let text = "[Proxy Settings]\nProxyType=4\nhttpProxy=MY_PROXY,http_proxy\nhttpsProxy=https_proxy\nNoProxyFor=no_proxy\nReversedException=true\n";
        let env = |name: &str| match name {
            "http_proxy" => Some("http://e.corp:3128".to_owned()),
            "no_proxy" => Some("a.corp,b.corp".to_owned()),
            _ => None,
        };
        let s = SystemSettings::from_kioslaverc(text, env).unwrap();
        let m = manual(&s);
        assert_eq!(m.http.as_ref().unwrap().0.to_string(), "PROXY e.corp:3128");
        assert_eq!(m.bypass.entries().count(), 2);
        assert!(m.reversed);
    }

    #[test]
    fn the_cascade_reads_system_files_first() {
        let base = std::env::temp_dir().join(format!("tt-kde-cascade-{}", std::process::id()));
        let (system, user) = (base.join("xdg"), base.join("user"));
        std::fs::create_dir_all(&system).unwrap();
        std::fs::create_dir_all(&user).unwrap();
        std::fs::write(
            system.join("kioslaverc"),
            "[Proxy Settings]\nProxyType=1\nhttpProxy=http://corp-default 3128\nNoProxyFor=.corp\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "XDG_CONFIG_DIRS" => Some(format!("/nonexistent:{}", system.display())),
            "XDG_CONFIG_HOME" => Some(user.display().to_string()),
            _ => None,
        };
        let s = read(&env).unwrap();
        assert_eq!(
            manual(&s).http.as_ref().unwrap().0.to_string(),
            "PROXY corp-default:3128"
        );
        std::fs::write(
            user.join("kioslaverc"),
            "[Proxy Settings]\nhttpProxy=http://mine 8080\n",
        )
        .unwrap();
        let s = read(&env).unwrap();
        let m = manual(&s);
        assert_eq!(m.http.as_ref().unwrap().0.to_string(), "PROXY mine:8080");
        assert_eq!(m.bypass.entries().collect::<Vec<_>>(), [".corp"]);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn kconfig_escapes_and_flags() {
        assert_eq!(unescape("a\\sb\\\\c"), "a b\\c");
        let g = group("[Proxy Settings]\nhttpProxy[$e]=\\shttp://x 1\nhttpProxy=later\n");
        assert_eq!(g, [("httpProxy".to_owned(), "later".to_owned())]);
    }
}

//! GNOME: `org.gnome.system.proxy`, read through the `gsettings` command.
//!
//! Why the command and not a reader of our own: GSettings keeps its values
//! in a backend chosen at run time. The usual one, dconf, stores them in a
//! binary database (`~/.config/dconf/user`, a GVDB hash table) and takes
//! writes through a D-Bus service, so a pure-Rust reader would have to
//! parse GVDB, merge the system databases and locks in `/etc/dconf`, and
//! still miss a value that is being written; the keyfile backend
//! (`GSETTINGS_BACKEND=keyfile`, `~/.config/glib-2.0/settings/keyfile`) and
//! the memory backend are others. The schema's defaults live in compiled
//! `gschemas.compiled` files. `gsettings` (in `libglib2.0-bin`, present on
//! every GNOME desktop) knows the backend, the locks and the defaults, and
//! costs one process per read; reads happen once at construction and on
//! [`Proxies::refresh`](crate::Proxies::refresh), never per connection. No
//! GLib is linked.

use std::collections::HashMap;

use super::bypass::{Bypass, Flavour};
use super::{run, settings_error, Manual, SystemProxy, SystemSettings};
use crate::error::Error;
use crate::route::{Hop, Proxy, ProxyList};

/// The environment variables `gsettings` is given, from the caller's
/// environment getter (everything else is cleared).
const PASSED: &[&str] = &[
    "PATH",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_DATA_DIRS",
    "XDG_RUNTIME_DIR",
    "GSETTINGS_BACKEND",
    "GSETTINGS_SCHEMA_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
];

/// Runs `gsettings list-recursively org.gnome.system.proxy` in the
/// environment `get` describes, and parses its output.
pub(super) fn read(get: &dyn Fn(&str) -> Option<String>) -> Result<SystemSettings, Error> {
    let text = run_gsettings(get)?;
    SystemSettings::from_gsettings(&text)
}

fn run_gsettings(get: &dyn Fn(&str) -> Option<String>) -> Result<String, Error> {
    let envs: Vec<(&str, String)> = PASSED
        .iter()
        .filter_map(|name| get(name).map(|v| (*name, v)))
        .collect();
    run(
        "gsettings",
        &["list-recursively", "org.gnome.system.proxy"],
        &envs,
        "GNOME settings",
        "package libglib2.0-bin",
    )
}

/// A GVariant value in its text form, as `gsettings` prints it: only the
/// types `org.gnome.system.proxy` uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
}

impl Value {
    fn as_str(&self) -> &str {
        match self {
            Value::Str(s) => s,
            _ => "",
        }
    }
}

/// Parses one value: `'manual'`, `"it's"`, `3128`, `uint32 8080`, `true`,
/// `['a', 'b']`, `@as []`.
pub(super) fn parse_value(text: &str) -> Option<Value> {
    let mut text = text.trim();
    // Type annotations: `@as []`, `uint32 8080`, `int32 -1`.
    if let Some(rest) = text.strip_prefix('@') {
        text = rest.split_once(' ')?.1.trim();
    }
    for prefix in [
        "byte ", "int16 ", "uint16 ", "int32 ", "uint32 ", "int64 ", "uint64 ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.trim();
        }
    }
    match text {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    if text.starts_with('\'') || text.starts_with('"') {
        let (s, rest) = parse_string(text)?;
        return rest.trim().is_empty().then_some(Value::Str(s));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let mut items = Vec::new();
        let mut rest = inner.trim();
        // Each round consumes at least one string: bounded by the length.
        while !rest.is_empty() {
            let (s, after) = parse_string(rest)?;
            items.push(s);
            rest = after.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => break,
                None => return None,
            }
        }
        return Some(Value::List(items));
    }
    text.parse().ok().map(Value::Int)
}

/// A quoted GVariant string at the start of `text`, and what follows it.
fn parse_string(text: &str) -> Option<(String, &str)> {
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let mut out = String::new();
    let mut chars = text[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, escaped) = chars.next()?;
                out.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'u' => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                    }
                    other => other,
                });
            }
            c if c == quote => return Some((out, &text[1 + i + 1..])),
            c => out.push(c),
        }
    }
    None
}

impl SystemSettings {
    /// GNOME's settings from the output of `gsettings list-recursively
    /// org.gnome.system.proxy` (lines of `schema key value`, values in
    /// GVariant text form).
    ///
    /// | mode | route |
    /// |---|---|
    /// | `none` | direct |
    /// | `manual` | `http://` targets: `org.gnome.system.proxy.http` host and port, then the SOCKS proxy; `https://`: `.https`, then SOCKS; other schemes: SOCKS, else `.https` then direct. A proxy needs both a host and a port other than 0. `use-authentication`, `authentication-user` and `-password` (in `.http`) go to the HTTP and HTTPS proxies. |
    /// | `auto` | the PAC script at `autoconfig-url`, or WPAD when it is empty |
    ///
    /// `ignore-hosts` applies in `manual` and `auto` modes, read as GLib
    /// reads it: `example.com`, `.example.com` and `*.example.com` cover
    /// the domain and the names under it; IP addresses, CIDR ranges
    /// (`10.0.0.0/8`, `fe80::/10`), `host:port`, `[::1]:8443`, and
    /// `<local>` (a name without a dot).
    ///
    /// `use-same-proxy` is read and shown by
    /// [`SystemSettings::use_same_proxy`], but routes nothing: GNOME's
    /// settings panel copies the HTTP host into the other keys itself, and
    /// GLib and libproxy read each key on its own. The FTP proxy is
    /// ignored (this crate does not proxy FTP).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::SystemSettings`](crate::ErrorKind::SystemSettings) for
    /// an unknown mode, or a host that is not a valid proxy.
    pub fn from_gsettings(text: &str) -> Result<SystemSettings, Error> {
        let mut values: HashMap<String, Value> = HashMap::new();
        for line in text.lines() {
            let mut parts = line.trim().splitn(3, ' ');
            let (Some(schema), Some(key), Some(value)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if let Some(value) = parse_value(value) {
                values.insert(format!("{schema} {key}"), value);
            }
        }
        let get = |key: &str| values.get(&format!("org.gnome.system.{key}"));
        let str_of = |key: &str| get(key).map(Value::as_str).unwrap_or("").to_owned();
        let int_of = |key: &str| match get(key) {
            Some(Value::Int(n)) => *n,
            _ => 0,
        };
        let bool_of = |key: &str| matches!(get(key), Some(Value::Bool(true)));
        let mode = str_of("proxy mode");
        let use_same_proxy = bool_of("proxy use-same-proxy");
        let ignore: Vec<String> = match get("proxy ignore-hosts") {
            Some(Value::List(items)) => items.clone(),
            _ => Vec::new(),
        };
        let bypass = Bypass::parse(ignore.iter().map(String::as_str), Flavour::Domain);
        let source = format!("GNOME settings, mode {mode}");
        let proxy = match mode.as_str() {
            "none" | "" => SystemProxy::None,
            "auto" => match str_of("proxy autoconfig-url") {
                url if url.trim().is_empty() => SystemProxy::Wpad { bypass },
                url => SystemProxy::Pac { url, bypass },
            },
            "manual" => {
                let auth = bool_of("proxy.http use-authentication").then(|| {
                    (
                        str_of("proxy.http authentication-user"),
                        str_of("proxy.http authentication-password"),
                    )
                });
                let proxy = |schema: &str, scheme: &str| -> Result<Option<Proxy>, Error> {
                    let host = str_of(&format!("proxy.{schema} host"));
                    let port = int_of(&format!("proxy.{schema} port"));
                    if host.trim().is_empty() || port <= 0 || port > 65535 {
                        return Ok(None);
                    }
                    let host = host.trim();
                    let host = if host.contains(':') && !host.starts_with('[') {
                        format!("[{host}]")
                    } else {
                        host.to_owned()
                    };
                    let mut proxy =
                        Proxy::new(&format!("{scheme}://{host}:{port}")).map_err(|e| {
                            settings_error(format!(
                            "{source}: org.gnome.system.proxy.{schema} host is not a proxy: {e}"
                        ))
                        })?;
                    if let (Some((user, password)), "http") = (&auth, scheme) {
                        if !user.is_empty() {
                            proxy = proxy.with_basic_auth(user, password);
                        }
                    }
                    Ok(Some(proxy))
                };
                let http = proxy("http", "http")?;
                let https = proxy("https", "http")?;
                let socks = proxy("socks", "socks5h")?;
                let list = |first: Option<&Proxy>, name: &'static str| {
                    let hops: Vec<Hop> = first
                        .into_iter()
                        .chain(socks.as_ref())
                        .cloned()
                        .map(Hop::from)
                        .collect();
                    ProxyList::new(hops).ok().map(|list| (list, name))
                };
                let other = match &socks {
                    Some(s) => ProxyList::new([Hop::from(s.clone())])
                        .ok()
                        .map(|l| (l, "org.gnome.system.proxy.socks")),
                    None => https.as_ref().and_then(|s| {
                        ProxyList::new([Hop::from(s.clone()), Hop::Direct])
                            .ok()
                            .map(|l| (l, "org.gnome.system.proxy.https, then direct"))
                    }),
                };
                SystemProxy::Manual(Manual {
                    http: list(http.as_ref(), "org.gnome.system.proxy.http"),
                    https: list(https.as_ref(), "org.gnome.system.proxy.https"),
                    other,
                    bypass,
                    bypass_name: "ignore-hosts",
                    reversed: false,
                })
            }
            other => {
                return Err(settings_error(format!(
                    "GNOME settings: unknown mode `{other}` (org.gnome.system.proxy mode)"
                )))
            }
        };
        Ok(SystemSettings {
            source,
            proxy,
            use_same_proxy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gvariant_text() {
        assert_eq!(parse_value("'manual'"), Some(Value::Str("manual".into())));
        assert_eq!(parse_value("\"it's\""), Some(Value::Str("it's".into())));
        assert_eq!(parse_value("'a\\'b'"), Some(Value::Str("a'b".into())));
        assert_eq!(parse_value("3128"), Some(Value::Int(3128)));
        assert_eq!(parse_value("uint32 8080"), Some(Value::Int(8080)));
        assert_eq!(parse_value("true"), Some(Value::Bool(true)));
        assert_eq!(parse_value("@as []"), Some(Value::List(vec![])));
        assert_eq!(
            parse_value("['localhost', '127.0.0.0/8', '::1', '*.example.com']"),
            Some(Value::List(vec![
                "localhost".into(),
                "127.0.0.0/8".into(),
                "::1".into(),
                "*.example.com".into()
            ]))
        );
        assert_eq!(
            parse_value("['a,b', \"c'd\"]"),
            Some(Value::List(vec!["a,b".into(), "c'd".into()]))
        );
        assert_eq!(parse_value("['unterminated"), None);
        assert_eq!(parse_value("['a' 'b']"), None);
    }

    /// Real output of `gsettings list-recursively org.gnome.system.proxy`
    /// (GLib 2.74, gsettings-desktop-schemas 43), keyfile backend.
    const MANUAL: &str = "\
org.gnome.system.proxy autoconfig-url ''
org.gnome.system.proxy ignore-hosts ['localhost', '127.0.0.0/8', '*.example.com']
org.gnome.system.proxy mode 'manual'
org.gnome.system.proxy use-same-proxy true
org.gnome.system.proxy.ftp host ''
org.gnome.system.proxy.ftp port 0
org.gnome.system.proxy.http authentication-password 's3cret'
org.gnome.system.proxy.http authentication-user 'me'
org.gnome.system.proxy.http enabled false
org.gnome.system.proxy.http host 'hp.corp'
org.gnome.system.proxy.http port 3128
org.gnome.system.proxy.http use-authentication true
org.gnome.system.proxy.https host 'sp.corp'
org.gnome.system.proxy.https port 3129
org.gnome.system.proxy.socks host ''
org.gnome.system.proxy.socks port 0
";

    #[test]
    fn manual_mode() {
        let s = SystemSettings::from_gsettings(MANUAL).unwrap();
        assert_eq!(s.source(), "GNOME settings, mode manual");
        assert!(s.use_same_proxy());
        let SystemProxy::Manual(m) = &s.proxy else {
            panic!("{s:?}")
        };
        let (http, _) = m.http.as_ref().unwrap();
        assert_eq!(http.to_string(), "PROXY hp.corp:3128");
        assert!(http.hops()[0].proxy().unwrap().has_credentials());
        let (https, _) = m.https.as_ref().unwrap();
        // The HTTPS proxy gets them too (libproxy does the same).
        assert!(https.hops()[0].proxy().unwrap().has_credentials());
        assert_eq!(
            m.other.as_ref().unwrap().0.to_string(),
            "PROXY sp.corp:3129; DIRECT"
        );
        assert_eq!(m.bypass.entries().count(), 3);
        // No secret in Debug.
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn socks_follows_and_ports_matter() {
        let text = MANUAL
            .replace("socks host ''", "socks host 'sk.corp'")
            .replace("socks port 0", "socks port 1080")
            .replace("https port 3129", "https port 0");
        let s = SystemSettings::from_gsettings(&text).unwrap();
        let SystemProxy::Manual(m) = &s.proxy else {
            panic!()
        };
        assert_eq!(
            m.http.as_ref().unwrap().0.to_string(),
            "PROXY hp.corp:3128; SOCKS5 sk.corp:1080"
        );
        assert_eq!(
            m.https.as_ref().unwrap().0.to_string(),
            "SOCKS5 sk.corp:1080"
        );
        assert_eq!(
            m.other.as_ref().unwrap().0.to_string(),
            "SOCKS5 sk.corp:1080"
        );
    }

    #[test]
    fn auto_and_none_and_bad() {
        let auto = MANUAL.replace("'manual'", "'auto'");
        let s = SystemSettings::from_gsettings(&auto).unwrap();
        assert!(matches!(s.proxy, SystemProxy::Wpad { .. }));
        let pac = auto.replace(
            "autoconfig-url ''",
            "autoconfig-url 'http://wpad.corp/proxy.pac'",
        );
        let s = SystemSettings::from_gsettings(&pac).unwrap();
        assert_eq!(s.pac_url(), Some("http://wpad.corp/proxy.pac"));
        let none = MANUAL.replace("'manual'", "'none'");
        assert!(matches!(
            SystemSettings::from_gsettings(&none).unwrap().proxy,
            SystemProxy::None
        ));
        let bad = MANUAL.replace("'manual'", "'sometimes'");
        let err = SystemSettings::from_gsettings(&bad).unwrap_err();
        assert!(
            err.to_string().contains("unknown mode `sometimes`"),
            "{err}"
        );
        let bad_host = MANUAL.replace("'hp.corp'", "'hp corp/x'");
        assert!(SystemSettings::from_gsettings(&bad_host).is_err());
    }
}

//! The proxy rules from environment variables: as curl reads them, and as
//! gRPC core reads its own.

use std::sync::Arc;

use super::rules::Slot;
use super::{NoProxy, Proxies, Proxy, ProxyList};
use crate::error::Error;

impl Proxies {
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
                Some((name, value)) => parse(name, &value).map(Some),
            }
        };
        // A rule names the lowercase variable, whichever case was read.
        let slot = |names: &[&'static str]| -> Result<Option<Slot>, Error> {
            Ok(proxy(names)?.map(|p| Slot::new(p, names[0])))
        };
        Ok(Proxies {
            http: slot(&["http_proxy"])?,
            https: slot(&["https_proxy", "HTTPS_PROXY"])?,
            ws: slot(&["ws_proxy", "WS_PROXY"])?,
            wss: slot(&["wss_proxy", "WSS_PROXY"])?,
            all: proxy(&["all_proxy", "ALL_PROXY"])?.map(ProxyList::from),
            no_proxy: read(&["no_proxy", "NO_PROXY"])
                .map(|(_, v)| NoProxy::parse(&v))
                .unwrap_or_default(),
            ..Proxies::default()
        })
    }
}

impl Proxies {
    /// The rules from the process environment, as gRPC core reads them.
    ///
    /// One proxy for every `http://` and `https://` target (and `ws://`,
    /// `wss://`), from the first of these variables that is set:
    ///
    /// | order | proxy | bypass list |
    /// |---|---|---|
    /// | 1 | `grpc_proxy` | `no_grpc_proxy` |
    /// | 2 | `https_proxy` | `no_proxy` |
    /// | 3 | `http_proxy` | |
    ///
    /// A variable set to nothing (or white space) ends the search: set
    /// `grpc_proxy=` to send gRPC direct while `https_proxy` serves other
    /// tools, and `no_grpc_proxy=` to bypass nothing whatever `no_proxy`
    /// says. Only the variable chosen is read as a URL. The bypass list is
    /// read as [`NoProxy`] reads it. [`Rule::Scheme`](crate::Rule::Scheme)
    /// names the variable the proxy came from.
    ///
    /// This is gRPC core's order (C++, and the languages built on it:
    /// Python, Ruby, PHP, C#, Objective-C), checked in grpc/grpc,
    /// `src/core/handshaker/http_connect/http_proxy_mapper.cc`
    /// (`GetHttpProxyServer`, `HttpProxyMapper::MapName`) and
    /// `doc/core/default_http_proxy_mapper.md`. grpc-go reads
    /// `HTTPS_PROXY` and `NO_PROXY` through Go's `net/http` instead, and
    /// grpc-java the JVM's proxy settings.
    ///
    /// How it differs from [`Proxies::from_env`]:
    ///
    /// - One proxy whatever the target's scheme; `https_proxy` comes before
    ///   `http_proxy` even for `http://` targets (gRPC speaks plaintext
    ///   HTTP/2 through the same `CONNECT` tunnel as TLS), and no
    ///   `all_proxy`.
    /// - Lowercase names only, as gRPC core reads them: `GRPC_PROXY`,
    ///   `HTTPS_PROXY`, `NO_PROXY` and the like are not read.
    /// - A set but empty variable means "no proxy" (or "bypass nothing"),
    ///   where `from_env` reads on to the next one.
    ///
    /// How it differs from gRPC core, on purpose:
    ///
    /// - A proxy URL that cannot be used is an error naming the variable;
    ///   gRPC core logs it and connects direct.
    /// - `https://` and SOCKS proxies are accepted, as [`Proxy::new`]
    ///   accepts them; gRPC core takes `http://` only.
    /// - A proxy URL without a port gets 80 for `http://` (see
    ///   [`Proxy::new`]); gRPC core uses 443.
    /// - `example.com` in the bypass list covers its subdomains too, as in
    ///   curl; gRPC core (since grpc/grpc#41915) matches it exactly, and
    ///   covers subdomains only for `.example.com`. The [`NoProxy`]
    ///   extensions (ports, `*`) apply.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_tunnel::{Proxies, Rule};
    ///
    /// let env = |name: &str| match name {
    ///     "grpc_proxy" => Some("http://grpc-proxy.corp:3128".to_owned()),
    ///     "https_proxy" => Some("http://proxy.corp:3128".to_owned()),
    ///     "no_proxy" => Some(".internal.corp".to_owned()),
    ///     _ => None,
    /// };
    /// let proxies = Proxies::from_grpc_env_with(env)?;
    /// let decision = proxies.decide(&"http://api.example.com:50051".parse().unwrap())?;
    /// assert_eq!(decision.proxy().unwrap().to_string(), "http://grpc-proxy.corp:3128");
    /// assert_eq!(decision.rule(), &Rule::Scheme("grpc_proxy"));
    /// assert!(proxies.decide(&"https://db.internal.corp".parse().unwrap())?.proxy().is_none());
    /// # Ok::<(), tower_tunnel::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidProxy`](crate::ErrorKind::InvalidProxy) when the
    /// chosen variable holds a URL that is not a proxy; the message names
    /// the variable, never its value. A bad proxy never falls back to a
    /// direct connection.
    pub fn from_grpc_env() -> Result<Self, Error> {
        Self::from_grpc_env_with(|name| std::env::var(name).ok())
    }

    /// The rules from an environment of your own, as gRPC core reads
    /// them: `get` returns a variable's value, `None` when it is unset
    /// (`Some("")` when it is set to nothing). See
    /// [`Proxies::from_grpc_env`].
    ///
    /// # Errors
    ///
    /// As [`Proxies::from_grpc_env`].
    pub fn from_grpc_env_with(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        // The first variable set, even to nothing, decides.
        let first = |names: &[&'static str]| {
            names
                .iter()
                .find_map(|name| get(name).map(|value| (*name, value)))
        };
        let mut proxies = Proxies::default();
        if let Some((name, value)) = first(&["grpc_proxy", "https_proxy", "http_proxy"]) {
            if !value.trim().is_empty() {
                let proxy = parse(name, &value)?;
                proxies.http = Some(Slot::new(proxy.clone(), name));
                proxies.https = Some(Slot::new(proxy, name));
            }
        }
        if let Some((_, value)) = first(&["no_grpc_proxy", "no_proxy"]) {
            proxies.no_proxy = NoProxy::parse(&value);
        }
        Ok(proxies)
    }
}

/// The proxy in variable `name`; an error names the variable, never the
/// value.
fn parse(name: &str, value: &str) -> Result<Arc<Proxy>, Error> {
    Proxy::new(value)
        .map(Arc::new)
        .map_err(|e| e.with_detail_prefix(name))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::error::ErrorKind;
    use crate::route::Rule;

    fn grpc(vars: &[(&str, &str)]) -> Result<Proxies, Error> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Proxies::from_grpc_env_with(|name| env.get(name).cloned())
    }

    /// The proxy shown and the rule, for `uri`.
    fn route(proxies: &Proxies, uri: &str) -> (Option<String>, Rule) {
        let d = proxies.decide(&uri.parse().unwrap()).unwrap();
        (d.proxy().map(ToString::to_string), d.rule().clone())
    }

    const G: &str = "http://g:1";
    const S: &str = "http://s:1";
    const H: &str = "http://h:1";

    #[test]
    fn grpc_proxy_then_https_proxy_then_http_proxy() {
        let all = [("grpc_proxy", G), ("https_proxy", S), ("http_proxy", H)];
        for (vars, want, var) in [
            (&all[..], G, "grpc_proxy"),
            (&all[1..], S, "https_proxy"),
            (&all[2..], H, "http_proxy"),
        ] {
            let proxies = grpc(vars).unwrap();
            // One proxy, whatever the target's scheme.
            for uri in ["http://api:50051", "https://api", "ws://api", "wss://api"] {
                assert_eq!(
                    route(&proxies, uri),
                    (Some(want.to_owned()), Rule::Scheme(var)),
                    "{vars:?} {uri}"
                );
            }
            // No all_proxy: other schemes go direct.
            assert_eq!(route(&proxies, "ftp://api/"), (None, Rule::NoMatch));
        }
    }

    #[test]
    fn grpc_reads_lowercase_only() {
        for var in [
            "GRPC_PROXY",
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            let proxies = grpc(&[(var, G)]).unwrap();
            assert!(proxies.is_empty(), "{var}");
        }
        let proxies = grpc(&[("grpc_proxy", G), ("NO_PROXY", "*")]).unwrap();
        assert!(route(&proxies, "https://api").0.is_some());
    }

    #[test]
    fn an_empty_variable_ends_the_search() {
        for blank in ["", "  "] {
            let proxies = grpc(&[("grpc_proxy", blank), ("https_proxy", S)]).unwrap();
            assert_eq!(
                route(&proxies, "https://api"),
                (None, Rule::NoProxyConfigured)
            );
            let proxies = grpc(&[("https_proxy", blank), ("http_proxy", H)]).unwrap();
            assert!(proxies.is_empty());
        }
        // from_env reads on past an empty variable.
        let env = |name: &str| match name {
            "https_proxy" => Some(String::new()),
            "HTTPS_PROXY" => Some(S.to_owned()),
            _ => None,
        };
        assert!(!Proxies::from_env_with(env).unwrap().is_empty());
    }

    #[test]
    fn no_grpc_proxy_then_no_proxy() {
        let proxies = grpc(&[
            ("grpc_proxy", G),
            ("no_grpc_proxy", "a.corp"),
            ("no_proxy", "b.corp"),
        ])
        .unwrap();
        assert_eq!(
            route(&proxies, "https://x.a.corp"),
            (None, Rule::NoProxy("a.corp".into()))
        );
        assert!(route(&proxies, "https://b.corp").0.is_some());

        let proxies = grpc(&[("grpc_proxy", G), ("no_proxy", "b.corp")]).unwrap();
        assert!(route(&proxies, "https://b.corp").0.is_none());

        // Set to nothing: bypass nothing, whatever no_proxy says.
        let proxies = grpc(&[("grpc_proxy", G), ("no_grpc_proxy", ""), ("no_proxy", "*")]).unwrap();
        assert!(route(&proxies, "https://b.corp").0.is_some());
    }

    #[test]
    fn only_the_chosen_variable_is_parsed() {
        let bad = "ftp://u:s3cret@p:1";
        let proxies = grpc(&[("grpc_proxy", G), ("https_proxy", bad), ("http_proxy", bad)]);
        assert!(proxies.is_ok());
        for var in ["grpc_proxy", "https_proxy", "http_proxy"] {
            let err = grpc(&[(var, bad)]).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert_eq!(err.kind(), ErrorKind::InvalidProxy);
            assert!(shown.contains(var) && !shown.contains("s3cret"), "{shown}");
        }
        let err = grpc(&[("grpc_proxy", "http://[56FE::2159:5BBC::6594]:3128")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid proxy URL: grpc_proxy: invalid IPv6 address"
        );
    }
}

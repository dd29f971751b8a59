//! The proxy rules from environment variables, as curl reads them.

use std::sync::Arc;

use super::rules::Slot;
use super::{NoProxy, Proxies, Proxy};
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
            all: proxy(&["all_proxy", "ALL_PROXY"])?,
            no_proxy: read(&["no_proxy", "NO_PROXY"])
                .map(|(_, v)| NoProxy::parse(&v))
                .unwrap_or_default(),
            ..Proxies::default()
        })
    }
}

/// The proxy in variable `name`; an error names the variable, never the
/// value.
fn parse(name: &str, value: &str) -> Result<Arc<Proxy>, Error> {
    Proxy::new(value)
        .map(Arc::new)
        .map_err(|e| e.with_detail_prefix(name))
}

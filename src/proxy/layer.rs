use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::{Config, Proxies, Proxy, ProxyConnect};
use crate::error::Error;

/// Routes each connection to its target: straight there, or through an
/// HTTP `CONNECT` tunnel.
///
/// Place it directly above the base connector and below
/// [`TlsLayer`](crate::TlsLayer). See the [module docs](crate::proxy).
#[derive(Clone, Debug)]
pub struct ProxyConnectLayer {
    config: Arc<Config>,
}

impl ProxyConnectLayer {
    /// Routes every connection through `proxy`: a `CONNECT` tunnel for
    /// `https://` targets, forwarding for `http://` targets (unless
    /// [`Proxy::with_http_tunneling`]), or SOCKS.
    pub fn new(proxy: Proxy) -> Self {
        Self::from_proxies(Proxies::from(proxy))
    }

    /// Connects every target directly, with no proxy.
    pub fn direct() -> Self {
        Self::from_proxies(Proxies::new())
    }

    /// Routes by the environment, as curl does: `http_proxy`,
    /// `https_proxy`, `all_proxy`, `no_proxy`; see [`Proxies::from_env`].
    ///
    /// # Errors
    ///
    /// When a variable holds an invalid proxy URL; never a silent direct
    /// connection.
    pub fn from_env() -> Result<Self, Error> {
        Proxies::from_env().map(Self::from_proxies)
    }

    /// Routes each target by `proxies`.
    pub fn from_proxies(proxies: Proxies) -> Self {
        ProxyConnectLayer {
            config: Arc::new(Config {
                proxies,
                dial_timeout: Some(super::DEFAULT_TIMEOUT),
                connect_timeout: Some(super::DEFAULT_TIMEOUT),
                max_response_bytes: super::DEFAULT_MAX_RESPONSE_BYTES,
            }),
        }
    }

    /// The rules this layer routes by.
    pub fn proxies(&self) -> &Proxies {
        &self.config.proxies
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Limits the base connector's dial to the first hop (default 30 s;
    /// `None` waits for ever).
    pub fn with_dial_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config_mut().dial_timeout = timeout;
        self
    }

    /// Limits the whole `CONNECT` exchange, from sending the request to the
    /// end of the answer (default 30 s; `None` waits for ever). One deadline
    /// for the phase, not one per read: a proxy that drips its answer a
    /// byte at a time fails on time.
    pub fn with_connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config_mut().connect_timeout = timeout;
        self
    }

    /// Caps the bytes of the proxy's answer head, interim responses
    /// included (default 16 KiB). Reading stops at the cap.
    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.config_mut().max_response_bytes = max.max(64);
        self
    }
}

impl<S> Layer<S> for ProxyConnectLayer {
    type Service = ProxyConnect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProxyConnect::new(inner, self.config.clone())
    }
}

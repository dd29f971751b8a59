use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::{Config, Proxy, ProxyConnect, RouteChoice};

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
    /// Tunnels every connection through `proxy`.
    pub fn new(proxy: Proxy) -> Self {
        Self::with_route(RouteChoice::Proxy(Box::new(proxy)))
    }

    /// Connects every target directly, with no proxy.
    pub fn direct() -> Self {
        Self::with_route(RouteChoice::Direct)
    }

    fn with_route(route: RouteChoice) -> Self {
        ProxyConnectLayer {
            config: Arc::new(Config {
                route,
                dial_timeout: Some(super::DEFAULT_TIMEOUT),
                connect_timeout: Some(super::DEFAULT_TIMEOUT),
                max_response_bytes: super::DEFAULT_MAX_RESPONSE_BYTES,
            }),
        }
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

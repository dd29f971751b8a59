use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tower_layer::Layer;

use super::pool::Pool;
use super::proxy_tls::ProxyTlsConfig;
use super::{Config, ProxyConnect};
use crate::error::Error;
use crate::route::{Proxies, Proxy};
use crate::timeout::DEFAULT_TIMEOUT;

/// The bytes of proxy answer head read at most, unless configured.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Routes each connection to its target: straight there, through an HTTP
/// `CONNECT` tunnel (inside TLS to an `https://` proxy, over HTTP/2 where
/// the proxy speaks it), forwarded, or through SOCKS.
///
/// Place it directly above the base connector and below
/// [`TlsLayer`](crate::TlsLayer). Clones share their configuration and the
/// HTTP/2 connections to proxies. See the [module docs](crate::proxy).
#[derive(Clone, Debug)]
pub struct ProxyConnectLayer {
    config: Arc<Config>,
    pool: Pool,
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

    /// Routes by the system's proxy settings: the environment first, then
    /// the desktop's settings (GNOME, KDE, Windows, macOS), then none; see
    /// [`Proxies::from_system`]. Call [`Proxies::refresh`] on
    /// [`proxies`](Self::proxies) to read them again.
    ///
    /// # Errors
    ///
    /// As [`Proxies::from_system`]: a bad proxy variable, settings that
    /// cannot be read, or settings that need PAC support.
    pub fn from_system() -> Result<Self, Error> {
        Proxies::from_system().map(Self::from_proxies)
    }

    /// Routes each target by `proxies`.
    pub fn from_proxies(proxies: Proxies) -> Self {
        ProxyConnectLayer {
            config: Arc::new(Config {
                proxies,
                dial_timeout: Some(DEFAULT_TIMEOUT),
                proxy_tls_timeout: Some(DEFAULT_TIMEOUT),
                connect_timeout: Some(DEFAULT_TIMEOUT),
                max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
                nodelay: true,
                proxy_tls: None,
                h2_keep_alive: None,
            }),
            pool: Pool::default(),
        }
    }

    /// The rules this layer routes by.
    pub fn proxies(&self) -> &Proxies {
        &self.config.proxies
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// TLS to `https://` proxies with `config`: its roots check the
    /// proxy's certificate (they may differ from the target's), and its
    /// session store lets handshakes to a proxy resume.
    ///
    /// The layer sets the ALPN offer itself, per proxy: `h2` and `http/1.1`
    /// where `CONNECT` may go over HTTP/2 ([`Http2Mode`](crate::Http2Mode)
    /// `Auto` or `Required`), `http/1.1` alone where it must not (`Never`).
    /// What the target is offered inside the tunnel is
    /// [`TlsLayer`](crate::TlsLayer)'s business.
    ///
    /// Without it, a route through an `https://` proxy fails before any
    /// dial, with [`ErrorKind::ProxyTlsNotConfigured`](crate::ErrorKind::ProxyTlsNotConfigured).
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use hyper_util::client::legacy::connect::HttpConnector;
    /// use tower::ServiceBuilder;
    /// use tower_tunnel::{AlpnDispatchLayer, Proxy, ProxyConnectLayer, TlsLayer};
    ///
    /// # fn doc(target_roots: Arc<rustls::ClientConfig>, proxy_roots: Arc<rustls::ClientConfig>) -> Result<(), tower_tunnel::Error> {
    /// let connect = ServiceBuilder::new()
    ///     .layer(AlpnDispatchLayer::<http_body_util::Empty<bytes::Bytes>>::new())
    ///     .layer(TlsLayer::new(target_roots))
    ///     .layer(ProxyConnectLayer::new(Proxy::new("https://proxy.corp:443")?).with_proxy_tls(proxy_roots))
    ///     .service(HttpConnector::new());
    /// # let _ = connect; Ok(()) }
    /// ```
    pub fn with_proxy_tls(mut self, config: Arc<ClientConfig>) -> Self {
        self.config_mut().proxy_tls = Some(ProxyTlsConfig::new(config));
        self
    }

    /// Limits the base connector's dial to the first hop (default 30 s;
    /// `None` waits for ever).
    pub fn with_dial_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config_mut().dial_timeout = timeout;
        self
    }

    /// Limits the TLS handshake with an `https://` proxy (default 30 s;
    /// `None` waits for ever).
    pub fn with_proxy_tls_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config_mut().proxy_tls_timeout = timeout;
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

    /// Whether to turn Nagle's algorithm off on the base connector's stream
    /// after each dial, through [`Transport::set_nodelay`](crate::Transport::set_nodelay)
    /// (default `true`, as curl and reqwest do).
    ///
    /// With Nagle on, a handshake that sends two small messages back to
    /// back (a TLS flight and a `CONNECT`, a SOCKS greeting and its
    /// request) waits for the peer's delayed ACK: about 40 ms per fresh
    /// connection on Linux. Turn it off only for a transport that sets it
    /// itself.
    pub fn with_nodelay(mut self, nodelay: bool) -> Self {
        self.config_mut().nodelay = nodelay;
        self
    }

    /// Sends a `PING` on each HTTP/2 proxy connection every `interval`
    /// (default `None`: never), and closes a connection whose proxy has not
    /// answered one within another `interval`.
    ///
    /// A proxy connection can die without a FIN or RST ever coming: a NAT
    /// or firewall forgets it, the proxy's host goes away. Without
    /// keep-alive, the tunnels open on it wait on their reads for as long as
    /// their own protocol lets them, and the pool finds out only when a
    /// `CONNECT` sent there reaches the connect timeout. With it, the
    /// connection is closed within two intervals: the tunnels on it fail
    /// with a typed error naming the proxy, and the next tunnel opens a
    /// fresh connection. The `PING`s also keep a NAT's mapping alive while
    /// the connection is idle. HTTP/1.1 tunnels are the base connector's
    /// sockets: use its TCP keep-alive (`HttpConnector::set_keepalive`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_tunnel::{Proxy, ProxyConnectLayer};
    ///
    /// # fn main() -> Result<(), tower_tunnel::Error> {
    /// let layer = ProxyConnectLayer::new(Proxy::new("https://proxy.corp:443")?)
    ///     .with_h2_keep_alive(Some(Duration::from_secs(20)));
    /// # let _ = layer; Ok(()) }
    /// ```
    pub fn with_h2_keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.config_mut().h2_keep_alive = interval;
        self
    }
}

impl<S> Layer<S> for ProxyConnectLayer {
    type Service = ProxyConnect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProxyConnect::new(inner, self.config.clone(), self.pool.clone())
    }
}

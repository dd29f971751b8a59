use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tower_layer::Layer;

use super::{TlsConnect, H2, HTTP11};

/// rustls to the target over the route; see the [module docs](crate::tls).
///
/// The layer's ALPN setting replaces the config's `alpn_protocols`; the
/// config is cloned once, here, and then shared by every connection.
#[derive(Clone, Debug)]
pub struct TlsLayer {
    config: Arc<ClientConfig>,
    // `config` offering `http/1.1` alone, for `wss://` targets.
    websocket: Arc<ClientConfig>,
    handshake_timeout: Option<Duration>,
}

impl TlsLayer {
    /// TLS with `config`, offering ALPN `h2` then `http/1.1`.
    pub fn new(config: Arc<ClientConfig>) -> Self {
        TlsLayer {
            websocket: config.clone(),
            config,
            handshake_timeout: Some(crate::timeout::DEFAULT_TIMEOUT),
        }
        .with_alpn_protocols(vec![H2.to_vec(), HTTP11.to_vec()])
    }

    /// Offers ALPN `http/1.1` only.
    pub fn with_http1_only(self) -> Self {
        self.with_alpn_protocols(vec![HTTP11.to_vec()])
    }

    /// Offers ALPN `h2` only; a target that does not select it fails with
    /// [`ErrorKind::AlpnMismatch`](crate::ErrorKind::AlpnMismatch).
    pub fn with_http2_only(self) -> Self {
        self.with_alpn_protocols(vec![H2.to_vec()])
    }

    /// Offers these ALPN protocols, in order of preference. `wss://`
    /// targets are offered `http/1.1` alone, whatever this says.
    pub fn with_alpn_protocols(mut self, protocols: Vec<Vec<u8>>) -> Self {
        Arc::make_mut(&mut self.config).alpn_protocols = protocols;
        // A clone shares the session store, so a `wss://` connection
        // resumes a session of an `https://` one to the same host.
        let mut websocket = self.config.clone();
        Arc::make_mut(&mut websocket).alpn_protocols = vec![HTTP11.to_vec()];
        self.websocket = websocket;
        self
    }

    /// Limits the TLS handshake (default 30 s; `None` waits for ever).
    pub fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The config every connection uses.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

impl<S> Layer<S> for TlsLayer {
    type Service = TlsConnect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TlsConnect::new(
            inner,
            self.config.clone(),
            self.websocket.clone(),
            self.handshake_timeout,
        )
    }
}

use std::sync::Arc;

use tower_layer::Layer;

use super::service::{DigestCache, ForwardProxy};
use crate::proxy::ProxyConnectLayer;
use crate::route::Proxies;

/// Puts the proxy's headers on requests forwarded to an HTTP proxy; see
/// the [module docs](crate::forward).
///
/// Clones share the Digest challenges they have seen.
#[derive(Clone, Debug)]
pub struct ForwardProxyLayer {
    proxies: Arc<Proxies>,
    digest: DigestCache,
}

impl ForwardProxyLayer {
    /// Routes by `proxies`, which should be the rules of the
    /// [`ProxyConnectLayer`] below the client.
    pub fn new(proxies: Proxies) -> Self {
        ForwardProxyLayer {
            proxies: Arc::new(proxies),
            digest: DigestCache::default(),
        }
    }
}

impl From<&ProxyConnectLayer> for ForwardProxyLayer {
    /// The rules `layer` routes by.
    fn from(layer: &ProxyConnectLayer) -> Self {
        ForwardProxyLayer::new(layer.proxies().clone())
    }
}

impl<S> Layer<S> for ForwardProxyLayer {
    type Service = ForwardProxy<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ForwardProxy::new(inner, self.proxies.clone(), self.digest.clone())
    }
}

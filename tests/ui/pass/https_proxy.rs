// TLS to an https:// proxy is part of the route: a config handed to
// ProxyConnectLayer, not a layer of its own. TLS to the target sits above.
use std::sync::Arc;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder};
use tower_tunnel::{AlpnDispatchLayer, Proxy, ProxyConnectLayer, TlsLayer};

fn connector(
    target_roots: Arc<rustls::ClientConfig>,
    proxy_roots: Arc<rustls::ClientConfig>,
    proxy: Proxy,
) -> impl Service<Uri> {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<http_body_util::Empty<bytes::Bytes>>::new())
        .layer(TlsLayer::new(target_roots))
        .layer(ProxyConnectLayer::new(proxy).with_proxy_tls(proxy_roots))
        .service(HttpConnector::new())
}

fn main() {
    let _ = connector;
}

// TLS to an https:// proxy below the route, TLS to the target above it.
use std::sync::Arc;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder};
use tower_tunnel::{AlpnDispatchLayer, Proxy, ProxyConnectLayer, ProxyTlsLayer, TlsLayer};

fn connector(
    target_roots: Arc<rustls::ClientConfig>,
    proxy_roots: Arc<rustls::ClientConfig>,
    proxy: Proxy,
) -> impl Service<Uri> {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<http_body_util::Empty<bytes::Bytes>>::new())
        .layer(TlsLayer::new(target_roots))
        .layer(ProxyConnectLayer::new(proxy))
        .layer(ProxyTlsLayer::new(proxy_roots))
        .service(HttpConnector::new())
}

fn main() {
    let _ = connector;
}

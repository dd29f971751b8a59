// ProxyTlsLayer (TLS to the proxy) put where TlsLayer (TLS to the target)
// belongs: above ProxyConnectLayer.
use std::sync::Arc;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder};
use tower_tunnel::{AlpnDispatchLayer, Proxy, ProxyConnectLayer, ProxyTlsLayer};

fn connector(tls: Arc<rustls::ClientConfig>, proxy: Proxy) -> impl Service<Uri> {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<http_body_util::Empty<bytes::Bytes>>::new())
        .layer(ProxyTlsLayer::new(tls))
        .layer(ProxyConnectLayer::new(proxy))
        .service(HttpConnector::new())
}

fn main() {
    let _ = connector;
}

// TlsLayer (TLS to the target) put where ProxyTlsLayer (TLS to an https://
// proxy) belongs: below ProxyConnectLayer.
use std::sync::Arc;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder};
use tower_tunnel::{AlpnDispatchLayer, Proxy, ProxyConnectLayer, TlsLayer};

fn connector(tls: Arc<rustls::ClientConfig>, proxy: Proxy) -> impl Service<Uri> {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<http_body_util::Empty<bytes::Bytes>>::new())
        .layer(TlsLayer::new(tls.clone()))
        .layer(ProxyConnectLayer::new(proxy))
        .layer(TlsLayer::new(tls))
        .service(HttpConnector::new())
}

fn main() {
    let _ = connector;
}

// The proxy layer above TLS: it would tunnel over an already-encrypted stream.
use std::sync::Arc;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder};
use tower_tunnel::{Proxy, ProxyConnectLayer, TlsLayer};

fn connector(tls: Arc<rustls::ClientConfig>, proxy: Proxy) -> impl Service<Uri> {
    let _ = (&tls, &proxy);
    ServiceBuilder::new()
        .layer(ProxyConnectLayer::new(proxy))
        .layer(TlsLayer::new(tls))
        .service(HttpConnector::new())
}

fn main() {
    let _ = connector;
}

// AlpnDispatch directly on the proxy layer: no TLS, no ALPN.
use std::sync::Arc;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder};
use tower_tunnel::{AlpnDispatchLayer, Proxy, ProxyConnectLayer};

fn connector(tls: Arc<rustls::ClientConfig>, proxy: Proxy) -> impl Service<Uri> {
    let _ = (&tls, &proxy);
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<http_body_util::Empty<bytes::Bytes>>::new())
        .layer(ProxyConnectLayer::new(proxy))
        .service(HttpConnector::new())
}

fn main() {
    let _ = connector;
}

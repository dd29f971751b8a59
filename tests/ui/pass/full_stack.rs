// The order the crate wants, as the README shows it, used three ways.
use std::sync::Arc;

use bytes::Bytes;
use http::Uri;
use http_body_util::Empty;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder};
use tower_tunnel::{AlpnDispatchLayer, HttpConnection, Proxy, ProxyConnectLayer, TlsLayer};

fn connector(
    tls: Arc<rustls::ClientConfig>,
    proxy: Proxy,
) -> impl Service<Uri, Response = HttpConnection<Empty<Bytes>>, Error = tower_tunnel::Error> {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(tls))
        .layer(ProxyConnectLayer::new(proxy))
        .service(HttpConnector::new())
}

fn direct(tls: Arc<rustls::ClientConfig>) -> impl Service<Uri> {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Empty<Bytes>>::new())
        .layer(TlsLayer::new(tls))
        .layer(ProxyConnectLayer::direct())
        .service(HttpConnector::new())
}

fn pooled(tls: Arc<rustls::ClientConfig>, proxy: Proxy) -> Client<impl Clone, Empty<Bytes>> {
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(tls))
        .layer(ProxyConnectLayer::new(proxy))
        .service(HttpConnector::new());
    Client::builder(TokioExecutor::new()).build(connect)
}

fn main() {
    let _ = (connector, direct, pooled);
}

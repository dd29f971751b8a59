// hyper-util's Client given a TLS stack with no proxy layer.
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tower::ServiceBuilder;
use tower_tunnel::TlsLayer;

fn build(tls: Arc<rustls::ClientConfig>) {
    let connect = ServiceBuilder::new()
        .layer(TlsLayer::new(tls))
        .service(HttpConnector::new());
    let _client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connect);
}

fn main() {
    let _ = build;
}

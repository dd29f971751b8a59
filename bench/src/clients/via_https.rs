//! This crate's stack through the https:// proxy.

use std::sync::Arc;

use http::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::{
    AlpnDispatch, AlpnDispatchLayer, HttpConnection, Proxy, ProxyConnect, ProxyConnectLayer,
    ProxyTls, ProxyTlsLayer, TlsConnect, TlsLayer,
};

use super::{Target, ViaRoute};
use crate::fixtures::Env;
use crate::tls::{client_config, Proto};
use crate::util::{drain, Body, Result};

type ViaHttpsStack = AlpnDispatch<TlsConnect<ProxyConnect<ProxyTls<HttpConnector>>>, Body>;

/// This crate's stack through the `https://` `TestH2Proxy`: `ProxyTlsLayer` below
/// `ProxyConnectLayer`. With `Http2Mode::Required` every tunnel is a CONNECT stream on one
/// pooled HTTP/2 connection to the proxy; with `Http2Mode::Never` every tunnel dials the
/// proxy afresh (TCP + TLS offering http/1.1 only) and sends an HTTP/1.1 CONNECT.
pub struct ViaHttps {
    stack: ViaHttpsStack,
    /// A tunnel kept open so that the pooled HTTP/2 proxy connection stays.
    keep: Option<HttpConnection<Body>>,
}

impl ViaHttps {
    pub fn new(env: &Env, route: ViaRoute, proto: Proto) -> Result<ViaHttps> {
        let tls = TlsLayer::new(Arc::new(client_config(&env.ca_pem, Vec::new())?));
        let tls = match proto {
            Proto::H2 => tls,
            Proto::H1 => tls.with_http1_only(),
        };
        let proxy = Proxy::new(&env.h2_proxy_url)?.with_http2(route.mode());
        // Its own configuration (and session cache) for the proxy hop; ProxyTlsLayer sets
        // the proxy's ALPN itself.
        let proxy_tls = ProxyTlsLayer::new(Arc::new(client_config(&env.ca_pem, Vec::new())?));
        let stack = ServiceBuilder::new()
            .layer(AlpnDispatchLayer::new())
            .layer(tls)
            .layer(ProxyConnectLayer::new(proxy))
            .layer(proxy_tls)
            .service({
                // TCP_NODELAY to the proxy: without it the TLS-in-TLS writes meet Nagle and
                // the proxy's delayed ACK, about 40 ms per fresh HTTP/1.1 tunnel (measured
                // 45 ms vs 1.7 ms) and about 1 ms per h2 tunnel. See BENCHMARKS.md.
                let mut http = HttpConnector::new();
                http.set_nodelay(true);
                http
            });
        Ok(ViaHttps { stack, keep: None })
    }

    pub async fn connect(&mut self, url: &Uri) -> Result<HttpConnection<Body>> {
        Ok(self.stack.ready().await?.call(url.clone()).await?)
    }

    /// Opens one tunnel, does a GET on it and keeps it, so the proxy connection exists
    /// (and, over HTTP/2, stays pooled) before anything is measured.
    pub async fn warm(&mut self, t: &Target) -> Result<()> {
        let mut conn = self.connect(&t.url).await?;
        let res = conn
            .send_request(Request::get("/bytes/1024").body(Body::new())?)
            .await?;
        drain(res.into_body()).await?;
        self.keep = Some(conn);
        Ok(())
    }
}

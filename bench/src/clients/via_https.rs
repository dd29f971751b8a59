//! This crate's stack through the https:// proxy.

use std::sync::Arc;

use http::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_tunnel::{
    AlpnDispatch, AlpnDispatchLayer, HttpConnection, Proxy, ProxyConnect, ProxyConnectLayer,
    TlsConnect, TlsLayer,
};

use super::{Target, ViaRoute};
use crate::fixtures::Env;
use crate::tls::{client_config, Proto};
use crate::util::{drain, Body, Result};

type ViaHttpsStack = AlpnDispatch<TlsConnect<ProxyConnect<HttpConnector>>, Body>;

/// This crate's stack through the `https://` proxy: `ProxyConnectLayer::with_proxy_tls` over
/// a plain `HttpConnector::new()` (Nagle on in the connector; `ProxyConnectLayer` sets
/// `TCP_NODELAY` on the dialed stream unless `with_nodelay(false)`). With
/// `Http2Mode::Required` every tunnel is a CONNECT stream on one pooled HTTP/2 connection to
/// the proxy; with `Http2Mode::Never` every tunnel dials the proxy afresh (TCP + TLS offering
/// http/1.1 only) and sends an HTTP/1.1 CONNECT.
pub struct ViaHttps {
    stack: ViaHttpsStack,
    /// A tunnel kept open so that the pooled HTTP/2 proxy connection stays.
    keep: Option<HttpConnection<Body>>,
}

impl ViaHttps {
    /// The stack as the crate's docs write it (`with_nodelay` left at its default, true).
    pub fn new(env: &Env, route: ViaRoute, proto: Proto) -> Result<ViaHttps> {
        Self::with_nodelay(env, route, proto, None)
    }

    /// `nodelay: Some(b)` calls `ProxyConnectLayer::with_nodelay(b)`; `None` keeps the default.
    pub fn with_nodelay(
        env: &Env,
        route: ViaRoute,
        proto: Proto,
        nodelay: Option<bool>,
    ) -> Result<ViaHttps> {
        let tls = TlsLayer::new(Arc::new(client_config(&env.ca_pem, Vec::new())?));
        let tls = match proto {
            Proto::H2 => tls,
            Proto::H1 => tls.with_http1_only(),
        };
        let proxy = Proxy::new(&env.h2_proxy_url)?.with_http2(route.mode());
        // Its own configuration (and session cache) for the proxy hop; the layer sets the
        // proxy's ALPN itself.
        let proxy_tls = Arc::new(client_config(&env.ca_pem, Vec::new())?);
        let mut route_layer = ProxyConnectLayer::new(proxy).with_proxy_tls(proxy_tls);
        if let Some(nodelay) = nodelay {
            route_layer = route_layer.with_nodelay(nodelay);
        }
        let stack = ServiceBuilder::new()
            .layer(AlpnDispatchLayer::new())
            .layer(tls)
            .layer(route_layer)
            .service(HttpConnector::new());
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

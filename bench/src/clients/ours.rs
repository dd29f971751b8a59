//! This crate's stack through the http:// proxy.

use std::sync::Arc;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};
use tower_tunnel::{
    AlpnDispatch, AlpnDispatchLayer, HttpConnection, Proxy, ProxyConnect, ProxyConnectLayer,
    TlsConnect, TlsLayer,
};

use crate::alloc::Marks;
use crate::fixtures::Env;
use crate::tls::{client_config, Proto};
use crate::util::{Body, Result};

type OurStack = AlpnDispatch<TlsConnect<ProxyConnect<HttpConnector>>, Body>;

/// This crate's stack, as the crate's docs write it.
pub struct Ours {
    stack: OurStack,
    route: ProxyConnect<HttpConnector>,
    tls: TlsLayer,
}

impl Ours {
    pub fn new(env: &Env, proto: Proto) -> Result<Ours> {
        // `origin.client_config()`: ring, test CA only, no ALPN (TlsLayer sets it).
        let tls = TlsLayer::new(Arc::new(client_config(&env.ca_pem, Vec::new())?));
        let tls = match proto {
            Proto::H2 => tls,
            Proto::H1 => tls.with_http1_only(),
        };
        let proxy = ProxyConnectLayer::new(Proxy::new(&env.proxy_url)?);
        let stack = ServiceBuilder::new()
            .layer(AlpnDispatchLayer::new())
            .layer(tls.clone())
            .layer(proxy.clone())
            .service(HttpConnector::new());
        Ok(Ours {
            stack,
            route: proxy.layer(HttpConnector::new()),
            tls,
        })
    }

    pub async fn connect(&mut self, url: &Uri) -> Result<HttpConnection<Body>> {
        Ok(self.stack.ready().await?.call(url.clone()).await?)
    }

    /// The same stack, one layer at a time: each layer is handed the stream the one below
    /// made, so allocations and time split by phase.
    pub async fn connect_phased(
        &mut self,
        url: &Uri,
        marks: &mut Marks,
    ) -> Result<HttpConnection<Body>> {
        let routed = self.route.ready().await?.call(url.clone()).await?;
        marks.mark();
        let mut slot = Some(routed);
        let below = service_fn(move |_: Uri| std::future::ready(slot.take().ok_or("taken")));
        let tls = self.tls.layer(below).oneshot(url.clone()).await?;
        marks.mark();
        let mut slot = Some(tls);
        let below = service_fn(move |_: Uri| std::future::ready(slot.take().ok_or("taken")));
        let conn = AlpnDispatchLayer::<Body>::new()
            .layer(below)
            .oneshot(url.clone())
            .await?;
        marks.mark();
        Ok(conn)
    }
}

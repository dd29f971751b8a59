//! hyper-util's `Tunnel` under hyper-rustls's `HttpsConnector`.

use std::sync::Arc;

use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, HandshakeKind};
use tokio::net::TcpStream;
use tower::{service_fn, Service, ServiceExt};

use super::HyperConn;
use crate::alloc::Marks;
use crate::fixtures::Env;
use crate::tls::{client_config, Proto};
use crate::util::Result;

/// hyper-util's `Tunnel` (feature client-proxy) under hyper-rustls's `HttpsConnector` (ring),
/// then hyper's handshake by ALPN.
pub struct HyperUtil {
    tunnel: Tunnel<HttpConnector>,
    https: HttpsConnector<Tunnel<HttpConnector>>,
    config: Arc<ClientConfig>,
}

type HuStream = MaybeHttpsStream<TokioIo<TcpStream>>;

fn hu_resumed(s: &HuStream) -> bool {
    match s {
        MaybeHttpsStream::Https(tls) => {
            tls.inner().get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed)
        }
        MaybeHttpsStream::Http(_) => false,
    }
}

impl HyperUtil {
    pub fn new(env: &Env, proto: Proto) -> Result<HyperUtil> {
        let config = Arc::new(client_config(&env.ca_pem, proto.alpn())?);
        let tunnel = Tunnel::new(env.proxy_url.parse()?, HttpConnector::new());
        let https = HttpsConnector::from((tunnel.clone(), config.clone()));
        Ok(HyperUtil {
            tunnel,
            https,
            config,
        })
    }

    /// A connection and whether its TLS session was resumed.
    pub async fn connect(&mut self, url: &Uri) -> Result<(HyperConn, bool)> {
        let stream = self.https.ready().await?.call(url.clone()).await?;
        let h2 = stream.connected().is_negotiated_h2();
        let resumed = hu_resumed(&stream);
        Ok((HyperConn::handshake(stream, h2).await?, resumed))
    }

    /// The same, one phase at a time (for the phase table).
    pub async fn connect_phased(&mut self, url: &Uri, marks: &mut Marks) -> Result<HyperConn> {
        let tcp = self.tunnel.ready().await?.call(url.clone()).await?;
        marks.mark();
        let mut slot = Some(tcp);
        let routed = service_fn(move |_: Uri| std::future::ready(slot.take().ok_or("taken")));
        let stream = HttpsConnector::from((routed, self.config.clone()))
            .oneshot(url.clone())
            .await?;
        marks.mark();
        let h2 = stream.connected().is_negotiated_h2();
        let conn = HyperConn::handshake(stream, h2).await?;
        marks.mark();
        Ok(conn)
    }
}

//! The whole stack on loopback, no set-up: an in-process CONNECT proxy and
//! a TLS origin, HTTPS through the tunnel over HTTP/2 and over HTTP/1.1,
//! then the error a proxy's 407 gives.
//!
//! ```text
//! cargo run --example demo
//! ```

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{TestOrigin, TestProxy};
use tower_tunnel::{AlpnDispatchLayer, ConnectionInfo, Proxy, ProxyConnectLayer, TlsLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let proxy = TestProxy::builder()
        .basic_auth("demo", "hunter2")
        .start()
        .await?;
    let origin = TestOrigin::start().await?;
    println!("proxy  {} (Basic auth: demo / ********)", proxy.url());
    println!("origin {}\n", origin.https_url());

    let with_creds = Proxy::new(&proxy.url())?.with_basic_auth("demo", "hunter2");
    for (label, tls) in [
        (
            "HTTP/2 (ALPN h2, http/1.1)",
            TlsLayer::new(origin.client_config()),
        ),
        (
            "HTTP/1.1 (ALPN http/1.1 only)",
            TlsLayer::new(origin.client_config()).with_http1_only(),
        ),
    ] {
        let connect = ServiceBuilder::new()
            .layer(AlpnDispatchLayer::new())
            .layer(tls)
            .layer(ProxyConnectLayer::new(with_creds.clone()))
            .service(HttpConnector::new());
        let mut conn = connect.oneshot(origin.https_url().parse()?).await?;
        let req = http::Request::get("/").body(Empty::<Bytes>::new())?;
        let res = conn.send_request(req).await?;
        let status = res.status();
        let version = res.version();
        let body = res.into_body().collect().await?.to_bytes();
        println!("== {label}");
        println!("   {version:?} {status}, {} bytes", body.len());
        report(conn.info());
    }

    println!("== the same request without proxy credentials");
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::<Empty<Bytes>>::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url())?))
        .service(HttpConnector::new());
    match connect.oneshot(origin.https_url().parse()?).await {
        Ok(_) => return Err("the proxy accepted a request without credentials".into()),
        Err(err) => {
            println!("   error: {err}");
            println!("   kind {:?}, phase {:?}", err.kind(), err.phase());
        }
    }
    println!(
        "\norigin saw {} connections through the proxy and {} direct",
        origin.proxied_connections(),
        origin.direct_connections()
    );
    Ok(())
}

fn report(info: &ConnectionInfo) {
    let t = info.timings();
    let ms = |d: Option<std::time::Duration>| {
        d.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
        )
    };
    println!("   route    {}", info.route());
    println!("   alpn     {}", info.alpn().unwrap_or("none"));
    println!(
        "   tls      {:?}{}",
        info.tls_version(),
        if info.is_resumed() { " (resumed)" } else { "" }
    );
    println!(
        "   phases   dial {}, CONNECT {}, TLS {}, HTTP handshake {}\n",
        ms(t.dial()),
        ms(t.proxy_connect()),
        ms(t.tls()),
        ms(t.http_handshake())
    );
}

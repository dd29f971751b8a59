//! gRPC through an HTTP CONNECT proxy with tonic: the answer to tonic's long-standing request
//! for proxy support ("how do I reach my gRPC server through the corporate proxy?").
//!
//! tonic has no proxy setting of its own, but `Endpoint::connect_with_connector` takes any
//! connector, and the tower-tunnel stack up to `TlsLayer` is one: it opens the CONNECT
//! tunnel, then runs TLS to the gRPC server (SNI and certificate name = the server, never
//! the proxy) with ALPN `h2`, and hands tonic a ready stream.
//!
//! ```text
//! cargo run --example grpc_via_proxy
//! ```
//!
//! It runs with no arguments on in-process fixtures on `127.0.0.1`: tower-tunnel's
//! `TestProxy`, and a tonic server over TLS with the test CA's certificate. The gRPC service
//! (`tunnel.Echo`, with a unary and a server-streaming method) is written without protoc.
//!
//! With `grpc_proxy` set, it routes by gRPC's own variables instead
//! ([`Proxies::from_grpc_env`](tower_tunnel::Proxies::from_grpc_env): `grpc_proxy`,
//! then `https_proxy`, then `http_proxy`; `no_grpc_proxy`, then `no_proxy`), through
//! whatever proxy that names, to the same in-process server:
//!
//! ```text
//! grpc_proxy=http://127.0.0.1:3128 cargo run --example grpc_via_proxy
//! ```
//!
//! CI runs it so through the interop suite's squid, with no other proxy variable set.
//!
//! With a real proxy and server, only three values change: the proxy URL (from
//! `HTTPS_PROXY`, say), the server URL, and the rustls config (your roots instead of the
//! test CA). Use tonic without its TLS features: `TlsLayer` does TLS, and tonic would
//! otherwise try to add its own on top for `https://` endpoints.

#[path = "../tests/common/grpc.rs"]
mod grpc;

use futures_util::StreamExt;
use hyper_util::client::legacy::connect::HttpConnector;
use tonic::transport::Endpoint;
use tower::ServiceBuilder;
use tower_tunnel::test_util::{self, TestProxy};
use tower_tunnel::{Proxies, Proxy, ProxyConnectLayer, TlsLayer};

use grpc::{EchoClient, GrpcOrigin};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = GrpcOrigin::start().await?;
    if std::env::var_os("grpc_proxy").is_some() {
        return through_grpc_env(&server).await;
    }
    let proxy = TestProxy::builder()
        .basic_auth("grpc", "hunter2")
        .start()
        .await?;
    println!("gRPC server {} (tonic, TLS, ALPN h2)", server.https_url());
    println!(
        "proxy       {} (Basic auth: grpc / ********)\n",
        proxy.url()
    );

    // The connector: TLS to the gRPC server over a CONNECT tunnel through the proxy.
    // Outermost first: TlsLayer, then ProxyConnectLayer, then TCP to the proxy.
    let connector = ServiceBuilder::new()
        .layer(TlsLayer::new(test_util::client_config()).with_http2_only())
        .layer(ProxyConnectLayer::new(
            Proxy::new(&proxy.url())?.with_basic_auth("grpc", "hunter2"),
        ))
        .service(HttpConnector::new());
    let channel = Endpoint::from_shared(server.https_url())?
        .connect_with_connector(connector)
        .await?;
    let mut client = EchoClient::new(channel);

    let reply = client.say("proxy").await?;
    println!("{:<22} -> {:?}", "unary  Say(\"proxy\")", reply.get_ref());

    let mut stream = client.count(5).await?.into_inner();
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item?);
    }
    println!("{:<22} -> {items:?}", "stream Count(5)");

    let status = client.count(grpc::MAX_COUNT + 1).await.unwrap_err();
    let call = format!("error  Count({})", grpc::MAX_COUNT + 1);
    println!("{call:<22} -> {:?}: {}\n", status.code(), status.message());

    for request in proxy.requests() {
        println!("proxy saw: {} {}", request.method, request.target);
    }
    println!(
        "proxy connections: {}, gRPC server connections: {}",
        proxy.connections(),
        server.connections()
    );
    // Three calls, one CONNECT, one connection: nothing reached the server around the proxy.
    assert_eq!(proxy.requests().len(), 1);
    assert_eq!(proxy.requests()[0].target, server.authority());
    assert_eq!(server.connections(), 1);

    // Without credentials the proxy's 407 reaches the caller as itself, not as a TLS error.
    let no_auth = ServiceBuilder::new()
        .layer(TlsLayer::new(test_util::client_config()).with_http2_only())
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url())?))
        .service(HttpConnector::new());
    let err = Endpoint::from_shared(server.https_url())?
        .connect_with_connector(no_auth)
        .await
        .unwrap_err();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = cause {
        if let Some(ours) = e.downcast_ref::<tower_tunnel::Error>() {
            println!("\nwithout credentials: {ours}");
            break;
        }
        cause = e.source();
    }
    Ok(())
}

/// The same calls, routed by gRPC's proxy variables.
async fn through_grpc_env(server: &GrpcOrigin) -> Result<(), BoxError> {
    let proxies = Proxies::from_grpc_env()?;
    let uri: http::Uri = server.https_url().parse()?;
    let decision = proxies.decide(&uri)?;
    println!("gRPC server {} (tonic, TLS, ALPN h2)", server.https_url());
    match decision.proxy() {
        Some(proxy) => println!("route       via {proxy}, because {}", decision.rule()),
        None => println!("route       direct, because {}", decision.rule()),
    }
    let connector = ServiceBuilder::new()
        .layer(TlsLayer::new(test_util::client_config()).with_http2_only())
        .layer(ProxyConnectLayer::from_proxies(proxies))
        .service(HttpConnector::new());
    let channel = Endpoint::from_shared(server.https_url())?
        .connect_with_connector(connector)
        .await?;
    let mut client = EchoClient::new(channel);
    let reply = client.say("grpc_proxy").await?;
    println!(
        "{:<22} -> {:?}",
        "unary  Say(\"grpc_proxy\")",
        reply.get_ref()
    );
    println!("tunnel      CONNECT {}", server.authority());
    Ok(())
}

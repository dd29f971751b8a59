//! tonic gRPC through a CONNECT proxy: a real tonic server over TLS (ALPN `h2`, the test CA's
//! certificate), a real tonic `Channel` made by `Endpoint::connect_with_connector` on the
//! stack up to `TlsLayer`, and the in-process `TestProxy` in between.

#[path = "common/grpc.rs"]
mod grpc;

use std::error::Error as _;

use futures_util::StreamExt;
use hyper_util::client::legacy::connect::HttpConnector;
use tonic::transport::{Channel, Endpoint};
use tower::ServiceBuilder;
use tower_tunnel::test_util::{self, TestProxy};
use tower_tunnel::{ErrorKind, Phase, Proxy, ProxyConnectLayer, TlsLayer};

use grpc::{EchoClient, GrpcOrigin};

/// The connector a user hands to tonic: TLS to the target (HTTP/2 only, as gRPC needs), over
/// the route `ProxyConnectLayer` chose, over TCP to the proxy.
async fn channel_via(
    proxy: Proxy,
    origin: &GrpcOrigin,
) -> Result<Channel, tonic::transport::Error> {
    let stack = ServiceBuilder::new()
        .layer(TlsLayer::new(test_util::client_config()).with_http2_only())
        .layer(ProxyConnectLayer::new(proxy))
        .service(HttpConnector::new());
    Endpoint::from_shared(origin.https_url())?
        .connect_with_connector(stack)
        .await
}

/// The proxy saw exactly one CONNECT, for the gRPC server's authority, and the server saw
/// exactly the one connection the proxy opened: nothing bypassed the proxy.
fn assert_one_tunnel(proxy: &TestProxy, origin: &GrpcOrigin) {
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "CONNECT");
    assert_eq!(requests[0].target, origin.authority());
    assert_eq!(requests[0].headers["host"], origin.authority().as_str());
    assert_eq!(proxy.connections(), 1);
    assert_eq!(origin.connections(), 1, "peers: {:?}", origin.peers());
}

#[tokio::test]
async fn unary_call_through_connect_proxy() {
    let origin = GrpcOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let channel = channel_via(Proxy::new(&proxy.url()).unwrap(), &origin)
        .await
        .unwrap();

    let mut client = EchoClient::new(channel);
    let res = client.say("proxy").await.unwrap();
    assert_eq!(res.into_inner(), "hello, proxy");
    assert_one_tunnel(&proxy, &origin);
}

#[tokio::test]
async fn server_streaming_call_through_connect_proxy() {
    let origin = GrpcOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let channel = channel_via(Proxy::new(&proxy.url()).unwrap(), &origin)
        .await
        .unwrap();

    let mut client = EchoClient::new(channel);
    let mut stream = client.count(50).await.unwrap().into_inner();
    let mut got = Vec::new();
    while let Some(item) = stream.next().await {
        got.push(item.unwrap());
    }
    let want: Vec<String> = (1..=50).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    // The stream ended with grpc-status 0 in the trailers, read through the tunnel.
    assert!(stream.trailers().await.unwrap().is_some());
    assert_one_tunnel(&proxy, &origin);
}

#[tokio::test]
async fn grpc_status_errors_come_back_through_the_tunnel() {
    let origin = GrpcOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let channel = channel_via(Proxy::new(&proxy.url()).unwrap(), &origin)
        .await
        .unwrap();

    let mut client = EchoClient::new(channel);
    let err = client.count(grpc::MAX_COUNT + 1).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange);
    // The connection is still good afterwards.
    assert_eq!(
        client.say("again").await.unwrap().into_inner(),
        "hello, again"
    );
    assert_one_tunnel(&proxy, &origin);
}

#[tokio::test]
async fn concurrent_unary_and_streaming_calls_share_one_tunnel() {
    let origin = GrpcOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let channel = channel_via(Proxy::new(&proxy.url()).unwrap(), &origin)
        .await
        .unwrap();

    let mut calls = Vec::new();
    for i in 0..16u32 {
        let mut client = EchoClient::new(channel.clone());
        calls.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let res = client.say(&i.to_string()).await.unwrap();
                assert_eq!(res.into_inner(), format!("hello, {i}"));
            } else {
                let stream = client.count(i).await.unwrap().into_inner();
                let got: Vec<String> = stream.map(Result::unwrap).collect().await;
                assert_eq!(got.len(), i as usize);
            }
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    // Sixteen calls, HTTP/2 multiplexed on one connection through one CONNECT.
    assert_one_tunnel(&proxy, &origin);
}

#[tokio::test]
async fn proxy_refusal_reaches_the_tonic_caller_as_itself() {
    let origin = GrpcOrigin::start().await.unwrap();
    let proxy = TestProxy::builder()
        .basic_auth("grpc", "s3cret")
        .start()
        .await
        .unwrap();

    // No credentials: the proxy answers 407, and tonic's error carries the crate's error.
    let err = channel_via(Proxy::new(&proxy.url()).unwrap(), &origin)
        .await
        .unwrap_err();
    let mut source = err.source();
    let ours = loop {
        let Some(e) = source else {
            panic!("no tower_tunnel::Error in the chain of {err:?}")
        };
        if let Some(ours) = e.downcast_ref::<tower_tunnel::Error>() {
            break ours;
        }
        source = e.source();
    };
    assert_eq!(ours.kind(), ErrorKind::ProxyAuthRequired);
    assert_eq!(ours.phase(), Some(Phase::ProxyConnect));
    assert!(ours.to_string().contains("407"), "{ours}");
    assert_eq!(origin.connections(), 0);

    // With credentials the same stack works, and the secret never shows in the proxy config.
    let with_auth = Proxy::new(&proxy.url())
        .unwrap()
        .with_basic_auth("grpc", "s3cret");
    assert!(!format!("{with_auth:?}").contains("s3cret"));
    let channel = channel_via(with_auth, &origin).await.unwrap();
    let res = EchoClient::new(channel).say("auth").await.unwrap();
    assert_eq!(res.into_inner(), "hello, auth");
    assert_eq!(origin.connections(), 1);
}

/// The control for `assert_one_tunnel`: a direct route shows up in the server's counter and
/// not in the proxy's, so the counters do tell the two apart.
#[tokio::test]
async fn direct_route_is_seen_by_the_server_and_not_by_the_proxy() {
    let origin = GrpcOrigin::start().await.unwrap();
    let proxy = TestProxy::start().await.unwrap();
    let stack = ServiceBuilder::new()
        .layer(TlsLayer::new(test_util::client_config()).with_http2_only())
        .layer(ProxyConnectLayer::direct())
        .service(HttpConnector::new());
    let channel = Endpoint::from_shared(origin.https_url())
        .unwrap()
        .connect_with_connector(stack)
        .await
        .unwrap();
    let res = EchoClient::new(channel).say("direct").await.unwrap();
    assert_eq!(res.into_inner(), "hello, direct");
    assert_eq!(origin.connections(), 1);
    assert_eq!(proxy.connections(), 0);
    assert!(proxy.requests().is_empty());
}

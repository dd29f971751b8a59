//! WebSockets through the stack, up to `TlsLayer`, with tokio-tungstenite's `client_async`
//! on top: `wss://` and `ws://` targets through a `CONNECT` proxy on loopback, against a
//! real WebSocket echo server (tokio-tungstenite's `accept_async`, over rustls for `wss`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{tls_acceptor, TestOrigin, TestProxy};
use tower_tunnel::{Proxy, ProxyConnectLayer, Route, TlsLayer};

/// A WebSocket echo server on loopback, TLS when `tls`; records the ALPN protocol each TLS
/// handshake selected. Bounded: a few connections.
async fn echo_server(tls: bool) -> (SocketAddr, Arc<Mutex<Vec<Option<Vec<u8>>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Offers h2 first: a client that offered h2 would get it.
    let acceptor = tls_acceptor(vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    let alpn = Arc::new(Mutex::new(Vec::new()));
    let seen = alpn.clone();
    tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                if tls {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    seen.lock()
                        .unwrap()
                        .push(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
                    echo(tokio_tungstenite::accept_async(tls).await).await;
                } else {
                    echo(tokio_tungstenite::accept_async(tcp).await).await;
                }
            });
        }
    });
    (addr, alpn)
}

async fn echo<S>(
    ws: Result<tokio_tungstenite::WebSocketStream<S>, tokio_tungstenite::tungstenite::Error>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Ok(mut ws) = ws else { return };
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() || ws.send(msg).await.is_err() {
            return;
        }
    }
}

/// Sends one 1 MiB binary message and one text message over `url`, checking the echoes.
async fn round_trip(proxy: &TestProxy, url: &str) -> Route {
    let origin = TestOrigin::start().await.unwrap();
    let connector = ServiceBuilder::new()
        .layer(TlsLayer::new(origin.client_config()))
        .layer(ProxyConnectLayer::new(Proxy::new(&proxy.url()).unwrap()))
        .service(HttpConnector::new());
    let stream = connector.oneshot(url.parse().unwrap()).await.unwrap();
    let route = stream.info().route().clone();
    let (mut ws, res) = tokio_tungstenite::client_async(url, TokioIo::new(stream))
        .await
        .unwrap();
    assert_eq!(res.status(), 101);
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    let back = ws.next().await.unwrap().unwrap();
    assert_eq!(back.into_data().as_ref(), &big[..]);
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    ws.close(None).await.unwrap();
    route
}

#[tokio::test]
async fn wss_goes_through_a_connect_tunnel_offering_http1_only() {
    let (server, alpn) = echo_server(true).await;
    let proxy = TestProxy::start().await.unwrap();
    let url = format!("wss://localhost:{}/echo", server.port());
    let route = round_trip(&proxy, &url).await;
    assert!(matches!(route, Route::Tunnel { .. }), "{route}");
    let recorded = proxy.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "CONNECT");
    assert_eq!(recorded[0].target, format!("localhost:{}", server.port()));
    // The server preferred h2; the client offered http/1.1 alone (RFC 6455 needs it).
    assert_eq!(*alpn.lock().unwrap(), [Some(b"http/1.1".to_vec())]);
}

#[tokio::test]
async fn ws_is_tunnelled_never_forwarded() {
    let (server, _) = echo_server(false).await;
    let proxy = TestProxy::start().await.unwrap();
    let url = format!("ws://127.0.0.1:{}/echo", server.port());
    let route = round_trip(&proxy, &url).await;
    // A WebSocket cannot be forwarded in absolute-form: the proxy sees a CONNECT.
    assert!(matches!(route, Route::Tunnel { .. }), "{route}");
    assert_eq!(proxy.requests()[0].method, "CONNECT");
    assert_eq!(proxy.requests()[0].target, server.to_string());
}

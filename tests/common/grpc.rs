//! A tiny gRPC service, written without protoc or generated code, and a tonic server that
//! serves it over TLS (ALPN `h2`) on `127.0.0.1:0`, counting every TCP connection it accepts.
//!
//! Shared by `tests/tonic.rs` and `examples/grpc_via_proxy.rs` (through `#[path]`).
//!
//! Service `tunnel.Echo`, messages are UTF-8 strings on the wire:
//! - `Say` (unary): `name` -> `hello, {name}`
//! - `Count` (server streaming): `n` -> `1`, `2`, ..., `n` (at most 1000)

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut};
use http::uri::PathAndQuery;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService};
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status, Streaming};

/// The gRPC service name.
pub const SERVICE: &str = "tunnel.Echo";
/// Path of the unary method.
pub const SAY: &str = "/tunnel.Echo/Say";
/// Path of the server-streaming method.
pub const COUNT: &str = "/tunnel.Echo/Count";
/// Largest `n` that `Count` accepts.
pub const MAX_COUNT: u32 = 1000;

/// UTF-8 strings as gRPC messages: the bytes of the string, nothing else.
///
/// What `prost` generated code would do for a message with one string field, minus the
/// protobuf tag; enough to run real gRPC framing, status and trailers without protoc.
#[derive(Clone, Copy, Debug, Default)]
pub struct StringCodec;

impl Codec for StringCodec {
    type Encode = String;
    type Decode = String;
    type Encoder = StringCodec;
    type Decoder = StringCodec;

    fn encoder(&mut self) -> Self::Encoder {
        StringCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        StringCodec
    }
}

impl Encoder for StringCodec {
    type Item = String;
    type Error = Status;

    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for StringCodec {
    type Item = String;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("message is not UTF-8: {e}")))
    }
}

/// The server side of `tunnel.Echo`, routed by hand the way tonic's generated servers do.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoServer;

impl NamedService for EchoServer {
    const NAME: &'static str = SERVICE;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<B> tower::Service<http::Request<B>> for EchoServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            SAY => Box::pin(async move {
                let say = tower::service_fn(|req: Request<String>| async move {
                    Ok::<_, Status>(Response::new(format!("hello, {}", req.into_inner())))
                });
                Ok(Grpc::new(StringCodec).unary(say, req).await)
            }),
            COUNT => Box::pin(async move {
                let count = tower::service_fn(|req: Request<String>| async move {
                    let n: u32 = req
                        .into_inner()
                        .trim()
                        .parse()
                        .map_err(|_| Status::invalid_argument("Count takes a number"))?;
                    if n > MAX_COUNT {
                        return Err(Status::out_of_range(format!("at most {MAX_COUNT}")));
                    }
                    let items = (1..=n).map(|i| Ok::<_, Status>(i.to_string()));
                    Ok(Response::new(futures_util::stream::iter(items)))
                });
                Ok(Grpc::new(StringCodec).server_streaming(count, req).await)
            }),
            _ => Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

/// The client side of `tunnel.Echo` over any tonic transport (a `Channel`, say), shaped like
/// a generated client.
#[derive(Clone, Debug)]
pub struct EchoClient<T> {
    inner: tonic::client::Grpc<T>,
}

impl<T> EchoClient<T>
where
    T: tonic::client::GrpcService<Body>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Wraps a transport.
    pub fn new(inner: T) -> Self {
        EchoClient {
            inner: tonic::client::Grpc::new(inner),
        }
    }

    /// Unary `Say`.
    pub async fn say(&mut self, name: &str) -> Result<Response<String>, Status> {
        self.ready().await?;
        self.inner
            .unary(
                Request::new(name.to_owned()),
                PathAndQuery::from_static(SAY),
                StringCodec,
            )
            .await
    }

    /// Server-streaming `Count`.
    pub async fn count(&mut self, n: u32) -> Result<Response<Streaming<String>>, Status> {
        self.ready().await?;
        self.inner
            .server_streaming(
                Request::new(n.to_string()),
                PathAndQuery::from_static(COUNT),
                StringCodec,
            )
            .await
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("service was not ready: {}", e.into())))
    }
}

/// A tonic server for [`EchoServer`] over TLS with ALPN `h2` only, on `127.0.0.1:0`, with the
/// test CA's `localhost` certificate. Stops when dropped.
#[derive(Debug)]
pub struct GrpcOrigin {
    addr: SocketAddr,
    stats: Arc<Stats>,
    _accept: AbortOnDrop,
    _serve: AbortOnDrop,
}

#[derive(Debug, Default)]
struct Stats {
    connections: AtomicUsize,
    peers: Mutex<Vec<SocketAddr>>,
}

impl GrpcOrigin {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> io::Result<GrpcOrigin> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let acceptor = tower_tunnel::test_util::tls_acceptor(vec![b"h2".to_vec()]);
        let stats = Arc::new(Stats::default());
        let (tx, rx) = mpsc::channel::<TlsConn>(16);

        let shared = Arc::clone(&stats);
        let accept = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    // Out of file descriptors and the like: back off instead of spinning.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                shared
                    .peers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(peer);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                // Handshake off the accept loop, so one slow client cannot stall the others.
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        let _ = tx.send(TlsConn { tls, peer }).await;
                    }
                });
            }
        });

        let incoming = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|conn| (Ok::<_, io::Error>(conn), rx))
        });
        let serve = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(EchoServer)
                .serve_with_incoming(incoming)
                .await;
        });

        Ok(GrpcOrigin {
            addr,
            stats,
            _accept: AbortOnDrop(accept),
            _serve: AbortOnDrop(serve),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://localhost:PORT`: the name the certificate carries.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.authority())
    }

    /// `localhost:PORT`: what a CONNECT for this server names.
    pub fn authority(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// How many TCP connections the server has accepted.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// The peer address of every accepted TCP connection, in order.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.stats
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A server-side TLS connection as tonic's `serve_with_incoming` takes it.
///
/// tonic implements `Connected` for tokio-rustls streams only with its `tls-connect-info`
/// feature, which pulls tokio-rustls with default features (aws-lc); this newtype avoids that.
struct TlsConn {
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
}

/// The connect info of a [`TlsConn`]: the TCP peer address.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

impl Connected for TlsConn {
    type ConnectInfo = PeerAddr;

    fn connect_info(&self) -> PeerAddr {
        PeerAddr(self.peer)
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tls).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tls).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }
}

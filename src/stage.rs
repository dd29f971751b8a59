//! The stage traits that put the layers in order.
//!
//! A connection changes type as it climbs the stack, and each layer accepts
//! only the type the layer below it produces:
//!
//! | produced by | stream type | stage trait | accepted by |
//! |---|---|---|---|
//! | a base connector (`HttpConnector`, your own) | `TokioIo<TcpStream>`, your IO | [`Transport`] | [`ProxyConnectLayer`] |
//! | [`ProxyConnectLayer`] | [`Routed<T>`] | [`RoutedStream`] | [`TlsLayer`] |
//! | [`TlsLayer`] | [`TlsStream<S>`] | [`Negotiated`] | [`AlpnDispatchLayer`], hyper-util's `Client`, tonic |
//!
//! The bounds sit on the `Service` implementations, so a misordered stack
//! fails to compile where it is first used as a connector, with the message
//! of the trait it is missing. [`RoutedStream`] and [`Negotiated`] are sealed:
//! only this crate's stage types carry them. [`Transport`] is public so you
//! can put your own IO type below [`ProxyConnectLayer`].
//!
//! Each stage hands the next one its stream and its
//! [`ConnectionInfo`] by value (`into_parts`): nothing is left behind.
//!
//! [`ProxyConnectLayer`]: crate::ProxyConnectLayer
//! [`TlsLayer`]: crate::TlsLayer
//! [`AlpnDispatchLayer`]: crate::AlpnDispatchLayer
//! [`Routed<T>`]: crate::Routed
//! [`TlsStream<S>`]: crate::TlsStream

use std::io;

use crate::info::ConnectionInfo;

/// A byte stream to the first hop, before any routing: what a base connector
/// yields and [`ProxyConnectLayer`](crate::ProxyConnectLayer) accepts.
///
/// Implemented for tokio's `TcpStream` (and `TokioIo` or `Box` around any
/// `Transport`). Implement it for your own IO type to put a connector of
/// your own below `ProxyConnectLayer`. This crate's routed and TLS stream
/// types never implement it, so they cannot be fed back into the bottom of
/// the stack.
///
/// # Example
///
/// ```
/// /// An in-memory pipe, say, or a Unix socket to a local proxy.
/// struct MyIo(tokio::net::TcpStream);
///
/// impl tower_tunnel::Transport for MyIo {
///     fn set_nodelay(&self, nodelay: bool) -> std::io::Result<()> {
///         self.0.set_nodelay(nodelay)
///     }
/// }
/// # let _ = std::marker::PhantomData::<MyIo>;
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a transport: ProxyConnectLayer must sit directly above the base connector",
    label = "ProxyConnectLayer cannot take this stream",
    note = "outermost first: AlpnDispatchLayer, TlsLayer, ProxyConnectLayer, then a connector such as HttpConnector",
    note = "ProxyConnectLayer was given a stream that is already routed or encrypted; add it once, below TlsLayer (TLS to an https:// proxy is ProxyConnectLayer::with_proxy_tls, not a layer); for your own IO type, implement `tower_tunnel::Transport`"
)]
pub trait Transport {
    /// Turns Nagle's algorithm off (`TCP_NODELAY`), where the transport has
    /// it; the default does nothing.
    ///
    /// [`ProxyConnectLayer`](crate::ProxyConnectLayer) calls it after each
    /// dial unless told not to
    /// ([`with_nodelay(false)`](crate::ProxyConnectLayer::with_nodelay)):
    /// a handshake sends small messages back to back, and with Nagle on, the
    /// second waits for the peer's delayed ACK, about 40 ms on Linux.
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let _ = nodelay;
        Ok(())
    }
}

impl Transport for tokio::net::TcpStream {
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        tokio::net::TcpStream::set_nodelay(self, nodelay)
    }
}

impl<T: Transport> Transport for hyper_util::rt::TokioIo<T> {
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner().set_nodelay(nodelay)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        (**self).set_nodelay(nodelay)
    }
}

/// A stream whose route to the target exists: direct, or through a proxy.
///
/// Only [`Routed`](crate::Routed) implements it (the trait is sealed), and
/// only [`ProxyConnectLayer`](crate::ProxyConnectLayer) makes one, so TLS to
/// the target cannot start before the tunnel is up.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no route: TlsLayer must sit above ProxyConnectLayer",
    label = "this stream never went through ProxyConnectLayer",
    note = "the route (direct or proxy tunnel) must exist before TLS to the target starts",
    note = "outermost first: .layer(AlpnDispatchLayer::new()).layer(TlsLayer::new(..)).layer(ProxyConnectLayer::new(..)).service(connector); use ProxyConnectLayer::direct() for no proxy"
)]
pub trait RoutedStream: sealed::Sealed {
    /// The bytes of the route, which TLS to the target runs over.
    type Stream;

    /// How the route was made.
    fn info(&self) -> &ConnectionInfo;

    /// The stream and how it was made, for the stage above to own.
    fn into_parts(self) -> (Self::Stream, ConnectionInfo);

    /// Completes `info` with what the stream learned after the route was
    /// handed up: the proxy's answer to an optimistic tunnel request, read
    /// during the TLS handshake. Returns the time the answer took, when it
    /// was read there.
    #[doc(hidden)]
    fn settle(stream: &mut Self::Stream, info: &mut ConnectionInfo) -> Option<std::time::Duration> {
        let _ = (stream, info);
        None
    }
}

/// A routed stream whose application protocol is settled: TLS with its ALPN
/// result, or plain for `http://` targets.
///
/// Only [`TlsStream`](crate::TlsStream) implements it (the trait is sealed).
/// [`AlpnDispatchLayer`](crate::AlpnDispatchLayer) accepts nothing else.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has not been through TlsLayer: AlpnDispatchLayer must sit above TlsLayer",
    label = "the protocol of this stream is not negotiated yet",
    note = "ALPN decides between HTTP/2 and HTTP/1.1, so TLS must come first",
    note = "outermost first: .layer(AlpnDispatchLayer::new()).layer(TlsLayer::new(..)).layer(ProxyConnectLayer::new(..)).service(connector)"
)]
pub trait Negotiated: sealed::Sealed {
    /// The encrypted (or, for `http://` targets, plain) byte stream.
    type Stream;

    /// Everything known about how this connection was made.
    fn info(&self) -> &ConnectionInfo;

    /// The stream and how it was made, for the stage above to own.
    fn into_parts(self) -> (Self::Stream, ConnectionInfo);

    /// Completes `info` with what the stream learned after the route was
    /// handed up: the proxy's answer to an optimistic tunnel request, read
    /// during the TLS handshake. Returns the time the answer took, when it
    /// was read there.
    #[doc(hidden)]
    fn settle(stream: &mut Self::Stream, info: &mut ConnectionInfo) -> Option<std::time::Duration> {
        let _ = (stream, info);
        None
    }
}

pub(crate) mod sealed {
    /// Seals the stage traits: only this crate's stage types carry them.
    pub trait Sealed {}
}

//! The stage traits that put the layers in order.
//!
//! A connection changes type as it climbs the stack, and each layer accepts
//! only the type the layer below it produces:
//!
//! | produced by | stream type | stage trait | accepted by |
//! |---|---|---|---|
//! | a base connector (`HttpConnector`, your own) | `TokioIo<TcpStream>`, your IO | [`Transport`] | [`ProxyConnectLayer`] |
//! | [`ProxyConnectLayer`] | [`Routed<T>`] | [`RoutedStream`] | [`TlsLayer`] |
//! | [`TlsLayer`] | [`TlsStream<T>`] | [`Negotiated`] | [`AlpnDispatchLayer`], hyper-util's `Client`, tonic |
//!
//! The bounds sit on the `Service` implementations, so a misordered stack
//! fails to compile where it is first used as a connector, with the message
//! of the trait it is missing. [`RoutedStream`] and [`Negotiated`] are sealed:
//! only this crate's stage types carry them. [`Transport`] is public so you
//! can put your own IO type below [`ProxyConnectLayer`].
//!
//! [`ProxyConnectLayer`]: crate::ProxyConnectLayer
//! [`TlsLayer`]: crate::TlsLayer
//! [`AlpnDispatchLayer`]: crate::AlpnDispatchLayer
//! [`Routed<T>`]: crate::Routed
//! [`TlsStream<T>`]: crate::TlsStream

use std::sync::Arc;

use crate::info::ConnectionInfo;
use crate::proxy::{Proxy, Routed};
use crate::tls::TlsStream;

/// A byte stream to the first hop, before any routing: what a base connector
/// yields and [`ProxyConnectLayer`](crate::ProxyConnectLayer) accepts.
///
/// Implemented for tokio's `TcpStream` (and `TokioIo` around any
/// `Transport`), and for the stream of the proxy-TLS layer. Implement it for
/// your own IO type to put a connector of your own below
/// `ProxyConnectLayer`. This crate's routed and TLS stream types never
/// implement it, so they cannot be fed back into the bottom of the stack.
///
/// # Example
///
/// ```
/// # use std::{io, pin::Pin, task::{Context, Poll}};
/// /// An in-memory pipe, say, or a Unix socket to a local proxy.
/// struct MyIo(tokio::net::TcpStream);
///
/// impl tower_tunnel::Transport for MyIo {}
/// # let _ = std::marker::PhantomData::<MyIo>;
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a transport: ProxyConnectLayer must sit directly above the base connector",
    label = "ProxyConnectLayer (or ProxyTlsLayer) cannot take this stream",
    note = "outermost first: AlpnDispatchLayer, TlsLayer, ProxyConnectLayer, then a connector such as HttpConnector",
    note = "ProxyConnectLayer was given a stream that is already routed or encrypted; add it once, below TlsLayer (ProxyTlsLayer, for https:// proxies, goes below it); for your own IO type, implement `tower_tunnel::Transport`"
)]
pub trait Transport {
    /// Whether this stream is TLS to a proxy that selected ALPN `h2`, so
    /// `CONNECT` goes over HTTP/2. Only
    /// [`ProxyTlsStream`](crate::ProxyTlsStream) says yes; keep the
    /// default for your own IO.
    fn negotiated_h2(&self) -> bool {
        false
    }
}

impl Transport for tokio::net::TcpStream {}
impl<T: Transport> Transport for hyper_util::rt::TokioIo<T> {
    fn negotiated_h2(&self) -> bool {
        self.inner().negotiated_h2()
    }
}
impl<T: Transport + ?Sized> Transport for Box<T> {
    fn negotiated_h2(&self) -> bool {
        (**self).negotiated_h2()
    }
}

/// A stream whose route to the target exists: direct, or through a proxy.
///
/// Only [`Routed`] implements it (the trait is sealed), and only
/// [`ProxyConnectLayer`](crate::ProxyConnectLayer) makes one, so TLS to the
/// target cannot start before the tunnel is up.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no route: TlsLayer must sit above ProxyConnectLayer",
    label = "this stream never went through ProxyConnectLayer",
    note = "the route (direct or proxy tunnel) must exist before TLS to the target starts",
    note = "outermost first: .layer(AlpnDispatchLayer::new()).layer(TlsLayer::new(..)).layer(ProxyConnectLayer::new(..)).service(connector); use ProxyConnectLayer::direct() for no proxy"
)]
pub trait RoutedStream: sealed::Sealed {
    /// The stream to the first hop that the route runs over.
    type Io;

    /// How the route was made, so far.
    fn info(&self) -> &ConnectionInfo;

    /// The routed stream itself.
    fn into_routed(self) -> Routed<Self::Io>;
}

impl<T> sealed::Sealed for Routed<T> {
    fn take_info(&mut self) -> ConnectionInfo {
        Routed::take_info(self)
    }

    fn take_forward(&mut self) -> Option<Arc<Proxy>> {
        Routed::take_forward(self)
    }
}
impl<T> RoutedStream for Routed<T> {
    type Io = T;

    fn info(&self) -> &ConnectionInfo {
        Routed::info(self)
    }

    fn into_routed(self) -> Routed<T> {
        self
    }
}

/// A routed stream whose application protocol is settled: TLS with its ALPN
/// result, or plain for `http://` targets.
///
/// Only [`TlsStream`] implements it (the trait is sealed).
/// [`AlpnDispatchLayer`](crate::AlpnDispatchLayer) accepts nothing else.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has not been through TlsLayer: AlpnDispatchLayer must sit above TlsLayer",
    label = "the protocol of this stream is not negotiated yet",
    note = "ALPN decides between HTTP/2 and HTTP/1.1, so TLS must come first",
    note = "outermost first: .layer(AlpnDispatchLayer::new()).layer(TlsLayer::new(..)).layer(ProxyConnectLayer::new(..)).service(connector)"
)]
pub trait Negotiated: sealed::Sealed {
    /// Everything known about how this connection was made.
    fn info(&self) -> &ConnectionInfo;
}

impl<T> sealed::Sealed for TlsStream<T> {
    fn take_info(&mut self) -> ConnectionInfo {
        TlsStream::take_info(self)
    }

    fn take_forward(&mut self) -> Option<Arc<Proxy>> {
        TlsStream::take_forward(self)
    }
}
impl<T> Negotiated for TlsStream<T> {
    fn info(&self) -> &ConnectionInfo {
        TlsStream::info(self)
    }
}

pub(crate) mod sealed {
    use std::sync::Arc;

    use crate::info::ConnectionInfo;
    use crate::proxy::Proxy;

    /// Seals the stage traits, and carries what only this crate may call.
    pub trait Sealed {
        /// Moves the connection info up to the next stage.
        fn take_info(&mut self) -> ConnectionInfo;

        /// Moves the forwarding proxy (whose credentials go on each
        /// request) up to the next stage.
        fn take_forward(&mut self) -> Option<Arc<Proxy>>;
    }
}

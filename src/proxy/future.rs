//! [`ResponseFuture`] for [`ProxyConnect`](super::ProxyConnect).

use crate::error::Error;
use crate::macros::opaque_future;
use crate::proxy::Routed;

opaque_future! {
    /// Resolves to a [`Routed`] stream once the route exists.
    ///
    /// The dial, the proxy's TLS and the `CONNECT` or SOCKS exchange are
    /// one boxed future inside; the type is named so it can change without
    /// breaking callers.
    pub struct ResponseFuture<T> => Result<Routed<T>, Error>;
}

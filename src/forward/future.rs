//! [`ResponseFuture`] for [`ForwardProxy`](super::ForwardProxy).

use crate::macros::opaque_future;

opaque_future! {
    /// Resolves to the response of a request, sent again once with a
    /// Digest answer where the proxy asked for one.
    pub struct ResponseFuture<R, E> => Result<R, E>;
}

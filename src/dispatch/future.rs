//! [`ResponseFuture`] for [`AlpnDispatch`](super::AlpnDispatch), and
//! [`RequestFuture`] for [`HttpConnection`].

use http::Response;
use hyper::body::Incoming;

use super::HttpConnection;
use crate::error::Error;
use crate::macros::opaque_future;

opaque_future! {
    /// Resolves to a ready [`HttpConnection`].
    ///
    /// hyper's handshake futures have no names, so this one boxes them; the
    /// type is named so it can change without breaking callers.
    pub struct ResponseFuture<B> => Result<HttpConnection<B>, Error>;
}

opaque_future! {
    /// Resolves to the response of one request on an [`HttpConnection`].
    pub struct RequestFuture<> => Result<Response<Incoming>, Error>;
}

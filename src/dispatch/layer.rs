use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::exec::{BoxTask, Exec};
use super::AlpnDispatch;

/// HTTP/2 if ALPN said `h2`, else HTTP/1.1; see the [module docs](crate::dispatch).
///
/// `B` is the request body type of the connections it yields; it is
/// usually inferred from the requests you send.
pub struct AlpnDispatchLayer<B> {
    pub(crate) exec: Exec,
    pub(crate) handshake_timeout: Option<Duration>,
    _body: PhantomData<fn(B)>,
}

impl<B> AlpnDispatchLayer<B> {
    /// Dispatches by ALPN, running connection tasks on tokio.
    pub fn new() -> Self {
        AlpnDispatchLayer {
            exec: Exec::Tokio,
            handshake_timeout: Some(crate::timeout::DEFAULT_TIMEOUT),
            _body: PhantomData,
        }
    }

    /// Runs each connection's background task with `spawn` instead of
    /// `tokio::spawn`.
    ///
    /// ```
    /// # use tower_tunnel::AlpnDispatchLayer;
    /// let layer = AlpnDispatchLayer::<http_body_util::Empty<bytes::Bytes>>::new()
    ///     .with_executor(|task| { tokio::spawn(task); });
    /// # let _ = layer;
    /// ```
    pub fn with_executor<F>(mut self, spawn: F) -> Self
    where
        F: Fn(BoxTask) + Send + Sync + 'static,
    {
        self.exec = Exec::Custom(Arc::new(spawn));
        self
    }

    /// Limits the HTTP/1.1 or HTTP/2 handshake (default 30 s; `None` waits
    /// for ever).
    pub fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

impl<B> Default for AlpnDispatchLayer<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> Clone for AlpnDispatchLayer<B> {
    fn clone(&self) -> Self {
        AlpnDispatchLayer {
            exec: self.exec.clone(),
            handshake_timeout: self.handshake_timeout,
            _body: PhantomData,
        }
    }
}

impl<B> fmt::Debug for AlpnDispatchLayer<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpnDispatchLayer")
            .field("exec", &self.exec)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl<S, B> Layer<S> for AlpnDispatchLayer<B> {
    type Service = AlpnDispatch<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        AlpnDispatch::new(inner, self.exec.clone(), self.handshake_timeout)
    }
}

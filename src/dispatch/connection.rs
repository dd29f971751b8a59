use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HOST, PROXY_AUTHORIZATION};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Request, Uri, Version};
use http_body::Body;
use hyper::client::conn::{http1, http2};
use tower_service::Service;

use super::exec::Exec;
use super::future::RequestFuture;
use crate::error::{BoxError, Error, ErrorKind, Phase};
use crate::info::ConnectionInfo;

pub(crate) enum Sender<B> {
    Http1(http1::SendRequest<B>),
    Http2(http2::SendRequest<B>),
}

/// Runs the HTTP/2 handshake when `h2` is true, else HTTP/1.1, and spawns
/// the connection task.
pub(crate) async fn handshake<T, B>(io: T, exec: Exec, h2: bool) -> hyper::Result<Sender<B>>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    if h2 {
        let (sender, conn) = http2::handshake(exec.clone(), io).await?;
        exec.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP/2 connection ended with an error");
            }
        });
        Ok(Sender::Http2(sender))
    } else {
        let (sender, conn) = http1::handshake(io).await?;
        exec.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP/1.1 connection ended with an error");
            }
        });
        Ok(Sender::Http1(sender))
    }
}

/// A ready HTTP connection to the target, speaking HTTP/2 or HTTP/1.1 as
/// ALPN decided. Made by [`AlpnDispatchLayer`](crate::AlpnDispatchLayer).
///
/// A `tower::Service<http::Request<B>>`. Requests may carry a full URI
/// (`https://host/path`) or just a path: the connection fills in what its
/// protocol needs (origin-form and `Host` for HTTP/1.1, scheme and
/// authority for HTTP/2).
///
/// # Example
///
/// ```no_run
/// # async fn doc(mut conn: tower_tunnel::HttpConnection<http_body_util::Empty<bytes::Bytes>>) -> Result<(), tower_tunnel::Error> {
/// let req = http::Request::get("/").body(http_body_util::Empty::new()).unwrap();
/// let res = conn.send_request(req).await?;
/// println!("{:?} {}", res.version(), res.status());
/// # Ok(()) }
/// ```
pub struct HttpConnection<B> {
    sender: Sender<B>,
    // Shared with each request future, for its error path.
    info: Arc<ConnectionInfo>,
}

impl<B> HttpConnection<B> {
    pub(crate) fn new(sender: Sender<B>, info: ConnectionInfo) -> Self {
        HttpConnection {
            sender,
            info: Arc::new(info),
        }
    }

    /// Everything known about how this connection was made.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The protocol this connection speaks: `HTTP_2` or `HTTP_11`.
    pub fn version(&self) -> Version {
        match self.sender {
            Sender::Http1(_) => Version::HTTP_11,
            Sender::Http2(_) => Version::HTTP_2,
        }
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        match &self.sender {
            Sender::Http1(s) => s.is_closed(),
            Sender::Http2(s) => s.is_closed(),
        }
    }

    /// Waits until the connection can take a request, then sends `req`.
    ///
    /// The same as `ServiceExt::ready` followed by `Service::call`.
    pub async fn send_request(
        &mut self,
        req: Request<B>,
    ) -> Result<http::Response<hyper::body::Incoming>, Error>
    where
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await?;
        self.call(req).await
    }

    /// Puts `req` in the shape this connection's protocol needs.
    fn prepare(&self, mut req: Request<B>) -> Result<Request<B>, Error> {
        let target = self.info.target();
        let target_port = target
            .port_u16()
            .expect("the route stage makes the target's port explicit");
        if let Some(authority) = req.uri().authority() {
            // A request URI without a port means the target's: the connection
            // was made for this scheme's port already.
            if authority.host() != target.host()
                || authority.port_u16().unwrap_or(target_port) != target_port
            {
                return Err(self.fail(ErrorKind::Request).with_detail(format!(
                    "request for {authority} sent on a connection to {target}"
                )));
            }
        }
        match self.sender {
            Sender::Http1(_) => {
                if !req.headers().contains_key(HOST) {
                    let host = req
                        .uri()
                        .authority()
                        .map(|a| a.as_str())
                        .unwrap_or(target.as_str());
                    if let Ok(value) = HeaderValue::from_str(host) {
                        req.headers_mut().insert(HOST, value);
                    }
                }
                let path = take_path(&mut req);
                let forward = match self.info.proxy() {
                    Some(proxy) if self.info.route().is_forward() => Some(proxy),
                    _ => None,
                };
                match forward {
                    // RFC 9112 §3.2.2: a proxy gets absolute-form, and the
                    // proxy's headers (its credentials) go on every
                    // request, as `Proxies::forward_headers` gives them.
                    Some(proxy) => {
                        *req.uri_mut() = Uri::builder()
                            .scheme(Scheme::HTTP)
                            .authority(target.clone())
                            .path_and_query(path)
                            .build()
                            .map_err(|e| self.fail(ErrorKind::Request).with_source(e))?;
                        let headers = req.headers_mut();
                        headers.remove(PROXY_AUTHORIZATION);
                        proxy.append_forward_headers(headers);
                    }
                    // Through a tunnel or direct, the origin gets
                    // origin-form, and never the proxy's credentials.
                    None => {
                        *req.uri_mut() = Uri::from(path);
                        req.headers_mut().remove(PROXY_AUTHORIZATION);
                    }
                }
                if req.version() != Version::HTTP_10 {
                    *req.version_mut() = Version::HTTP_11;
                }
            }
            Sender::Http2(_) => {
                if req.uri().authority().is_none() {
                    let path = take_path(&mut req);
                    *req.uri_mut() = Uri::builder()
                        .scheme(if self.info.tls_version().is_some() {
                            Scheme::HTTPS
                        } else {
                            Scheme::HTTP
                        })
                        .authority(target.clone())
                        .path_and_query(path)
                        .build()
                        .map_err(|e| self.fail(ErrorKind::Request).with_source(e))?;
                }
                req.headers_mut().remove(PROXY_AUTHORIZATION);
                *req.version_mut() = Version::HTTP_2;
            }
        }
        Ok(req)
    }

    fn fail(&self, kind: ErrorKind) -> Error {
        request_error(kind, &self.info)
    }
}

/// The request's path and query, moved out of its URI (a clone would copy
/// a URI parsed from a string), `/` when it has none.
fn take_path<B>(req: &mut Request<B>) -> PathAndQuery {
    std::mem::take(req.uri_mut())
        .into_parts()
        .path_and_query
        .unwrap_or_else(|| PathAndQuery::from_static("/"))
}

fn request_error(kind: ErrorKind, info: &ConnectionInfo) -> Error {
    Error::new(kind, Some(Phase::Dispatch))
        .with_target(info.target())
        .with_proxy(info.route().proxy())
}

impl<B> fmt::Debug for HttpConnection<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConnection")
            .field("version", &self.version())
            .field("info", &self.info)
            .finish()
    }
}

impl<B> Service<Request<B>> for HttpConnection<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<hyper::body::Incoming>;
    type Error = Error;
    type Future = RequestFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let ready = match &mut self.sender {
            Sender::Http1(s) => s.poll_ready(cx),
            Sender::Http2(s) => s.poll_ready(cx),
        };
        ready.map_err(|e| self.fail(ErrorKind::Request).with_source(e))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let req = match self.prepare(req) {
            Ok(req) => req,
            Err(e) => return RequestFuture::new(async move { Err(e) }),
        };
        // The error is built only on failure; an `Arc` clone is all a
        // request costs up front.
        let info = self.info.clone();
        let fail = move |e: hyper::Error| request_error(ErrorKind::Request, &info).with_source(e);
        match &mut self.sender {
            Sender::Http1(s) => {
                let fut = s.send_request(req);
                RequestFuture::new(async move { fut.await.map_err(fail) })
            }
            Sender::Http2(s) => {
                let fut = s.send_request(req);
                RequestFuture::new(async move { fut.await.map_err(fail) })
            }
        }
    }
}

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http::header::PROXY_AUTHORIZATION;
use http::uri::Authority;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use tower_service::Service;

use super::future::ResponseFuture;
use crate::proxy::protocol::digest::{self, DigestChallenge};
use crate::route::{Proxies, Proxy};

/// Puts the proxy's headers on requests forwarded to an HTTP proxy; made by
/// [`ForwardProxyLayer`](crate::ForwardProxyLayer).
#[derive(Clone, Debug)]
pub struct ForwardProxy<S> {
    inner: S,
    proxies: Arc<Proxies>,
    digest: DigestCache,
}

impl<S> ForwardProxy<S> {
    pub(crate) fn new(inner: S, proxies: Arc<Proxies>, digest: DigestCache) -> Self {
        ForwardProxy {
            inner,
            proxies,
            digest,
        }
    }

    crate::macros::inner_service_accessors!("service below");
}

impl<S, B, R> Service<Request<B>> for ForwardProxy<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: Body + Default + Send + 'static,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // A rule that fails (a PAC script) fails the connection too, with
        // the error; the request needs no header of its own for that.
        let decision = self.proxies.decide(req.uri()).ok();
        let proxy = match decision.as_ref().and_then(|d| d.forward_proxy(req.uri())) {
            Some(proxy) => proxy.clone(),
            None => return ResponseFuture::new(self.inner.call(req)),
        };
        for (name, value) in &proxy.forward_headers() {
            req.headers_mut().insert(name, value.clone());
        }
        if let Some(answer) = self.digest.answer(&proxy, &req) {
            req.headers_mut().insert(PROXY_AUTHORIZATION, answer);
        }
        // Only a request with no body can be sent again: its head is copied
        // and the body made anew.
        let replay = (proxy.credentials().is_some() && req.body().size_hint().exact() == Some(0))
            .then(|| head_of(&req));
        let first = self.inner.call(req);
        let mut inner = self.inner.clone();
        let digest = self.digest.clone();
        ResponseFuture::new(async move {
            let res = first.await?;
            if res.status() != StatusCode::PROXY_AUTHENTICATION_REQUIRED
                || !digest.learn(&proxy, &res)
            {
                return Ok(res);
            }
            let Some(mut retry) = replay.map(|head| Request::from_parts(head, B::default())) else {
                return Ok(res);
            };
            let Some(answer) = digest.answer(&proxy, &retry) else {
                return Ok(res);
            };
            tracing::debug!(proxy = %proxy, "answering the proxy's Digest challenge");
            retry.headers_mut().insert(PROXY_AUTHORIZATION, answer);
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            inner.call(retry).await
        })
    }
}

/// A copy of the request's head, for sending it again.
fn head_of<B>(req: &Request<B>) -> http::request::Parts {
    let mut head = Request::new(()).into_parts().0;
    head.method = req.method().clone();
    head.uri = req.uri().clone();
    head.version = req.version();
    head.headers = req.headers().clone();
    head.extensions = req.extensions().clone();
    head
}

/// The Digest challenge last seen from each proxy, with its nonce count.
#[derive(Clone, Default)]
pub(crate) struct DigestCache {
    inner: Arc<Mutex<HashMap<Authority, Nonce>>>,
}

struct Nonce {
    challenge: DigestChallenge,
    count: u32,
}

impl fmt::Debug for DigestCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("DigestCache")
            .field("proxies", &map.len())
            .finish()
    }
}

impl DigestCache {
    /// Keeps the Digest challenge of a `407`, when `proxy` has credentials
    /// to answer it and it is new (a fresh nonce, or `stale=true`): says
    /// whether a retry is worth it.
    fn learn<R>(&self, proxy: &Proxy, res: &Response<R>) -> bool {
        if proxy.credentials().is_none() {
            return false;
        }
        let challenges: Vec<_> = res
            .headers()
            .get_all(http::header::PROXY_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(digest::parse_challenges)
            .collect();
        let Some(challenge) = digest::choose(&challenges) else {
            return false;
        };
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // The same nonce again, not stale: the credentials are wrong, and
        // a retry would only repeat the 407.
        if let Some(known) = map.get(proxy.authority()) {
            if known.challenge.nonce == challenge.nonce && !challenge.stale {
                return false;
            }
        }
        map.insert(
            proxy.authority().clone(),
            Nonce {
                challenge,
                count: 0,
            },
        );
        true
    }

    /// The Digest answer for `req` to `proxy`, if a challenge is known.
    fn answer<B>(&self, proxy: &Proxy, req: &Request<B>) -> Option<HeaderValue> {
        let creds = proxy.credentials()?;
        let (challenge, count) = {
            let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            let nonce = map.get_mut(proxy.authority())?;
            nonce.count = nonce.count.wrapping_add(1);
            (nonce.challenge.clone(), nonce.count)
        };
        let cnonce = digest::new_cnonce().ok()?;
        // The request-target as the client writes it: absolute-form.
        let uri = req.uri().to_string();
        digest::authorization(
            &challenge,
            &creds.user,
            &creds.password,
            req.method().as_str(),
            &uri,
            &cnonce,
            count,
        )
        .ok()
    }
}

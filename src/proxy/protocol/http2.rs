//! `CONNECT` over HTTP/2 (RFC 9113 §8.5): the request; hyper does the
//! framing, and the pool in `proxy::pool` keeps the connections.

use bytes::Bytes;
use http::uri::Authority;
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::Empty;

use crate::route::Proxy;

/// The `CONNECT` request for `target` (RFC 9113 §8.5: `:method` and
/// `:authority` only, no `:scheme` or `:path`), with the proxy's
/// credentials and extra headers.
pub(crate) fn connect_request(
    target: &Authority,
    proxy: &Proxy,
    authorization: Option<&HeaderValue>,
) -> Request<Empty<Bytes>> {
    let mut req = Request::new(Empty::new());
    *req.method_mut() = Method::CONNECT;
    *req.uri_mut() = Uri::from_maybe_shared(Bytes::copy_from_slice(target.as_str().as_bytes()))
        .expect("an authority is a valid authority-form URI");
    *req.version_mut() = http::Version::HTTP_2;
    let headers = req.headers_mut();
    if let Some(auth) = authorization.or(proxy.authorization()) {
        headers.insert(http::header::PROXY_AUTHORIZATION, auth.clone());
    }
    for (name, value) in proxy.headers() {
        headers.append(name, value.clone());
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_is_authority_form() {
        let proxy = Proxy::new("https://u:p@127.0.0.1:8443").unwrap();
        let target: Authority = "example.com:443".parse().unwrap();
        let req = connect_request(&target, &proxy, None);
        assert_eq!(req.method(), Method::CONNECT);
        assert_eq!(req.uri().authority(), Some(&target));
        assert!(req.uri().scheme().is_none());
        assert_eq!(req.uri().path_and_query(), None);
        assert!(req.headers()[http::header::PROXY_AUTHORIZATION].is_sensitive());
    }
}

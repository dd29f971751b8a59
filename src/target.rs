//! The target's authority, taken from the URI a connector is called with.

use http::uri::{Authority, Scheme};
use http::Uri;

use crate::error::{Error, ErrorKind};

/// Whether a target URI asks for TLS, and its `host:port` with the port
/// made explicit. `ws://` and `wss://` (RFC 6455 §3) are `http://` and
/// `https://` for the route: same ports, same TLS.
pub(crate) fn target_of(uri: &Uri) -> Result<(Authority, bool), Error> {
    let invalid = |why: &'static str| Error::new(ErrorKind::InvalidTarget, None).with_detail(why);
    let tls = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("wss") => true,
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("ws") => false,
        Some(_) => return Err(invalid("scheme must be http, https, ws or wss")),
        None => return Err(invalid("no scheme")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("no host"))?;
    if let Some(authority) = uri.authority() {
        // Already `host:port` with no userinfo: use it as it is.
        if authority.port().is_some() && !authority.as_str().contains('@') {
            return Ok((authority.clone(), tls));
        }
    }
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    // `Uri::host` keeps IPv6 brackets, so this is a valid authority again.
    let authority = format!("{host}:{port}")
        .parse()
        .map_err(|_| invalid("invalid host"))?;
    Ok((authority, tls))
}

/// `http://host:port/`: what a base connector is asked to dial.
pub(crate) fn dial_uri(authority: &Authority) -> Uri {
    Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority.clone())
        .path_and_query(http::uri::PathAndQuery::from_static("/"))
        .build()
        .expect("scheme http, a parsed authority and path / make a valid URI")
}

/// The host without IPv6 brackets, as SNI and certificate checks want it.
pub(crate) fn bare_host(authority: &Authority) -> &str {
    let host = authority.host();
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Whether TLS to the target runs over the route (`https://`, `wss://`).
pub(crate) fn is_tls(uri: &Uri) -> bool {
    uri.scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("wss"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_schemes() {
        let (a, tls) = target_of(&"https://example.com/x".parse().unwrap()).unwrap();
        assert_eq!((a.as_str(), tls), ("example.com:443", true));
        let (a, tls) = target_of(&"http://[::1]:8080".parse().unwrap()).unwrap();
        assert_eq!((a.as_str(), tls), ("[::1]:8080", false));
        assert_eq!(bare_host(&a), "::1");
        let (a, tls) = target_of(&"wss://example.com/chat".parse().unwrap()).unwrap();
        assert_eq!((a.as_str(), tls), ("example.com:443", true));
        let (a, tls) = target_of(&"ws://example.com/chat".parse().unwrap()).unwrap();
        assert_eq!((a.as_str(), tls), ("example.com:80", false));
        for bad in ["/just/a/path", "ftp://example.com/", "example.com:443"] {
            let uri: Uri = bad.parse().unwrap();
            assert_eq!(
                target_of(&uri).unwrap_err().kind(),
                ErrorKind::InvalidTarget,
                "{bad}"
            );
        }
    }
}

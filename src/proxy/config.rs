//! [`Proxy`]: one proxy's address, credentials and extra headers.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use percent_encoding::percent_decode_str;

use crate::error::{Error, ErrorKind};

/// An HTTP proxy that opens `CONNECT` tunnels.
///
/// Credentials come from the URL's userinfo (percent-decoded) or from
/// [`Proxy::with_basic_auth`]. They are kept only as a sensitive
/// `Proxy-Authorization` header value and never shown: `Debug` prints
/// `<redacted>`, and errors carry the proxy's host and port alone.
///
/// # Example
///
/// ```
/// use tower_tunnel::Proxy;
///
/// let proxy = Proxy::new("http://user:p%40ss@127.0.0.1:3128")?;
/// assert_eq!(proxy.authority().as_str(), "127.0.0.1:3128");
/// assert!(proxy.has_credentials());
/// assert!(!format!("{proxy:?}").contains("p@ss"));
/// # Ok::<(), tower_tunnel::Error>(())
/// ```
#[derive(Clone)]
pub struct Proxy {
    uri: Uri,
    authority: Authority,
    authorization: Option<HeaderValue>,
    headers: HeaderMap,
}

impl Proxy {
    /// Parses a proxy URL: `http://[user:password@]host[:port]`.
    ///
    /// A URL without a scheme is taken as `http://`; a missing port is 80.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidProxy`] when the URL does not parse, names
    /// another scheme, or has a path. The message never repeats the URL,
    /// since it may hold a password.
    pub fn new(url: &str) -> Result<Proxy, Error> {
        let invalid =
            |why: &'static str| Error::new(ErrorKind::InvalidProxy, None).with_detail(why);
        let with_scheme;
        let url = if url.contains("://") {
            url
        } else {
            with_scheme = format!("http://{url}");
            &with_scheme
        };
        let uri: Uri = url
            .parse()
            .map_err(|_| invalid("expected http://[user:password@]host[:port]"))?;
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
        if scheme != Scheme::HTTP {
            return Err(invalid("only http:// proxies are supported"));
        }
        if uri
            .path_and_query()
            .is_some_and(|p| p != "/" && !p.as_str().is_empty())
        {
            return Err(invalid("a proxy URL has no path"));
        }
        let full = uri.authority().ok_or_else(|| invalid("no host"))?.as_str();
        let (userinfo, hostport) = match full.rfind('@') {
            Some(at) => (Some(&full[..at]), &full[at + 1..]),
            None => (None, full),
        };
        if hostport.is_empty() || hostport.starts_with(':') {
            return Err(invalid("no host"));
        }
        let authority: Authority = if uri.port_u16().is_some() {
            hostport.parse()
        } else {
            format!("{hostport}:80").parse()
        }
        .map_err(|_| invalid("invalid host or port"))?;
        let dial = Uri::builder()
            .scheme(scheme)
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| invalid("invalid host or port"))?;
        let mut proxy = Proxy {
            uri: dial,
            authority,
            authorization: None,
            headers: HeaderMap::new(),
        };
        if let Some(userinfo) = userinfo {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let user = percent_decode_str(user)
                .decode_utf8()
                .map_err(|_| invalid("user name is not UTF-8"))?;
            let pass = percent_decode_str(pass)
                .decode_utf8()
                .map_err(|_| invalid("password is not UTF-8"))?;
            proxy = proxy.with_basic_auth(&user, &pass);
        }
        Ok(proxy)
    }

    /// Sets Basic credentials, replacing any from the URL.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Self {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        // Base64 output is always a valid header value.
        let mut value = HeaderValue::try_from(format!("Basic {token}"))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        value.set_sensitive(true);
        self.authorization = Some(value);
        self
    }

    /// Adds a header to every `CONNECT` request sent to this proxy.
    ///
    /// A `Proxy-Authorization` header set here is marked sensitive and
    /// replaces the credentials.
    pub fn with_header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        if name == http::header::PROXY_AUTHORIZATION {
            value.set_sensitive(true);
            self.authorization = Some(value);
        } else {
            self.headers.append(name, value);
        }
        self
    }

    /// The proxy's host and port.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The URI the base connector is asked to dial (no credentials).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Whether credentials are set.
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }

    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

impl FromStr for Proxy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Proxy::new(s)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Proxy");
        d.field("uri", &self.uri);
        if self.authorization.is_some() {
            d.field("authorization", &"<redacted>");
        }
        if !self.headers.is_empty() {
            d.field("headers", &self.headers);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let p = Proxy::new("127.0.0.1:3128").unwrap();
        assert_eq!(p.uri().to_string(), "http://127.0.0.1:3128/");
        let p = Proxy::new("http://proxy.corp").unwrap();
        assert_eq!(p.authority().as_str(), "proxy.corp:80");
        let p = Proxy::new("http://[::1]:8080/").unwrap();
        assert_eq!(p.authority().as_str(), "[::1]:8080");
        assert!(!p.has_credentials());
    }

    #[test]
    fn credentials_are_decoded_and_hidden() {
        let p = Proxy::new("http://Aladdin:open%20sesame@127.0.0.1:3128").unwrap();
        let auth = p.authorization().unwrap();
        assert_eq!(auth.as_bytes(), b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(auth.is_sensitive());
        let debug = format!("{p:?}");
        assert!(
            !debug.contains("sesame") && !debug.contains("QWxhZGRp"),
            "{debug}"
        );
        assert_eq!(p.authority().as_str(), "127.0.0.1:3128");
    }

    #[test]
    fn rejects_without_echoing_secrets() {
        for bad in [
            "socks5://u:secret@h:1",
            "http://u:secret@h:1/path",
            "http://u:secret@:1",
            "http://u:secret@h:99999",
        ] {
            let err = Proxy::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidProxy);
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("secret"), "{shown}");
        }
    }
}

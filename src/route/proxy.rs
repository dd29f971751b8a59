//! [`Proxy`]: one proxy's address, credentials and extra headers.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use base64::Engine as _;
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use percent_encoding::percent_decode_str;

use crate::error::{Error, ErrorKind};

/// What kind of proxy a [`Proxy`] is, from its URL's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyKind {
    /// `http://`: `CONNECT` tunnels, and forwarding for `http://` targets.
    Http,
    /// `https://`: as `Http`, inside TLS to the proxy; needs
    /// [`ProxyConnectLayer::with_proxy_tls`](crate::ProxyConnectLayer::with_proxy_tls).
    Https,
    /// `socks5://`: SOCKS5, the target's name resolved locally.
    Socks5,
    /// `socks5h://`: SOCKS5, the proxy resolves the target's name.
    Socks5h,
    /// `socks4a://`: SOCKS4a, the proxy resolves the target's name.
    Socks4a,
    /// `socks4://` (and `socks://`, as curl reads it): SOCKS4, the target's
    /// name resolved locally to an IPv4 address (SOCKS4 carries no other).
    Socks4,
}

impl ProxyKind {
    fn from_scheme(scheme: &str) -> Option<Self> {
        Some(match scheme.to_ascii_lowercase().as_str() {
            "http" => ProxyKind::Http,
            "https" => ProxyKind::Https,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            "socks4a" => ProxyKind::Socks4a,
            "socks4" | "socks" => ProxyKind::Socks4,
            _ => return None,
        })
    }

    fn default_port(self) -> u16 {
        match self {
            ProxyKind::Http => 80,
            ProxyKind::Https => 443,
            ProxyKind::Socks5 | ProxyKind::Socks5h | ProxyKind::Socks4a | ProxyKind::Socks4 => 1080,
        }
    }

    /// Whether this is a SOCKS proxy.
    pub fn is_socks(self) -> bool {
        matches!(
            self,
            ProxyKind::Socks5 | ProxyKind::Socks5h | ProxyKind::Socks4a | ProxyKind::Socks4
        )
    }

    /// The URL scheme: `http`, `https`, `socks5`, `socks5h`, `socks4a` or
    /// `socks4`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyKind::Http => "http",
            ProxyKind::Https => "https",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
            ProxyKind::Socks4a => "socks4a",
            ProxyKind::Socks4 => "socks4",
        }
    }
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether to speak HTTP/2 to an `https://` proxy: one TLS connection
/// carrying many `CONNECT` tunnels, one stream each (RFC 9113 §8.5).
///
/// Set per proxy with [`Proxy::with_http2`]. HTTP/2 needs TLS to the proxy
/// (ALPN picks it), so `http://` and SOCKS proxies always get HTTP/1.1 or
/// SOCKS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Http2Mode {
    /// Offer `h2` and `http/1.1`; HTTP/2 when the proxy selects `h2`.
    #[default]
    Auto,
    /// Offer `h2` and `http/1.1`; fail unless the proxy selects `h2`.
    Required,
    /// Offer `http/1.1` only: one TLS connection per tunnel.
    Never,
}

/// Which authentication scheme to use with an HTTP proxy, given
/// credentials; set with [`Proxy::with_auth`].
///
/// | mode | sent before the proxy asks | answered on a `407` |
/// |---|---|---|
/// | `Basic` (the default) | Basic | a Digest challenge |
/// | `Any` (curl's `--proxy-anyauth`) | nothing | the strongest scheme offered: Negotiate (feature `negotiate`), NTLM, Digest, Basic |
/// | `Digest` | nothing | Digest only; never Basic |
/// | `Ntlm` | the NTLM negotiate message | NTLM (NTLMv2), on the same connection |
/// | `Negotiate` | nothing | SPNEGO/Kerberos with the ticket from `kinit`, on the same connection |
///
/// The default saves a round trip but sends the password (Base64, not
/// encrypted) to whatever answers at the proxy's address, which an
/// `http://` proxy reached over an untrusted network can read; `Any` sends
/// nothing secret before the proxy names its schemes, at the cost of one
/// round trip for every tunnel. NTLM and Negotiate authenticate the
/// connection, not the request: the `CONNECT` handshake runs on one
/// connection, and HTTP/2 is never spoken to the proxy (HTTP/2 has no
/// connection-bound authentication). In every mode but `Basic`, `http://`
/// targets are tunnelled rather than forwarded: the scheme is negotiated
/// once, on the `CONNECT`, and the authenticated tunnel carries the
/// requests (for NTLM and Negotiate, the authenticated connection must be
/// the one that carries them; a proxy that allows `CONNECT` to port 443
/// only then refuses `http://` targets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyAuth {
    /// Basic up front; a Digest challenge is answered.
    #[default]
    Basic,
    /// The strongest scheme the proxy offers, nothing secret before it
    /// asks.
    Any,
    /// Digest (RFC 7616) only.
    Digest,
    /// NTLM (NTLMv2 only), connection-bound.
    Ntlm,
    /// Negotiate (SPNEGO, Kerberos; feature `negotiate`), connection-bound.
    Negotiate,
}

impl ProxyAuth {
    /// Whether the scheme authenticates the connection rather than each
    /// request.
    pub fn is_connection_bound(self) -> bool {
        matches!(self, ProxyAuth::Ntlm | ProxyAuth::Negotiate)
    }
}

/// A user name and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How a proxy is authenticated to: one value, so the credentials and the
/// header sent can never disagree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum Auth {
    /// No credentials.
    #[default]
    None,
    /// A user name and password: Basic up front to HTTP proxies (Digest
    /// when a `407` asks for it), RFC 1929 for SOCKS5, the user id for
    /// SOCKS4a. `basic` is the `Proxy-Authorization` value, made once.
    Credentials {
        credentials: Credentials,
        basic: HeaderValue,
    },
    /// A `Proxy-Authorization` value of the caller's own, sent as it is.
    Header(HeaderValue),
}

impl Auth {
    fn basic(user: &str, password: &str) -> Self {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut basic = HeaderValue::try_from(format!("Basic {token}"))
            .expect("`Basic ` and base64 are always a valid header value");
        basic.set_sensitive(true);
        Auth::Credentials {
            credentials: Credentials {
                user: user.to_owned(),
                password: password.to_owned(),
            },
            basic,
        }
    }
}

/// A proxy: HTTP (`CONNECT` and forwarding), HTTPS, SOCKS5 or SOCKS4a.
///
/// A plain value: its address, how to authenticate, the headers it gets and
/// how to speak to it. Cloning or rebuilding one changes nothing about the
/// connections made through it; the HTTP/2 connections to proxies are kept
/// by [`ProxyConnectLayer`](crate::ProxyConnectLayer), keyed by the proxy's
/// address and credentials.
///
/// Credentials come from the URL's userinfo (percent-decoded) or from
/// [`Proxy::with_basic_auth`]. They are never shown: `Debug` prints
/// `<redacted>`, errors carry the proxy's host and port alone, and the
/// `Proxy-Authorization` value is marked sensitive. HTTP proxies get Basic
/// credentials up front, and a `407` that asks for Digest (RFC 7616) is
/// answered on a fresh connection; SOCKS5 uses them for RFC 1929.
///
/// # Example
///
/// ```
/// use tower_tunnel::{Proxy, ProxyKind};
///
/// let proxy = Proxy::new("http://user:p%40ss@127.0.0.1:3128")?;
/// assert_eq!(proxy.authority().as_str(), "127.0.0.1:3128");
/// assert!(proxy.has_credentials());
/// assert!(!format!("{proxy:?}").contains("p@ss"));
///
/// let socks = Proxy::new("socks5h://127.0.0.1:1080")?;
/// assert_eq!(socks.kind(), ProxyKind::Socks5h);
/// # Ok::<(), tower_tunnel::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: ProxyKind,
    authority: Authority,
    auth: Auth,
    headers: HeaderMap,
    tunnel_http: bool,
    http2: Http2Mode,
    mode: ProxyAuth,
    socks_pipelining: bool,
    optimistic: bool,
    // The proxy this one is reached through (curl's `--preproxy`), if any.
    preproxy: Option<Box<Proxy>>,
}

/// How many proxies a chain may hold, the last one included: deep enough
/// for any real network, and a bound on the work one connection can cause.
pub(crate) const MAX_CHAIN: usize = 4;

impl Proxy {
    /// Parses a proxy URL: `scheme://[user:password@]host[:port]`, with
    /// scheme `http`, `https`, `socks5`, `socks5h`, `socks4a`, `socks4` or
    /// `socks` (SOCKS4, as curl reads it).
    ///
    /// A URL without a scheme is taken as `http://`, as curl does. A missing
    /// port is 80 for `http`, 443 for `https` and 1080 for SOCKS (curl uses
    /// 1080 for every scheme).
    ///
    /// The SOCKS kinds resolve the target as curl's do: `socks5://` and
    /// `socks4://` here (SOCKS4 to an IPv4 address only: a name with IPv6
    /// addresses alone is an `InvalidTarget` error, where curl reports that
    /// it could not resolve the host), `socks5h://` and `socks4a://` at the
    /// proxy. SOCKS4 and SOCKS4a send the user name as the user id; curl
    /// does the same.
    ///
    /// A bracketed host must be an IPv6 address (`[::1]`). A zone id
    /// (`[fe80::1%25eth0]`) is refused: the base connector is asked for
    /// `host:port` alone, which cannot carry it (curl accepts one).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidProxy`] when the URL does not parse, names
    /// another scheme, has a path, or brackets something that is not an
    /// IPv6 address. The message never repeats the URL,
    /// since it may hold a password.
    pub fn new(url: &str) -> Result<Proxy, Error> {
        let invalid =
            |why: &'static str| Error::new(ErrorKind::InvalidProxy, None).with_detail(why);
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme, rest),
            None => ("http", url),
        };
        let kind = ProxyKind::from_scheme(scheme).ok_or_else(|| {
            invalid("the scheme must be http, https, socks5, socks5h, socks4a, socks4 or socks")
        })?;
        // Everything up to the first `/`, `?` or `#` is the authority.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (full, path) = rest.split_at(end);
        if !path.is_empty() && path != "/" {
            return Err(invalid("a proxy URL has no path"));
        }
        let (userinfo, hostport) = match full.rfind('@') {
            Some(at) => (Some(&full[..at]), &full[at + 1..]),
            None => (None, full),
        };
        if hostport.is_empty() || hostport.starts_with(':') {
            return Err(invalid("no host"));
        }
        let has_port = match hostport.rfind(':') {
            Some(colon) => !hostport[colon..].contains(']'),
            None => false,
        };
        let authority: Authority = if has_port {
            hostport.parse()
        } else {
            format!("{hostport}:{}", kind.default_port()).parse()
        }
        .map_err(|_| invalid("invalid host or port"))?;
        if authority.port_u16().is_none() {
            return Err(invalid("invalid host or port"));
        }
        // `http::uri::Authority` takes anything in brackets; RFC 3986 §3.2.2
        // allows only an IP literal there. A zone id (RFC 6874) cannot
        // reach the base connector, which is given `host:port` alone.
        if let Some(literal) = authority.host().strip_prefix('[') {
            let literal = literal.strip_suffix(']').unwrap_or(literal);
            if literal.contains('%') {
                return Err(invalid("an IPv6 zone id is not supported in a proxy URL"));
            }
            if literal.parse::<Ipv6Addr>().is_err() {
                return Err(invalid("invalid IPv6 address"));
            }
        }
        let mut proxy = Proxy {
            kind,
            authority,
            auth: Auth::None,
            headers: HeaderMap::new(),
            tunnel_http: false,
            http2: Http2Mode::Auto,
            mode: ProxyAuth::Basic,
            socks_pipelining: false,
            optimistic: false,
            preproxy: None,
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

    /// Sets credentials, replacing any from the URL or an earlier
    /// `Proxy-Authorization` header: Basic for HTTP proxies (and Digest when
    /// the proxy asks for it), RFC 1929 for SOCKS5, the user id for SOCKS4a.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Auth::basic(user, password);
        self
    }

    /// How to authenticate with the credentials (default
    /// [`ProxyAuth::Basic`]); see [`ProxyAuth`] for what each mode sends.
    ///
    /// ```
    /// use tower_tunnel::{Proxy, ProxyAuth};
    ///
    /// // curl --proxy-anyauth: nothing secret until the proxy names its schemes.
    /// let proxy = Proxy::new("http://user:pass@proxy.corp:3128")?.with_auth(ProxyAuth::Any);
    /// assert_eq!(proxy.auth_mode(), ProxyAuth::Any);
    /// assert!(proxy.forward_headers().get("proxy-authorization").is_none());
    /// # Ok::<(), tower_tunnel::Error>(())
    /// ```
    pub fn with_auth(mut self, mode: ProxyAuth) -> Self {
        self.mode = mode;
        self
    }

    /// How the credentials are used; see [`Proxy::with_auth`].
    pub fn auth_mode(&self) -> ProxyAuth {
        self.mode
    }

    /// Adds a header to every request sent to this HTTP proxy (`CONNECT`,
    /// and forwarded requests).
    ///
    /// A `Proxy-Authorization` header set here is marked sensitive and
    /// replaces the credentials: it is sent as it is, and a `407` is not
    /// answered.
    pub fn with_header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        if name == http::header::PROXY_AUTHORIZATION {
            value.set_sensitive(true);
            self.auth = Auth::Header(value);
        } else {
            self.headers.append(name, value);
        }
        self
    }

    /// Opens `CONNECT` tunnels for `http://` targets too, instead of
    /// forwarding their requests in absolute-form (the default, as in curl
    /// and reqwest). `https://` targets always tunnel.
    pub fn with_http_tunneling(mut self, tunnel: bool) -> Self {
        self.tunnel_http = tunnel;
        self
    }

    /// Whether to speak HTTP/2 to this `https://` proxy (default
    /// [`Http2Mode::Auto`]: when its ALPN selects `h2`). Tunnels through
    /// the same proxy then share one connection, up to the proxy's
    /// concurrent-stream limit.
    pub fn with_http2(mut self, mode: Http2Mode) -> Self {
        self.http2 = mode;
        self
    }

    /// Reaches this proxy through `outer` (curl's `--preproxy`): the
    /// connection to this proxy's address is itself a tunnel through
    /// `outer`, a SOCKS proxy or another HTTP `CONNECT` proxy, and this
    /// proxy's `CONNECT` (and its TLS, for `https://`) runs inside it.
    /// `outer` may have a pre-proxy of its own, up to four proxies in all.
    ///
    /// Every hop's refusal is an error naming that hop: `proxy A refused
    /// CONNECT to B:3128: 403 Forbidden` for the outer one. An `https://`
    /// proxy reached through a chain is spoken to in HTTP/1.1.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_tunnel::Proxy;
    ///
    /// let proxy = Proxy::new("http://proxy.corp:3128")?
    ///     .with_preproxy(Proxy::new("socks5h://127.0.0.1:1080")?);
    /// assert_eq!(proxy.preproxy().unwrap().authority().as_str(), "127.0.0.1:1080");
    /// assert_eq!(proxy.to_string(), "http://proxy.corp:3128 through socks5h://127.0.0.1:1080");
    /// # Ok::<(), tower_tunnel::Error>(())
    /// ```
    pub fn with_preproxy(mut self, outer: Proxy) -> Self {
        self.preproxy = Some(Box::new(outer));
        self
    }

    /// Sends a SOCKS5 proxy the greeting, the username and password (when
    /// set) and the request in one write, saving one round trip (two with
    /// credentials) on every tunnel: SOCKS5 then costs what an HTTP
    /// `CONNECT` does. Off by default.
    ///
    /// Only one authentication method is offered (username/password with
    /// credentials, none without), since the messages after the greeting
    /// assume it. Not every server reads its input as a stream: Dante
    /// (`dante-server` 1.4) carries it; microsocks answers the greeting and
    /// drops the rest, so the tunnel fails when the `CONNECT` timeout runs
    /// out, with an error that says so (the interop suite checks both).
    pub fn with_socks_pipelining(mut self, pipelining: bool) -> Self {
        self.socks_pipelining = pipelining;
        self
    }

    /// Whether SOCKS5 messages are pipelined; see
    /// [`Proxy::with_socks_pipelining`].
    pub fn is_socks_pipelining(&self) -> bool {
        self.socks_pipelining && matches!(self.kind, ProxyKind::Socks5 | ProxyKind::Socks5h)
    }

    /// Sends the first bytes written to the tunnel (the `ClientHello` of
    /// the TLS handshake with the target) together with the tunnel request,
    /// instead of one round trip after it, and reads the proxy's answer
    /// before the first byte read from the tunnel: one round trip less on
    /// every new tunnel to an `https://` or `wss://` target (an HTTP
    /// `CONNECT` costs 3 round trips to the first response byte instead of
    /// 4; through an `https://` proxy, 4 instead of 5; a tunnel on an open
    /// HTTP/2 connection to the proxy, 2 instead of 3). Off by default.
    ///
    /// How the bytes go: in the same write as an HTTP/1.1 `CONNECT` (to an
    /// `http://` proxy, or to an `https://` proxy spoken to in HTTP/1.1);
    /// as DATA right after the HEADERS of an HTTP/2 `CONNECT` stream (on a
    /// new or a pooled connection to an `https://` proxy that selected
    /// `h2`); right after the SOCKS5 or SOCKS4 request (after the greeting
    /// and authentication, or in the same write as all of them with
    /// [`Proxy::with_socks_pipelining`]). `http://` targets through a
    /// tunnel, and the inner hops of a chain, do not use it.
    ///
    /// A refusal is the same error as without it, with the proxy's status,
    /// reason and headers ([`ErrorKind::ProxyRefused`],
    /// [`ErrorKind::ProxyAuthRequired`], phase `ProxyConnect`): it arrives
    /// during the TLS handshake, which reports it as it is. Nothing the
    /// proxy sends after its answer's head is taken for it (over HTTP/2 the
    /// answer is framed apart from the tunnel). The bytes sent after the
    /// request are never sent anywhere else: not to the next proxy of a
    /// list (the route is decided once the request is out), and not again
    /// after any answer or failure, with one exception: an HTTP/2 `CONNECT`
    /// stream the proxy says it never processed (reset with
    /// `REFUSED_STREAM`, or above the last stream id of its `GOAWAY`; RFC
    /// 9113 §8.7) is sent again once, as without the option, on a new
    /// stream to the same proxy for the same target, and the bytes written
    /// before the answer (the `ClientHello`; at most 64 KiB are kept) go
    /// behind it ([`ConnectionInfo::is_h2_retried`](crate::ConnectionInfo::is_h2_retried)
    /// tells). Over HTTP/1.1 and SOCKS the answer is read within the TLS
    /// handshake's timeout
    /// ([`TlsLayer::with_handshake_timeout`](crate::TlsLayer::with_handshake_timeout));
    /// over HTTP/2 within the connect timeout
    /// ([`ProxyConnectLayer::with_connect_timeout`](crate::ProxyConnectLayer::with_connect_timeout))
    /// as well, as without the option.
    /// [`Timings::proxy_connect`](crate::Timings::proxy_connect) is the
    /// time from the request's sending (or queueing) to its answer, and
    /// [`Timings::tls`](crate::Timings::tls) the rest of the handshake (the
    /// phases still add up to the whole);
    /// [`ConnectionInfo::proxy_response`](crate::ConnectionInfo::proxy_response)
    /// (and, for an HTTP/2 stream sent again, the route's stream id) is
    /// filled once the TLS handshake is done (a [`Routed`](crate::Routed)
    /// stream's info has neither before).
    ///
    /// It is used only with authentication that needs no challenge round:
    /// none, or Basic sent up front ([`ProxyAuth::Basic`], the default, where
    /// a `407` then is the error, as a Digest challenge cannot be answered),
    /// or a header set with [`Proxy::with_header`]. With
    /// [`ProxyAuth::Any`], [`ProxyAuth::Digest`] or the connection-bound
    /// [`ProxyAuth::Ntlm`] and [`ProxyAuth::Negotiate`] the setting is
    /// ignored.
    ///
    /// Real proxies checked in the interop suite (`tests/interop.rs`):
    /// squid (`CONNECT`, with and without Basic; its `407` and `403` are the
    /// same errors as without the option), tinyproxy, nghttpx (spoken to in
    /// HTTP/1.1, and in HTTP/2 on fresh and pooled connections; its `503`
    /// is the same error as without the option) and Dante (SOCKS4, SOCKS5,
    /// pipelined SOCKS5) carry it.
    /// microsocks does not: it reads the SOCKS5 request with one `recv` and
    /// drops what came with it, so the TLS handshake runs out of time, with
    /// an error that names this option. It stays off by default for every
    /// kind of proxy: a client cannot tell from the outside which server
    /// answers at an address, and a server that drops the bytes costs a
    /// whole TLS timeout instead of one round trip.
    pub fn with_optimistic_data(mut self, optimistic: bool) -> Self {
        self.optimistic = optimistic;
        self
    }

    /// Whether optimistic tunnel data is used with this proxy: set with
    /// [`Proxy::with_optimistic_data`], and an authentication mode that
    /// needs no challenge round.
    pub fn is_optimistic_data(&self) -> bool {
        self.optimistic && self.mode == ProxyAuth::Basic
    }

    /// The proxy this one is reached through; see [`Proxy::with_preproxy`].
    pub fn preproxy(&self) -> Option<&Proxy> {
        self.preproxy.as_deref()
    }

    /// Whether HTTP/2 is spoken to this proxy; see [`Proxy::with_http2`].
    pub fn http2(&self) -> Http2Mode {
        self.http2
    }

    /// What kind of proxy this is.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host and port.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Whether credentials (or a `Proxy-Authorization` header) are set.
    pub fn has_credentials(&self) -> bool {
        self.auth != Auth::None
    }

    /// Whether `http://` targets are tunnelled rather than forwarded.
    pub fn is_http_tunneling(&self) -> bool {
        self.tunnel_http
    }

    /// Whether a request for `uri` is forwarded to this proxy in
    /// absolute-form (an `http://` target through an HTTP or HTTPS proxy
    /// that does not tunnel it, authenticating with Basic or not at all),
    /// rather than tunnelled.
    pub fn forwards(&self, uri: &Uri) -> bool {
        // A negotiated scheme runs its handshake on the `CONNECT`, once per
        // connection, and the tunnel carries the requests.
        let negotiated = self.mode != ProxyAuth::Basic && self.credentials().is_some();
        matches!(self.kind, ProxyKind::Http | ProxyKind::Https)
            && !self.tunnel_http
            && !negotiated
            && uri.scheme() == Some(&Scheme::HTTP)
    }

    /// The headers every request forwarded to this proxy carries: its
    /// `Proxy-Authorization` (Basic, or your own) and the headers added with
    /// [`Proxy::with_header`]. Values are marked sensitive where they hold
    /// credentials.
    ///
    /// [`Proxies::forward_headers`](crate::Proxies::forward_headers) and
    /// [`ForwardProxyLayer`](crate::ForwardProxyLayer) put them on requests
    /// for you.
    pub fn forward_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        self.append_forward_headers(&mut headers);
        headers
    }

    /// Appends [`Proxy::forward_headers`] to a request's `headers`, with no
    /// map of their own in between: what a connection does per request.
    pub(crate) fn append_forward_headers(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        // `with_header` keeps `Proxy-Authorization` in `auth`, never in
        // `headers`, so there is one of it at most.
        if let Some(auth) = self.authorization() {
            headers.append(http::header::PROXY_AUTHORIZATION, auth.clone());
        }
    }

    /// The `Proxy-Authorization` sent before any challenge: Basic in the
    /// default mode, a caller's own header always.
    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        match &self.auth {
            Auth::None => None,
            Auth::Credentials { basic, .. } if self.mode == ProxyAuth::Basic => Some(basic),
            Auth::Credentials { .. } => None,
            Auth::Header(value) => Some(value),
        }
    }

    /// The Basic `Proxy-Authorization` of the credentials, whatever the
    /// mode: the answer to a Basic challenge.
    pub(crate) fn basic(&self) -> Option<&HeaderValue> {
        match &self.auth {
            Auth::Credentials { basic, .. } => Some(basic),
            _ => None,
        }
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The user name and password, for SOCKS and Digest.
    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        match &self.auth {
            Auth::Credentials { credentials, .. } => Some(credentials),
            _ => None,
        }
    }

    /// The headers added with [`Proxy::with_header`].
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

impl fmt::Display for Proxy {
    /// `scheme://host:port`, never the credentials, followed by
    /// ` through scheme://host:port` for each pre-proxy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.kind, self.authority)?;
        if let Some(outer) = &self.preproxy {
            write!(f, " through {outer}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Proxy");
        d.field("kind", &self.kind);
        d.field("authority", &self.authority);
        if self.has_credentials() {
            d.field("credentials", &"<redacted>");
        }
        if !self.headers.is_empty() {
            d.field("headers", &self.headers);
        }
        if self.tunnel_http {
            d.field("tunnel_http", &true);
        }
        if self.http2 != Http2Mode::Auto {
            d.field("http2", &self.http2);
        }
        if self.mode != ProxyAuth::Basic {
            d.field("auth", &self.mode);
        }
        if self.socks_pipelining {
            d.field("socks_pipelining", &true);
        }
        if self.optimistic {
            d.field("optimistic_data", &true);
        }
        if let Some(outer) = &self.preproxy {
            d.field("preproxy", outer);
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
        assert_eq!(
            (p.kind(), p.authority().as_str()),
            (ProxyKind::Http, "127.0.0.1:3128")
        );
        let p = Proxy::new("https://proxy.corp").unwrap();
        assert_eq!(
            (p.kind(), p.authority().as_str()),
            (ProxyKind::Https, "proxy.corp:443")
        );
        let p = Proxy::new("SOCKS5H://u:p@[::1]").unwrap();
        assert_eq!(
            (p.kind(), p.authority().as_str()),
            (ProxyKind::Socks5h, "[::1]:1080")
        );
        assert_eq!(p.to_string(), "socks5h://[::1]:1080");
        assert_eq!(p.credentials().unwrap().password, "p");
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
    fn one_auth_value() {
        let p = Proxy::new("http://a:b@127.0.0.1:3128").unwrap();
        let header = HeaderValue::from_static("Bearer t0ken");
        let p = p.with_header(http::header::PROXY_AUTHORIZATION, header.clone());
        // The header replaced the credentials: nothing can send both.
        assert!(p.credentials().is_none());
        assert_eq!(p.authorization(), Some(&header));
        let p = p.with_basic_auth("c", "d");
        assert_eq!(p.credentials().unwrap().user, "c");
        assert_eq!(p.authorization().unwrap().as_bytes(), b"Basic Yzpk");
        // A value: equal settings are equal proxies.
        assert_eq!(p.clone(), p);
    }

    #[test]
    fn forward_headers_carry_auth_and_extras() {
        let p = Proxy::new("http://u:p@127.0.0.1:3128")
            .unwrap()
            .with_header(
                HeaderName::from_static("x-trace"),
                HeaderValue::from_static("1"),
            );
        let h = p.forward_headers();
        assert_eq!(h["proxy-authorization"], "Basic dTpw");
        assert!(h["proxy-authorization"].is_sensitive());
        assert_eq!(h["x-trace"], "1");
        assert!(p.forwards(&"http://example.com/".parse().unwrap()));
        assert!(!p.forwards(&"https://example.com/".parse().unwrap()));
        assert!(!p
            .clone()
            .with_http_tunneling(true)
            .forwards(&"http://example.com/".parse().unwrap()));
        let socks = Proxy::new("socks5://127.0.0.1:1080").unwrap();
        assert!(!socks.forwards(&"http://example.com/".parse().unwrap()));
    }

    #[test]
    fn chains_show_no_secrets() {
        let p = Proxy::new("https://inner:s3cret1@proxy.corp:3128")
            .unwrap()
            .with_preproxy(Proxy::new("socks5h://outer:s3cret2@127.0.0.1:1080").unwrap());
        let shown = format!("{p} {p:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(
            p.to_string(),
            "https://proxy.corp:3128 through socks5h://127.0.0.1:1080"
        );
        assert_eq!(
            Proxy::new("socks://127.0.0.1").unwrap().kind(),
            ProxyKind::Socks4
        );
    }

    #[test]
    fn brackets_hold_an_ipv6_address() {
        for bad in [
            "http://[56FE::2159:5BBC::6594]",
            "http://[56FE::2159:5BBC::6594]:3128",
            "socks5h://[::1::2]:1080",
            "http://[127.0.0.1]:3128",
            "http://[proxy.corp]:3128",
            "http://[v1.x]:3128",
            "http://[]:3128",
            "http://[fe80::1%25eth0]:3128",
            "http://[fe80::1%eth0]",
            "[::g]:3128",
        ] {
            let err = Proxy::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidProxy, "{bad}");
        }
        let err = Proxy::new("http://[56FE::2159:5BBC::6594]").unwrap_err();
        assert_eq!(err.to_string(), "invalid proxy URL: invalid IPv6 address");
        for good in [
            "http://[::1]",
            "http://[56FE::2159:5BBC:6594]:3128",
            "[::ffff:10.0.0.1]:1",
        ] {
            assert!(Proxy::new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn rejects_without_echoing_secrets() {
        for bad in [
            "ftp://u:secret@h:1",
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

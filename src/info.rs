//! How a connection was made: route, ALPN, TLS version, resumption and the
//! time spent in each phase.
//!
//! Every stage stream carries a [`ConnectionInfo`], filled in as the
//! connection climbs the stack; it is this crate's counterpart of curl's
//! `-w` timing variables.
//!
//! # Example
//!
//! ```no_run
//! # async fn doc(conn: tower_tunnel::HttpConnection<http_body_util::Empty<bytes::Bytes>>) {
//! let info = conn.info();
//! println!("{} over {}", info.route(), info.alpn().unwrap_or("no ALPN"));
//! println!("TLS handshake took {:?}", info.timings().tls());
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;

use crate::error::ProxyResponse;
use crate::route::{Proxy, Skipped};

/// The way a connection reaches its target.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// Straight to the target: no proxy configured, or the target was
    /// exempted from proxying.
    Direct,
    /// Through an HTTP `CONNECT` tunnel opened by the proxy at `proxy`.
    Tunnel {
        /// The proxy's host and port (never its credentials).
        proxy: Authority,
    },
    /// Through a `CONNECT` tunnel that is one stream of an HTTP/2
    /// connection to the proxy at `proxy` (RFC 9113 §8.5), shared with the
    /// other tunnels to that proxy; see [`ConnectionInfo::shared_tunnels`].
    H2Tunnel {
        /// The proxy's host and port (never its credentials).
        proxy: Authority,
        /// The HTTP/2 stream identifier of the tunnel on that connection.
        stream: u32,
    },
    /// To an HTTP proxy that forwards each `http://` request, sent in
    /// absolute-form.
    Forward {
        /// The proxy's host and port.
        proxy: Authority,
    },
    /// Through a SOCKS5 proxy (`socks5://` or `socks5h://`).
    Socks5 {
        /// The proxy's host and port.
        proxy: Authority,
    },
    /// Through a SOCKS4a proxy.
    Socks4a {
        /// The proxy's host and port.
        proxy: Authority,
    },
    /// Through a SOCKS4 proxy, the target resolved here to IPv4.
    Socks4 {
        /// The proxy's host and port.
        proxy: Authority,
    },
}

impl Route {
    /// The proxy this route goes through, if any.
    pub fn proxy(&self) -> Option<&Authority> {
        match self {
            Route::Direct => None,
            Route::Tunnel { proxy }
            | Route::H2Tunnel { proxy, .. }
            | Route::Forward { proxy }
            | Route::Socks5 { proxy }
            | Route::Socks4a { proxy }
            | Route::Socks4 { proxy } => Some(proxy),
        }
    }

    /// Whether requests go to a forwarding proxy in absolute-form.
    pub fn is_forward(&self) -> bool {
        matches!(self, Route::Forward { .. })
    }

    /// Whether the connection goes straight to the target.
    pub fn is_direct(&self) -> bool {
        matches!(self, Route::Direct)
    }

    /// Whether the tunnel is one stream of an HTTP/2 connection to the
    /// proxy.
    pub fn is_h2_tunnel(&self) -> bool {
        matches!(self, Route::H2Tunnel { .. })
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Direct => f.write_str("direct"),
            Route::Tunnel { proxy } => write!(f, "tunnel via {proxy}"),
            Route::H2Tunnel { proxy, stream } => {
                write!(f, "tunnel via h2 proxy {proxy} (stream {stream})")
            }
            Route::Forward { proxy } => write!(f, "forward via {proxy}"),
            Route::Socks5 { proxy } => write!(f, "SOCKS5 via {proxy}"),
            Route::Socks4a { proxy } => write!(f, "SOCKS4a via {proxy}"),
            Route::Socks4 { proxy } => write!(f, "SOCKS4 via {proxy}"),
        }
    }
}

/// Time spent in each phase of making a connection.
///
/// A phase that did not happen (no proxy, no TLS for `http://`) is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    pub(crate) dial: Option<Duration>,
    pub(crate) proxy_tls: Option<Duration>,
    pub(crate) proxy_connect: Option<Duration>,
    pub(crate) tls: Option<Duration>,
    pub(crate) http_handshake: Option<Duration>,
}

impl Timings {
    /// TCP (or the base connector) to the first hop: the proxy, or the
    /// target on a direct route.
    pub fn dial(&self) -> Option<Duration> {
        self.dial
    }

    /// The TLS handshake with an `https://` proxy, when one was made for
    /// this connection (not for a tunnel on an HTTP/2 proxy connection
    /// that was already open).
    pub fn proxy_tls(&self) -> Option<Duration> {
        self.proxy_tls
    }

    /// From sending `CONNECT` to the end of the proxy's answer (or the
    /// SOCKS handshake). With [optimistic data](crate::Proxy::with_optimistic_data),
    /// from queueing the request to reading the answer during the TLS
    /// handshake; [`Timings::tls`] is then the rest of the handshake.
    pub fn proxy_connect(&self) -> Option<Duration> {
        self.proxy_connect
    }

    /// The TLS handshake with the target.
    pub fn tls(&self) -> Option<Duration> {
        self.tls
    }

    /// The HTTP/1.1 or HTTP/2 handshake.
    pub fn http_handshake(&self) -> Option<Duration> {
        self.http_handshake
    }

    /// The sum of all phases that happened.
    pub fn total(&self) -> Duration {
        [
            self.dial,
            self.proxy_tls,
            self.proxy_connect,
            self.tls,
            self.http_handshake,
        ]
        .into_iter()
        .flatten()
        .sum()
    }
}

/// Everything known about how a connection was made.
///
/// Reachable from [`Routed::info`](crate::Routed::info),
/// [`TlsStream::info`](crate::TlsStream::info) and
/// [`HttpConnection::info`](crate::HttpConnection::info); hyper-util's
/// `Client` also puts a copy in each response's extensions.
#[derive(Clone)]
pub struct ConnectionInfo {
    pub(crate) target: Authority,
    pub(crate) route: Route,
    // The proxy the route goes through: a value, shared with the rules.
    pub(crate) proxy: Option<Arc<Proxy>>,
    // The proxy's answer to the `CONNECT` that opened the tunnel.
    pub(crate) proxy_response: Option<ProxyResponse>,
    // The authentication scheme that opened it: "Basic", "NTLM", ...
    pub(crate) proxy_auth: Option<&'static str>,
    pub(crate) alpn: Option<Cow<'static, [u8]>>,
    pub(crate) tls_version: Option<rustls::ProtocolVersion>,
    pub(crate) resumed: bool,
    pub(crate) timings: Timings,
    // The open tunnels on the HTTP/2 proxy connection this one runs over.
    pub(crate) h2_shared: Option<Arc<AtomicUsize>>,
    // The first CONNECT went unprocessed (GOAWAY, REFUSED_STREAM) and was
    // sent again on a fresh proxy connection.
    pub(crate) h2_retried: bool,
    // The connection's `tower_tunnel::connect` span: every layer's phase
    // events go under it.
    pub(crate) span: tracing::Span,
    pub(crate) skipped: Vec<Skipped>,
}

impl PartialEq for ConnectionInfo {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target
            && self.route == other.route
            && self.proxy == other.proxy
            && self.alpn == other.alpn
            && self.tls_version == other.tls_version
            && self.resumed == other.resumed
            && self.timings == other.timings
            && self.skipped == other.skipped
    }
}

impl Eq for ConnectionInfo {}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("target", &self.target)
            .field("route", &self.route)
            .field("proxy", &self.proxy)
            .field(
                "proxy_status",
                &self.proxy_response.as_ref().map(ProxyResponse::status),
            )
            .field("alpn", &self.alpn())
            .field("tls_version", &self.tls_version)
            .field("resumed", &self.resumed)
            .field("timings", &self.timings)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl ConnectionInfo {
    pub(crate) fn new(target: Authority, route: Route) -> Self {
        ConnectionInfo {
            target,
            route,
            proxy: None,
            proxy_response: None,
            proxy_auth: None,
            alpn: None,
            tls_version: None,
            resumed: false,
            timings: Timings::default(),
            h2_shared: None,
            h2_retried: false,
            span: tracing::Span::none(),
            skipped: Vec::new(),
        }
    }

    /// The target's host and port.
    pub fn target(&self) -> &Authority {
        &self.target
    }

    /// How the connection reaches the target.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// The hops of the proxy list passed over on the way to this route,
    /// with why: those this connection tried and could not reach, in the
    /// order tried, then those it did not try because they failed lately.
    /// Empty for a single proxy, or when the first hop of the rule's list
    /// answered and no hop of it had failed lately.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The proxy the route goes through, as the rules gave it; `None` for a
    /// direct route. Its `Debug` and `Display` never show credentials.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_deref()
    }

    /// The authentication scheme the proxy accepted for this tunnel
    /// (`"Basic"`, `"Digest"`, `"NTLM"`, `"Negotiate"`); `None` when no
    /// credentials were sent, or they were a header of your own.
    pub fn proxy_auth(&self) -> Option<&str> {
        self.proxy_auth
    }

    /// The proxy's answer to the `CONNECT` that opened this tunnel: status,
    /// reason and headers (squid's `Via`, a proxy's session or trace
    /// headers). `None` for routes with no `CONNECT` (direct, forwarded,
    /// SOCKS).
    pub fn proxy_response(&self) -> Option<&ProxyResponse> {
        self.proxy_response.as_ref()
    }

    /// The ALPN protocol the target selected (`"h2"`, `"http/1.1"`), if any.
    pub fn alpn(&self) -> Option<&str> {
        self.alpn
            .as_deref()
            .and_then(|p| std::str::from_utf8(p).ok())
    }

    /// Whether the target selected HTTP/2 by ALPN.
    pub fn is_h2(&self) -> bool {
        self.alpn.as_deref() == Some(&b"h2"[..])
    }

    /// The TLS version negotiated with the target; `None` for `http://`.
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        self.tls_version
    }

    /// Whether the TLS handshake resumed an earlier session.
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// Time spent in each phase.
    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// For a tunnel over an HTTP/2 proxy connection
    /// ([`Route::H2Tunnel`]): how many tunnels, this one included, are open
    /// on that connection right now. `None` for every other route.
    pub fn shared_tunnels(&self) -> Option<usize> {
        self.h2_shared.as_ref().map(|n| n.load(Ordering::Acquire))
    }

    /// For a tunnel over an HTTP/2 proxy connection: whether its `CONNECT`
    /// was sent a second time, on a pooled proxy connection with room (a
    /// fresh one after `GOAWAY`), because the
    /// proxy said it never processed the first (a `GOAWAY` whose last
    /// stream id is below it, or `RST_STREAM` with `REFUSED_STREAM`; RFC
    /// 9113 §8.7). `false` for every other route.
    pub fn is_h2_retried(&self) -> bool {
        self.h2_retried
    }
}

impl fmt::Display for ConnectionInfo {
    /// One line in the manner of `curl -w`:
    /// `localhost:443 via tunnel via 127.0.0.1:3128, h2, TLSv1_3 (resumed), dial 1ms ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.target, self.route)?;
        let mut outer = self.proxy().and_then(Proxy::preproxy);
        while let Some(hop) = outer {
            write!(f, " through {}://{}", hop.kind(), hop.authority())?;
            outer = hop.preproxy();
        }
        for skipped in &self.skipped {
            write!(f, ", skipped {} ({})", skipped.hop(), skipped.reason())?;
        }
        if let Some(n) = self.shared_tunnels() {
            write!(f, ", {n} tunnels on the connection")?;
        }
        if let Some(scheme) = self.proxy_auth {
            write!(f, ", proxy auth {scheme}")?;
        }
        if let Some(alpn) = self.alpn() {
            write!(f, ", alpn {alpn}")?;
        }
        if let Some(v) = self.tls_version {
            write!(f, ", {v:?}")?;
            if self.resumed {
                f.write_str(" (resumed)")?;
            }
        }
        let t = &self.timings;
        for (name, d) in [
            ("dial", t.dial),
            ("proxy-tls", t.proxy_tls),
            ("connect", t.proxy_connect),
            ("tls", t.tls),
            ("http", t.http_handshake),
        ] {
            if let Some(d) = d {
                write!(f, ", {name} {:.1}ms", d.as_secs_f64() * 1e3)?;
            }
        }
        Ok(())
    }
}

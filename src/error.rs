//! The crate's error type.
//!
//! One [`Error`] for every layer. [`Error::kind`] says what went wrong,
//! [`Error::phase`] where, and [`Error::proxy`] / [`Error::target`] between
//! whom. `Display` shows this level only, in words a person can act on; the
//! underlying cause (an `io::Error`, a rustls or hyper error) is reached
//! through [`std::error::Error::source`]. An error from a lower layer passes
//! up unchanged, so the first phase that failed is the one reported.
//!
//! No proxy credentials are ever stored in an error.
//!
//! # Example
//!
//! ```
//! use tower_tunnel::{Error, ErrorKind, Phase};
//!
//! fn explain(err: &Error) -> &'static str {
//!     match (err.kind(), err.phase()) {
//!         (ErrorKind::ProxyAuthRequired, _) => "set proxy credentials",
//!         (ErrorKind::Timeout, Some(Phase::ProxyConnect)) => "the proxy is not answering",
//!         (ErrorKind::Tls, _) => "check the target's certificate",
//!         _ => "see the error message",
//!     }
//! }
//! # let _ = explain;
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::uri::Authority;
use http::{HeaderMap, StatusCode};

pub(crate) use crate::BoxError;

/// The phase of making a connection in which an error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Connecting to the first hop (the proxy, or the target when direct).
    Dial,
    /// The TLS handshake with an `https://` proxy.
    ProxyTls,
    /// The `CONNECT` exchange with the proxy (or the SOCKS handshake).
    ProxyConnect,
    /// The TLS handshake with the target.
    Tls,
    /// The HTTP/1.1 or HTTP/2 handshake, or a request on the connection.
    Dispatch,
    /// Running a PAC script's `FindProxyForURL` to decide the route
    /// (feature `pac`); nothing was dialed yet.
    Pac,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Dial => "dial",
            Phase::ProxyTls => "proxy TLS handshake",
            Phase::ProxyConnect => "proxy CONNECT",
            Phase::Tls => "TLS handshake",
            Phase::Dispatch => "HTTP",
            Phase::Pac => "PAC script",
        })
    }
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The proxy URL could not be used (bad syntax, unsupported scheme).
    InvalidProxy,
    /// The target URI has no host, or a scheme other than `http`/`https`.
    InvalidTarget,
    /// The base connector could not reach the first hop.
    Dial,
    /// A phase took longer than its timeout; see [`Error::phase`].
    Timeout,
    /// The proxy answered `407 Proxy Authentication Required`; its
    /// challenges are in [`ProxyResponse::challenges`].
    ProxyAuthRequired,
    /// The proxy refused the `CONNECT` with a status other than 2xx or 407,
    /// or a SOCKS proxy refused the connection (its reply code is in the
    /// message).
    ProxyRefused,
    /// A SOCKS5 proxy rejected the username and password.
    ProxyAuthFailed,
    /// The proxy closed the connection before answering.
    ProxyClosed,
    /// The proxy closed the connection in the middle of its answer.
    ProxyTruncated,
    /// The proxy's answer exceeded the header size or count cap.
    ProxyHeadersTooLarge,
    /// The proxy's answer is not HTTP (garbage, or a TLS record from an
    /// `https://` proxy addressed as `http://`).
    ProxyMalformed,
    /// The proxy answered with an HTTP version other than 1.0 or 1.1.
    ProxyBadVersion,
    /// Reading or writing failed in the middle of a phase.
    Io,
    /// The TLS handshake with the target failed.
    Tls,
    /// The TLS handshake with an `https://` proxy failed.
    ProxyTls,
    /// The target did not select an ALPN protocol this client can speak.
    AlpnMismatch,
    /// The HTTP/1.1 or HTTP/2 handshake failed.
    Handshake,
    /// A request on an established connection failed.
    Request,
    /// An `https://` proxy set to [`Http2Mode::Required`](crate::Http2Mode::Required)
    /// did not select ALPN `h2`.
    ProxyAlpnMismatch,
    /// The route goes through an `https://` proxy, and
    /// [`ProxyConnectLayer`](crate::ProxyConnectLayer) has no TLS config for
    /// proxies: nothing was dialed. Set one with
    /// [`ProxyConnectLayer::with_proxy_tls`](crate::ProxyConnectLayer::with_proxy_tls).
    ProxyTlsNotConfigured,
    /// A PAC script could not be compiled, does not define
    /// `FindProxyForURL`, or threw (a thrown `null` is
    /// [`ErrorKind::PacOutOfMemory`]); the message gives the script's error.
    /// A script that runs past its time budget is a [`ErrorKind::Timeout`]
    /// in [`Phase::Pac`] instead.
    PacScript,
    /// A PAC script ran out of its memory limit (or threw `null`, which
    /// QuickJS throws when it cannot allocate even an error).
    PacOutOfMemory,
    /// A PAC script answered something that is not a proxy list (or not a
    /// string); the message quotes the answer.
    PacAnswer,
    /// A PAC script could not be fetched: the message names the URL
    /// (without credentials or query), and the HTTP status if one came.
    PacFetch,
    /// The operating system's proxy settings could not be read or used:
    /// the settings tool failed, a setting is malformed, or the settings
    /// name a PAC script this build cannot run. The message names the
    /// source (`GNOME settings`, `KDE kioslaverc`, `Windows Internet
    /// Settings`, `macOS network settings`) and the setting.
    SystemSettings,
}

/// The protocol spoken to a proxy, where an error's message depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProxyProtocol {
    Socks5,
    Socks4a,
    Socks4,
}

impl ProxyProtocol {
    fn as_str(self) -> &'static str {
        match self {
            ProxyProtocol::Socks5 => "SOCKS5",
            ProxyProtocol::Socks4a => "SOCKS4a",
            ProxyProtocol::Socks4 => "SOCKS4",
        }
    }
}

/// The head of a proxy's answer to `CONNECT`: kept in an [`Error`] for a
/// refusal, and in the [`ConnectionInfo`](crate::ConnectionInfo) of a tunnel
/// it opened (squid's `Via`, a proxy's session or trace headers).
#[derive(Clone, Debug)]
pub struct ProxyResponse {
    pub(crate) status: StatusCode,
    pub(crate) reason: Option<String>,
    pub(crate) headers: HeaderMap,
}

impl ProxyResponse {
    pub(crate) fn new(status: StatusCode, reason: Option<String>, headers: HeaderMap) -> Self {
        ProxyResponse {
            status,
            reason,
            headers,
        }
    }

    /// The status code, such as `407` or `502`.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase as the proxy sent it, if any.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The `Proxy-Authenticate` challenges of a 407, in order.
    pub fn challenges(&self) -> impl Iterator<Item = &str> {
        self.headers
            .get_all(http::header::PROXY_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
    }
}

/// An error from any layer of the stack.
///
/// See the [module docs](crate::error).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    phase: Option<Phase>,
    proxy: Option<Authority>,
    target: Option<Authority>,
    response: Option<ProxyResponse>,
    detail: Option<Cow<'static, str>>,
    timeout: Option<Duration>,
    // `None` for HTTP proxies, whose messages are the default.
    protocol: Option<ProxyProtocol>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, phase: Option<Phase>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                phase,
                proxy: None,
                target: None,
                response: None,
                detail: None,
                timeout: None,
                protocol: None,
                source: None,
            }),
        }
    }

    pub(crate) fn with_proxy(mut self, proxy: Option<&Authority>) -> Self {
        self.inner.proxy = proxy.cloned();
        self
    }

    pub(crate) fn with_target(mut self, target: &Authority) -> Self {
        self.inner.target = Some(target.clone());
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.inner.detail = Some(detail.into());
        self
    }

    pub(crate) fn with_detail_opt(self, detail: Option<String>) -> Self {
        match detail {
            Some(d) => self.with_detail(d),
            None => self,
        }
    }

    /// Fills in the proxy and the target where the error does not name
    /// them yet: each layer calls it once, on its way out, so the sites
    /// that make errors need not.
    pub(crate) fn in_context(mut self, proxy: Option<&Authority>, target: &Authority) -> Self {
        if self.inner.proxy.is_none() {
            self.inner.proxy = proxy.cloned();
        }
        if self.inner.target.is_none() {
            self.inner.target = Some(target.clone());
        }
        self
    }
    /// Prefixes the detail with where the bad value came from (an
    /// environment variable's name, never its value).
    pub(crate) fn with_detail_prefix(mut self, prefix: &str) -> Self {
        let detail = match self.inner.detail.take() {
            Some(d) => format!("{prefix}: {d}"),
            None => prefix.to_owned(),
        };
        self.inner.detail = Some(detail.into());
        self
    }

    /// Appends to the detail (what else was tried, say).
    pub(crate) fn with_detail_suffix(mut self, suffix: &str) -> Self {
        let detail = match self.inner.detail.take() {
            Some(d) => format!("{d}; {suffix}"),
            None => suffix.to_owned(),
        };
        self.inner.detail = Some(detail.into());
        self
    }

    pub(crate) fn with_protocol(mut self, protocol: ProxyProtocol) -> Self {
        self.inner.protocol = Some(protocol);
        self
    }

    pub(crate) fn with_response(mut self, response: ProxyResponse) -> Self {
        self.inner.response = Some(response);
        self
    }

    /// Gives an error that belongs to no phase yet (an I/O failure the
    /// tunnel reported, say) the phase it surfaced in.
    pub(crate) fn or_phase(mut self, phase: Phase) -> Self {
        self.inner.phase.get_or_insert(phase);
        self
    }

    pub(crate) fn timeout(phase: Phase, after: Duration) -> Self {
        let mut e = Error::new(ErrorKind::Timeout, Some(phase));
        e.inner.timeout = Some(after);
        e
    }

    /// Wraps an inner service's error: a `tower_tunnel::Error` from a lower
    /// layer passes through unchanged, anything else becomes `kind`.
    pub(crate) fn from_inner(
        err: impl Into<BoxError>,
        kind: ErrorKind,
        phase: Phase,
    ) -> Result<Self, Self> {
        match err.into().downcast::<Error>() {
            Ok(e) => Err(*e),
            Err(other) => Ok(Error::new(kind, Some(phase)).with_source(other)),
        }
    }

    /// Wraps the error of the service below: a `tower_tunnel::Error` passes
    /// through unchanged, anything else is a [`ErrorKind::Dial`] failure.
    pub(crate) fn from_below(err: impl Into<BoxError>) -> Self {
        Error::from_inner(err, ErrorKind::Dial, Phase::Dial).unwrap_or_else(|passed| passed)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The phase that failed; `None` for configuration errors.
    pub fn phase(&self) -> Option<Phase> {
        self.inner.phase
    }

    /// The proxy involved (host and port only, never credentials).
    pub fn proxy(&self) -> Option<&Authority> {
        self.inner.proxy.as_ref()
    }

    /// The target the connection was for.
    pub fn target(&self) -> Option<&Authority> {
        self.inner.target.as_ref()
    }

    /// The proxy's answer, for [`ErrorKind::ProxyRefused`] and
    /// [`ErrorKind::ProxyAuthRequired`].
    pub fn proxy_response(&self) -> Option<&ProxyResponse> {
        self.inner.response.as_ref()
    }

    /// The proxy's status code, when it refused the `CONNECT`.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.response.as_ref().map(|r| r.status)
    }

    /// Whether a phase timed out.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// Whether the proxy refused the `CONNECT` (any non-2xx answer).
    pub fn is_proxy_refusal(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::ProxyRefused | ErrorKind::ProxyAuthRequired
        )
    }

    /// ` for target`, when the error names one.
    fn for_target(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.target {
            Some(t) => write!(f, " for {t}"),
            None => Ok(()),
        }
    }

    fn via(&self) -> ViaProxy<'_> {
        ViaProxy(self.inner.proxy.as_ref())
    }

    fn target_str(&self) -> &str {
        self.inner
            .target
            .as_ref()
            .map_or("the target", |t| t.as_str())
    }
}

struct ViaProxy<'a>(Option<&'a Authority>);

impl fmt::Display for ViaProxy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, " via proxy {p}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let target = self.target_str();
        let proxy = i.proxy.as_ref().map_or("", |p| p.as_str());
        let detail = i.detail.as_deref();
        if let Some(p) = i.protocol {
            if let Some(done) = self.fmt_socks(f, p.as_str(), proxy, target) {
                done?;
                if let Some(detail) = detail {
                    write!(f, ": {detail}")?;
                }
                return Ok(());
            }
        }
        match i.kind {
            ErrorKind::InvalidProxy => write!(f, "invalid proxy URL")?,
            ErrorKind::InvalidTarget => write!(f, "invalid target URI")?,
            ErrorKind::Dial => match i.proxy {
                Some(_) => write!(f, "could not connect to proxy {proxy} for {target}")?,
                None => write!(f, "could not connect to {target}")?,
            },
            ErrorKind::Timeout => {
                let after = i.timeout.unwrap_or_default();
                match i.phase {
                    Some(Phase::Dial) if i.proxy.is_some() => {
                        write!(f, "connecting to proxy {proxy} timed out after {after:?}")?
                    }
                    Some(Phase::ProxyTls) => {
                        write!(f, "TLS handshake with proxy {proxy} timed out after {after:?}")?
                    }
                    Some(Phase::ProxyConnect) => write!(
                        f,
                        "proxy {proxy} did not answer CONNECT to {target} within {after:?}"
                    )?,
                    Some(Phase::Tls) => write!(
                        f,
                        "TLS handshake with {target}{} timed out after {after:?}",
                        self.via()
                    )?,
                    Some(Phase::Dispatch) => write!(
                        f,
                        "HTTP handshake with {target}{} timed out after {after:?}",
                        self.via()
                    )?,
                    Some(Phase::Pac) => {
                        write!(f, "the PAC script ran past its budget of {after:?}")?;
                        self.for_target(f)?
                    }
                    _ => write!(f, "connecting to {target} timed out after {after:?}")?,
                }
            }
            ErrorKind::ProxyAuthRequired | ErrorKind::ProxyRefused => {
                write!(f, "proxy {proxy} refused CONNECT to {target}")?;
                if let Some(r) = &i.response {
                    write!(f, ": {}", r.status.as_u16())?;
                    let reason = r
                        .reason
                        .as_deref()
                        .filter(|s| !s.is_empty())
                        .or_else(|| r.status.canonical_reason());
                    if let Some(reason) = reason {
                        write!(f, " {reason}")?;
                    }
                    let mut challenges = r.challenges().peekable();
                    if challenges.peek().is_some() {
                        f.write_str(" (")?;
                        for (n, c) in challenges.enumerate() {
                            if n > 0 {
                                f.write_str(", ")?;
                            }
                            write_challenge(f, c)?;
                        }
                        f.write_str(")")?;
                    }
                }
            }
            ErrorKind::ProxyAuthFailed => write!(
                f,
                "proxy {proxy} rejected the credentials for CONNECT to {target}"
            )?,
            ErrorKind::ProxyClosed => write!(
                f,
                "proxy {proxy} closed the connection without answering CONNECT to {target}"
            )?,
            ErrorKind::ProxyTruncated => write!(
                f,
                "proxy {proxy} closed the connection in the middle of its answer to CONNECT to {target}"
            )?,
            ErrorKind::ProxyHeadersTooLarge => write!(
                f,
                "proxy {proxy} answer to CONNECT to {target} is too large"
            )?,
            ErrorKind::ProxyMalformed => write!(
                f,
                "proxy {proxy} sent a malformed answer to CONNECT to {target}"
            )?,
            ErrorKind::ProxyBadVersion => write!(
                f,
                "proxy {proxy} answered CONNECT to {target} with an unsupported HTTP version"
            )?,
            ErrorKind::Io => match i.phase {
                Some(Phase::ProxyConnect) => write!(
                    f,
                    "I/O error during CONNECT to {target} via proxy {proxy}"
                )?,
                Some(phase) => write!(f, "I/O error in {phase} with {target}{}", self.via())?,
                None => write!(f, "I/O error with {target}{}", self.via())?,
            },
            ErrorKind::Tls => write!(f, "TLS handshake with {target}{} failed", self.via())?,
            ErrorKind::ProxyTls => write!(f, "TLS handshake with proxy {proxy} failed")?,
            ErrorKind::AlpnMismatch => write!(f, "{target} selected no usable ALPN protocol")?,
            ErrorKind::Handshake => {
                write!(f, "HTTP handshake with {target}{} failed", self.via())?
            }
            ErrorKind::Request => write!(f, "request to {target}{} failed", self.via())?,
            ErrorKind::ProxyAlpnMismatch => write!(
                f,
                "proxy {proxy} did not select HTTP/2 (ALPN h2) for CONNECT to {target}"
            )?,
            ErrorKind::PacScript => {
                f.write_str("the PAC script failed")?;
                self.for_target(f)?
            }
            ErrorKind::PacOutOfMemory => {
                f.write_str("the PAC script ran out of memory")?;
                self.for_target(f)?
            }
            ErrorKind::PacAnswer => {
                f.write_str("the PAC script gave an unusable answer")?;
                self.for_target(f)?
            }
            ErrorKind::PacFetch => f.write_str("could not fetch the PAC script")?,
            ErrorKind::ProxyTlsNotConfigured => write!(
                f,
                "proxy {proxy} for {target} is an https:// proxy, and ProxyConnectLayer has no TLS config for proxies (set one with ProxyConnectLayer::with_proxy_tls)"
            )?,
            ErrorKind::SystemSettings => write!(f, "cannot use the system proxy settings")?,
        }
        if let Some(detail) = detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl Error {
    /// The message of a SOCKS proxy error, or `None` for kinds that read
    /// the same for every proxy.
    fn fmt_socks(
        &self,
        f: &mut fmt::Formatter<'_>,
        p: &str,
        proxy: &str,
        target: &str,
    ) -> Option<fmt::Result> {
        Some(match self.inner.kind {
            ErrorKind::ProxyRefused => {
                write!(f, "{p} proxy {proxy} refused the connection to {target}")
            }
            ErrorKind::ProxyAuthRequired => write!(
                f,
                "{p} proxy {proxy} requires credentials for the connection to {target}"
            ),
            ErrorKind::ProxyAuthFailed => write!(
                f,
                "{p} proxy {proxy} rejected the credentials for the connection to {target}"
            ),
            ErrorKind::ProxyMalformed => write!(
                f,
                "{p} proxy {proxy} sent a malformed reply for the connection to {target}"
            ),
            ErrorKind::ProxyClosed => write!(
                f,
                "{p} proxy {proxy} closed the connection without answering for {target}"
            ),
            ErrorKind::ProxyTruncated => write!(
                f,
                "{p} proxy {proxy} closed the connection in the middle of its reply for {target}"
            ),
            _ => return None,
        })
    }
}

/// A `Proxy-Authenticate` value as a message shows it: an NTLM or
/// Negotiate token (a handshake message, which a log must not keep) is
/// shown as `<token>`.
fn write_challenge(f: &mut fmt::Formatter<'_>, challenge: &str) -> fmt::Result {
    let (scheme, rest) = challenge.split_once(' ').unwrap_or((challenge, ""));
    let connection_bound = ["NTLM", "Negotiate", "Kerberos"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s));
    if connection_bound && !rest.trim().is_empty() {
        write!(f, "{scheme} <token>")
    } else {
        f.write_str(challenge)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let mut d = f.debug_struct("tower_tunnel::Error");
        d.field("kind", &i.kind);
        if let Some(phase) = &i.phase {
            d.field("phase", phase);
        }
        if let Some(proxy) = &i.proxy {
            d.field("proxy", proxy);
        }
        if let Some(target) = &i.target {
            d.field("target", target);
        }
        if let Some(r) = &i.response {
            d.field("status", &r.status);
        }
        if let Some(detail) = &i.detail {
            d.field("detail", detail);
        }
        if let Some(source) = &i.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|e| &**e as &(dyn std::error::Error + 'static))
    }
}

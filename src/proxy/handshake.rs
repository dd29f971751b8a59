//! Proxy authentication for one tunnel: what the `CONNECT` carries first,
//! and how each `407` is answered, per the proxy's [`ProxyAuth`] mode.
//!
//! Per-request schemes (Basic, Digest) are answered on a fresh connection,
//! as RFC 7235 allows; connection-bound ones (NTLM, Negotiate) go on on the
//! same connection, which the caller keeps by reading each refusal's body
//! to its end.

use http::uri::Authority;
use http::HeaderValue;

use super::protocol::auth::{self, Scheme, Schemes};
use super::protocol::{digest, ntlm};
use crate::error::{Error, ErrorKind, Phase, ProxyResponse};
use crate::route::{Auth, Proxy, ProxyAuth};

/// The next `CONNECT` of a handshake.
pub(crate) struct Step {
    /// The `Proxy-Authorization` it carries.
    pub(crate) authorization: HeaderValue,
    /// Whether it must go on the connection that carried the challenge.
    pub(crate) same_connection: bool,
}

/// Where a tunnel's authentication stands.
pub(crate) struct Handshake<'a> {
    proxy: &'a Proxy,
    target: &'a Authority,
    state: State,
    // The scheme of the last `Proxy-Authorization` sent.
    used: Option<&'static str>,
}

enum State {
    /// Nothing answered yet.
    Start,
    /// A per-request scheme answered once; another `407` is final.
    Answered,
    /// NTLM negotiate sent; the challenge comes next.
    NtlmNegotiated,
    /// NTLM authenticate sent; another `407` is final.
    NtlmDone,
    #[cfg(all(feature = "negotiate", unix))]
    Negotiate(Box<super::protocol::negotiate::NegotiateContext>),
}

impl<'a> Handshake<'a> {
    pub(crate) fn new(proxy: &'a Proxy, target: &'a Authority) -> Self {
        Handshake {
            proxy,
            target,
            state: State::Start,
            used: None,
        }
    }

    /// The scheme of the last `Proxy-Authorization` sent: the one that
    /// authenticated the tunnel, once it is open. `None` for no credentials
    /// or a header of the caller's own.
    pub(crate) fn scheme(&self) -> Option<&'static str> {
        self.used
    }

    /// What the first `CONNECT` carries: Basic in the default mode (or the
    /// caller's own header), the NTLM negotiate message in `Ntlm` mode,
    /// nothing otherwise.
    pub(crate) fn start(&mut self) -> Option<HeaderValue> {
        if self.proxy.auth_mode() == ProxyAuth::Ntlm && self.proxy.credentials().is_some() {
            self.state = State::NtlmNegotiated;
            self.used = Some(Scheme::Ntlm.as_str());
            return Some(ntlm::negotiate_header());
        }
        if matches!(self.proxy.auth(), Auth::Credentials { .. }) {
            self.used = self.proxy.authorization().map(|_| Scheme::Basic.as_str());
        }
        self.proxy.authorization().cloned()
    }

    /// Starts over, for a new connection after the proxy closed one
    /// mid-handshake.
    pub(crate) fn restart(&mut self) -> Option<HeaderValue> {
        self.state = State::Start;
        self.used = None;
        self.start()
    }

    /// The answer to a `407`, or `None` when there is nothing (more) to
    /// answer with: the refusal is then the error.
    pub(crate) async fn answer(&mut self, refusal: &ProxyResponse) -> Result<Option<Step>, Error> {
        let Some(creds) = self.proxy.credentials() else {
            // No credentials, or a header of the caller's own: not answered.
            #[cfg(all(feature = "negotiate", unix))]
            if self.proxy.auth_mode() == ProxyAuth::Negotiate
                || self.proxy.auth_mode() == ProxyAuth::Any
            {
                return self.negotiate(refusal).await;
            }
            return Ok(None);
        };
        let challenges = auth::challenges(refusal.headers());
        match std::mem::replace(&mut self.state, State::Answered) {
            State::NtlmNegotiated => {
                let challenge = ntlm::Challenge::from_challenges(&challenges)
                    .map_err(|e| handshake_error("NTLM", "reading the challenge", e))?;
                let credentials = ntlm::NtlmCredentials::parse(&creds.user, &creds.password);
                let authorization = ntlm::authenticate_header(&challenge, &credentials)
                    .map_err(|e| handshake_error("NTLM", "making the authenticate message", e))?;
                self.state = State::NtlmDone;
                return Ok(Some(Step {
                    authorization,
                    same_connection: true,
                }));
            }
            State::Start => {}
            #[cfg(all(feature = "negotiate", unix))]
            State::Negotiate(ctx) => {
                self.state = State::Negotiate(ctx);
                return self.negotiate(refusal).await;
            }
            // Answered once already: the proxy refused the answer.
            State::Answered | State::NtlmDone => return Ok(None),
        }
        let allowed = match self.proxy.auth_mode() {
            // Basic went first; a Digest challenge is answered.
            ProxyAuth::Basic => Schemes::from(Scheme::Digest),
            ProxyAuth::Digest => Schemes::from(Scheme::Digest),
            ProxyAuth::Ntlm => Schemes::from(Scheme::Ntlm),
            ProxyAuth::Any => Schemes::ALL,
            ProxyAuth::Negotiate => Schemes::NONE,
            // A mode this version does not know answers nothing.
            #[allow(unreachable_patterns)]
            _ => Schemes::NONE,
        };
        #[cfg(all(feature = "negotiate", unix))]
        let allowed = match self.proxy.auth_mode() {
            ProxyAuth::Negotiate => Schemes::from(Scheme::Negotiate),
            _ => allowed,
        };
        match auth::choose(&challenges, allowed) {
            None => Ok(None),
            Some(Scheme::Basic) => {
                tracing::debug!("answering the proxy's Basic challenge");
                self.used = Some(Scheme::Basic.as_str());
                Ok(self.proxy.basic().cloned().map(|authorization| Step {
                    authorization,
                    same_connection: false,
                }))
            }
            Some(Scheme::Digest) => {
                tracing::debug!("answering the proxy's Digest challenge");
                let Some(challenge) = digest::choose(&challenges) else {
                    return Ok(None);
                };
                let cnonce = digest::new_cnonce().map_err(|e| {
                    Error::new(ErrorKind::Io, Some(Phase::ProxyConnect))
                        .with_detail(format!("no randomness for the Digest cnonce: {e}"))
                })?;
                let authorization = digest::authorization(
                    &challenge,
                    &creds.user,
                    &creds.password,
                    "CONNECT",
                    self.target.as_str(),
                    &cnonce,
                    1,
                )
                .map_err(|e| handshake_error("Digest", "answering the challenge", e))?;
                self.used = Some(Scheme::Digest.as_str());
                Ok(Some(Step {
                    authorization,
                    same_connection: false,
                }))
            }
            Some(Scheme::Ntlm) => {
                tracing::debug!("starting the NTLM handshake the proxy asked for");
                self.state = State::NtlmNegotiated;
                self.used = Some(Scheme::Ntlm.as_str());
                Ok(Some(Step {
                    authorization: ntlm::negotiate_header(),
                    same_connection: true,
                }))
            }
            #[cfg(all(feature = "negotiate", unix))]
            Some(Scheme::Negotiate) => self.negotiate(refusal).await,
        }
    }

    /// One step of SPNEGO: a context from the ticket cache on the first
    /// `407`, then each server token fed to it.
    #[cfg(all(feature = "negotiate", unix))]
    async fn negotiate(&mut self, refusal: &ProxyResponse) -> Result<Option<Step>, Error> {
        use super::protocol::negotiate::{self, NegotiateContext};
        let challenges = auth::challenges(refusal.headers());
        let offered = challenges
            .iter()
            .any(|c| c.scheme.eq_ignore_ascii_case(negotiate::SCHEME));
        let state = std::mem::replace(&mut self.state, State::Answered);
        let (mut ctx, server) = match state {
            State::Negotiate(ctx) => {
                let token = negotiate::server_token(&challenges)
                    .map_err(|e| handshake_error("Negotiate", "reading the proxy's token", e))?;
                // A bare `Negotiate` after our token: refused.
                let Some(token) = token else { return Ok(None) };
                (ctx, Some(token))
            }
            State::Start if offered => {
                let host = crate::target::bare_host(self.proxy.authority()).to_owned();
                let ctx = NegotiateContext::new(&host)
                    .map_err(|e| handshake_error("Negotiate", "naming the proxy's service", e))?;
                (Box::new(ctx), None)
            }
            other => {
                self.state = other;
                return Ok(None);
            }
        };
        // GSSAPI may talk to the KDC: off the async runtime.
        let (ctx, token) = tokio::task::spawn_blocking(move || {
            let token = ctx.step(server.as_deref());
            (ctx, token)
        })
        .await
        .map_err(|e| {
            Error::new(ErrorKind::Io, Some(Phase::ProxyConnect))
                .with_detail("the GSSAPI task failed")
                .with_source(e)
        })?;
        let token = token.map_err(|e| {
            let step = if e.is_no_credentials() {
                "with no Kerberos ticket (run kinit)"
            } else {
                "making a token"
            };
            handshake_error("Negotiate", step, e)
        })?;
        self.state = State::Negotiate(ctx);
        self.used = Some(negotiate::SCHEME);
        Ok(token.map(|t| Step {
            authorization: negotiate::header(&t),
            same_connection: true,
        }))
    }
}

/// A handshake that cannot go on: the scheme and the step are in the
/// message, the cause is the source (and never holds a token).
fn handshake_error(
    scheme: &'static str,
    step: &'static str,
    source: impl Into<crate::error::BoxError>,
) -> Error {
    Error::new(ErrorKind::ProxyAuthFailed, Some(Phase::ProxyConnect))
        .with_detail(format!("{scheme} handshake failed {step}"))
        .with_source(source)
}

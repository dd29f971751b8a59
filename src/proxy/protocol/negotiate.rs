//! Negotiate proxy authentication (RFC 4559): SPNEGO with Kerberos through
//! the platform's GSSAPI (MIT krb5 or Heimdal, by `libgssapi`), from the
//! user's ticket cache (`kinit`, or `KRB5CCNAME`): no password is involved.
//!
//! A [`NegotiateContext`] names the service `HTTP@<proxy host>`, which
//! GSSAPI turns into `HTTP/<host>@REALM` as `krb5.conf` says (its
//! `dns_canonicalize_hostname` and `rdns`), and [`NegotiateContext::step`]
//! makes each token: the first goes in `Proxy-Authorization: Negotiate
//! <base64>` ([`header`]); a token in the proxy's answer
//! ([`server_token`]) goes back into `step`. Like NTLM, Negotiate
//! authenticates the connection, so one context serves one connection.
//!
//! `step` may ask the KDC for a service ticket: blocking network I/O, so
//! an async caller runs it in `tokio::task::spawn_blocking` (the context is
//! `Send`).
//!
//! Unix only: on Windows the same exchange is SSPI's, which this module
//! does not implement. Errors carry GSSAPI's own text for the major and
//! minor status ("No Kerberos credentials available ...", "Server not found
//! in Kerberos database"), never a token.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::HeaderValue;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext as _};
use libgssapi::error::{Error as GssError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE};

use super::digest::Challenge;

/// The scheme name in `Proxy-Authenticate` and `Proxy-Authorization`.
pub(crate) const SCHEME: &str = "Negotiate";

/// Which GSSAPI call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// `gss_import_name` of `HTTP@host`.
    ImportName,
    /// `gss_init_sec_context`: the ticket cache, the KDC, or the server's
    /// token.
    InitContext,
}

/// Why a Negotiate step failed. Never holds a token.
#[derive(Clone, Debug)]
pub(crate) enum NegotiateError {
    /// GSSAPI failed; `message` is its text for the major and minor status,
    /// read when the call failed (MIT keeps the minor's details per thread).
    Gss {
        stage: Stage,
        major: u32,
        minor: u32,
        message: String,
    },
    /// The proxy's token is not base64.
    Base64,
}

impl NegotiateError {
    fn gss(stage: Stage, e: GssError) -> Self {
        NegotiateError::Gss {
            stage,
            major: e.major.bits(),
            minor: e.minor,
            message: e.to_string().trim().to_owned(),
        }
    }

    /// Whether GSSAPI said there are no usable credentials: no ticket
    /// cache, or expired tickets (run `kinit`).
    pub(crate) fn is_no_credentials(&self) -> bool {
        match self {
            NegotiateError::Gss { major, message, .. } => {
                let major = MajorFlags::from_bits_retain(*major);
                major.intersects(MajorFlags::GSS_S_NO_CRED | MajorFlags::GSS_S_CREDENTIALS_EXPIRED)
                    // MIT reports a missing cache as GSS_S_FAILURE with this
                    // minor text.
                    || message.contains("No Kerberos credentials available")
            }
            NegotiateError::Base64 => false,
        }
    }
}

impl fmt::Display for NegotiateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NegotiateError::Gss {
                stage,
                message,
                major,
                minor,
            } => {
                let call = match stage {
                    Stage::ImportName => "could not name the proxy's service",
                    Stage::InitContext => "could not make a Negotiate token",
                };
                write!(
                    f,
                    "GSSAPI {call}: {message} (major {major:#x}, minor {minor})"
                )
            }
            NegotiateError::Base64 => f.write_str("the proxy's Negotiate token is not base64"),
        }
    }
}

impl std::error::Error for NegotiateError {}

/// One SPNEGO security context with the proxy, client side.
pub(crate) struct NegotiateContext {
    ctx: ClientCtx,
    service: String,
    steps: u32,
}

impl NegotiateContext {
    /// A context for the service `HTTP@proxy_host`, with the default
    /// credentials (the ticket cache). Nothing is read or sent yet.
    ///
    /// # Errors
    ///
    /// [`NegotiateError::Gss`] when GSSAPI cannot import the name.
    pub(crate) fn new(proxy_host: &str) -> Result<Self, NegotiateError> {
        // An IPv6 literal comes bracketed from a URI; the name has none.
        let host = proxy_host.trim_start_matches('[').trim_end_matches(']');
        let service = format!("HTTP@{host}");
        let name = Name::new(service.as_bytes(), Some(GSS_NT_HOSTBASED_SERVICE))
            .map_err(|e| NegotiateError::gss(Stage::ImportName, e))?;
        // No mutual authentication: the proxy's final token rarely comes
        // (a 2xx to CONNECT carries none), and a plain-HTTP hop to the
        // proxy is not protected by it anyway. SPNEGO, not raw Kerberos,
        // is what RFC 4559 servers expect.
        let ctx = ClientCtx::new(None, name, CtxFlags::empty(), Some(GSS_MECH_SPNEGO));
        Ok(NegotiateContext {
            ctx,
            service,
            steps: 0,
        })
    }

    /// One step: `None` first, then each token the proxy answered with.
    /// `Ok(Some(token))` is the next token to send; `Ok(None)` means the
    /// context is complete and there is nothing more to send.
    ///
    /// # Errors
    ///
    /// [`NegotiateError::Gss`]: no ticket cache or expired tickets (see
    /// [`NegotiateError::is_no_credentials`]), an unknown service
    /// principal, an unreachable KDC, or a bad token from the proxy.
    pub(crate) fn step(
        &mut self,
        server_token: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, NegotiateError> {
        self.steps += 1;
        match self.ctx.step(server_token, None) {
            Ok(Some(token)) => Ok(Some(token.to_vec())),
            Ok(None) => Ok(None),
            Err(e) => Err(NegotiateError::gss(Stage::InitContext, e)),
        }
    }

    /// Whether GSSAPI considers the context established.
    pub(crate) fn is_complete(&self) -> bool {
        self.ctx.is_complete()
    }

    /// The service name asked for, `HTTP@host`.
    #[cfg(test)]
    pub(crate) fn service(&self) -> &str {
        &self.service
    }
}

impl fmt::Debug for NegotiateContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NegotiateContext")
            .field("service", &self.service)
            .field("steps", &self.steps)
            .field("complete", &self.is_complete())
            .finish()
    }
}

/// `Negotiate <base64 token>`, marked sensitive (a token can be replayed
/// within its lifetime).
pub(crate) fn header(token: &[u8]) -> HeaderValue {
    let mut value = HeaderValue::try_from(format!("{SCHEME} {}", STANDARD.encode(token)))
        .expect("`Negotiate ` and base64 are always a valid header value");
    value.set_sensitive(true);
    value
}

/// The proxy's token in its challenges: the first `Negotiate <token>`.
/// `Ok(None)` when `Negotiate` comes bare (the start, or a refusal after
/// the last step) or not at all.
///
/// # Errors
///
/// [`NegotiateError::Base64`] for a token that is not base64.
pub(crate) fn server_token<'a>(
    challenges: impl IntoIterator<Item = &'a Challenge>,
) -> Result<Option<Vec<u8>>, NegotiateError> {
    for c in challenges {
        if c.scheme.eq_ignore_ascii_case(SCHEME) {
            if let Some(token) = &c.token68 {
                return STANDARD
                    .decode(token)
                    .map(Some)
                    .map_err(|_| NegotiateError::Base64);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::protocol::digest::parse_challenges;

    #[test]
    fn names_the_http_service() {
        let ctx = NegotiateContext::new("proxy.corp.example").unwrap();
        assert_eq!(ctx.service(), "HTTP@proxy.corp.example");
        assert!(!ctx.is_complete());
        assert_eq!(
            format!("{ctx:?}"),
            "NegotiateContext { service: \"HTTP@proxy.corp.example\", steps: 0, complete: false }"
        );
        let ctx = NegotiateContext::new("[::1]").unwrap();
        assert_eq!(ctx.service(), "HTTP@::1");
    }

    #[test]
    fn no_ticket_cache_is_a_typed_error() {
        // No realm knows HTTP/proxy.invalid: without a ticket cache (CI)
        // or with one (the interop lab's), the first step fails.
        let mut ctx = NegotiateContext::new("proxy.invalid").unwrap();
        match ctx.step(None) {
            Err(e @ NegotiateError::Gss { .. }) => {
                let text = e.to_string();
                assert!(
                    text.starts_with("GSSAPI could not make a Negotiate token: "),
                    "{text}"
                );
                assert!(!text.ends_with('.'), "{text}");
                let NegotiateError::Gss { stage, major, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(*stage, Stage::InitContext);
                assert_ne!(*major, 0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn header_and_server_token() {
        let h = header(b"\x60\x82token");
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Negotiate YIJ0b2tlbg==");
        let c = parse_challenges("Basic realm=\"x\", Negotiate YIJ0b2tlbg==");
        assert_eq!(
            server_token(&c).unwrap().as_deref(),
            Some(&b"\x60\x82token"[..])
        );
        let c = parse_challenges("Negotiate, NTLM");
        assert_eq!(server_token(&c).unwrap(), None);
        let c = parse_challenges("Negotiate abc");
        assert!(matches!(server_token(&c), Err(NegotiateError::Base64)));
        assert_eq!(
            NegotiateError::Base64.to_string(),
            "the proxy's Negotiate token is not base64"
        );
    }

    #[test]
    fn context_is_send() {
        fn send<T: Send + 'static>() {}
        send::<NegotiateContext>();
        send::<NegotiateError>();
    }
}

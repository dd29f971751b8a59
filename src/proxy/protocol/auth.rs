//! Which proxy authentication scheme answers a `407`, as curl's
//! `--proxy-anyauth` picks one: every `Proxy-Authenticate` challenge is
//! read, and the strongest scheme that the proxy offers, this client can
//! answer and the caller allows wins. Strongest first: Negotiate (with the
//! `negotiate` feature, on Unix), NTLM, Digest, Basic.
//!
//! A Digest challenge counts only when [`digest::choose`] can answer it (a
//! known algorithm, `qop=auth` or none), so a proxy offering
//! `Digest algorithm=SHA-512-256, Basic` gets Basic, not a dead end.

use std::fmt;

use http::header::PROXY_AUTHENTICATE;
use http::HeaderMap;

use super::digest::{self, Challenge};

/// A proxy authentication scheme this client can answer, weakest first, so
/// the strongest of several is their maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Scheme {
    /// RFC 7617: the password in every request, base64.
    Basic,
    /// RFC 7616: a hash of the password per nonce.
    Digest,
    /// MS-NLMP, NTLMv2: a handshake on one connection.
    Ntlm,
    /// RFC 4559: SPNEGO/Kerberos from the user's ticket cache, no password.
    #[cfg(all(feature = "negotiate", unix))]
    Negotiate,
}

impl Scheme {
    /// The scheme's name as it is written in the headers.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Basic => "Basic",
            Scheme::Digest => "Digest",
            Scheme::Ntlm => "NTLM",
            #[cfg(all(feature = "negotiate", unix))]
            Scheme::Negotiate => "Negotiate",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Scheme::Basic => 1,
            Scheme::Digest => 2,
            Scheme::Ntlm => 4,
            #[cfg(all(feature = "negotiate", unix))]
            Scheme::Negotiate => 8,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of schemes the caller allows (curl's `--proxy-basic`,
/// `--proxy-digest`, `--proxy-ntlm`, `--proxy-negotiate`, or
/// `--proxy-anyauth` for [`Schemes::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Schemes(u8);

impl Schemes {
    /// Nothing allowed.
    pub(crate) const NONE: Schemes = Schemes(0);
    /// Every scheme this build can answer.
    pub(crate) const ALL: Schemes = Schemes(0xff);

    /// This set with `scheme` added.
    pub(crate) const fn with(self, scheme: Scheme) -> Schemes {
        Schemes(self.0 | scheme.bit())
    }

    /// This set without `scheme`.
    #[cfg(test)]
    pub(crate) const fn without(self, scheme: Scheme) -> Schemes {
        Schemes(self.0 & !scheme.bit())
    }

    pub(crate) const fn contains(self, scheme: Scheme) -> bool {
        self.0 & scheme.bit() != 0
    }
}

impl From<Scheme> for Schemes {
    fn from(scheme: Scheme) -> Schemes {
        Schemes::NONE.with(scheme)
    }
}

/// Every challenge of every `Proxy-Authenticate` header, in order. A value
/// that is not UTF-8 is read lossily (a realm in Latin-1 stays readable).
pub(crate) fn challenges(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(PROXY_AUTHENTICATE)
        .iter()
        .flat_map(|v| digest::parse_challenges(&String::from_utf8_lossy(v.as_bytes())))
        .collect()
}

/// The strongest scheme among `challenges` that this client can answer
/// and `allowed` permits; `None` when there is none.
pub(crate) fn choose(challenges: &[Challenge], allowed: Schemes) -> Option<Scheme> {
    let offered = |name: &str| {
        challenges
            .iter()
            .any(|c| c.scheme.eq_ignore_ascii_case(name))
    };
    let candidates = [Scheme::Basic, Scheme::Ntlm].into_iter();
    #[cfg(all(feature = "negotiate", unix))]
    let candidates = candidates.chain([Scheme::Negotiate]);
    let mut best = candidates
        .filter(|&s| allowed.contains(s) && offered(s.as_str()))
        .max();
    if allowed.contains(Scheme::Digest) && digest::choose(challenges).is_some() {
        best = best.max(Some(Scheme::Digest));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn pick(value: &str, allowed: Schemes) -> Option<Scheme> {
        choose(&digest::parse_challenges(value), allowed)
    }

    const DIGEST: &str = r#"Digest realm="corp", nonce="abc", qop="auth""#;

    #[test]
    fn strongest_offered_wins_whatever_the_order() {
        let all = Schemes::ALL;
        assert_eq!(pick(r#"Basic realm="corp""#, all), Some(Scheme::Basic));
        assert_eq!(
            pick(&format!(r#"Basic realm="corp", {DIGEST}"#), all),
            Some(Scheme::Digest)
        );
        assert_eq!(
            pick(&format!(r#"{DIGEST}, Basic realm="corp""#), all),
            Some(Scheme::Digest)
        );
        assert_eq!(
            pick(&format!(r#"Basic realm="corp", {DIGEST}, NTLM"#), all),
            Some(Scheme::Ntlm)
        );
        assert_eq!(pick(&format!("ntlm, {DIGEST}"), all), Some(Scheme::Ntlm));
        #[cfg(all(feature = "negotiate", unix))]
        assert_eq!(
            pick(
                &format!(r#"NTLM, Negotiate, {DIGEST}, Basic realm="x""#),
                all
            ),
            Some(Scheme::Negotiate)
        );
        #[cfg(not(all(feature = "negotiate", unix)))]
        assert_eq!(
            pick(
                &format!(r#"NTLM, Negotiate, {DIGEST}, Basic realm="x""#),
                all
            ),
            Some(Scheme::Ntlm)
        );
    }

    #[test]
    fn allowed_restricts() {
        let v = format!(r#"Negotiate, NTLM, {DIGEST}, Basic realm="corp""#);
        assert_eq!(pick(&v, Scheme::Basic.into()), Some(Scheme::Basic));
        assert_eq!(pick(&v, Scheme::Digest.into()), Some(Scheme::Digest));
        assert_eq!(
            pick(&v, Schemes::ALL.without(Scheme::Ntlm)).map(|s| s >= Scheme::Digest),
            Some(true)
        );
        assert_eq!(
            pick(&v, Schemes::from(Scheme::Basic).with(Scheme::Digest)),
            Some(Scheme::Digest)
        );
        assert_eq!(pick(&v, Schemes::NONE), None);
        // Only NTLM allowed, and the proxy offers Basic alone.
        assert_eq!(pick(r#"Basic realm="corp""#, Scheme::Ntlm.into()), None);
    }

    #[test]
    fn unanswerable_digest_falls_back() {
        let v = r#"Digest realm="a", nonce="b", algorithm=SHA-512-256, Basic realm="a""#;
        assert_eq!(pick(v, Schemes::ALL), Some(Scheme::Basic));
        assert_eq!(
            pick(
                r#"Digest realm="a", qop="auth-int", nonce="n""#,
                Schemes::ALL
            ),
            None
        );
        assert_eq!(pick("", Schemes::ALL), None);
        assert_eq!(pick("Bearer, Mutual realm=x", Schemes::ALL), None);
    }

    #[test]
    fn every_header_is_read() {
        let mut headers = HeaderMap::new();
        headers.append(
            PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"corp\""),
        );
        headers.append(PROXY_AUTHENTICATE, HeaderValue::from_static("NTLM"));
        headers.append(
            PROXY_AUTHENTICATE,
            HeaderValue::from_bytes(b"Digest realm=\"caf\xe9\", nonce=\"n\"").unwrap(),
        );
        headers.append(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Negotiate"),
        );
        let c = challenges(&headers);
        let schemes: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Basic", "NTLM", "Digest"]);
        assert_eq!(c[2].param("realm"), Some("caf\u{fffd}"));
        assert_eq!(choose(&c, Schemes::ALL), Some(Scheme::Ntlm));
    }

    #[test]
    fn names_and_sets() {
        assert_eq!(Scheme::Ntlm.to_string(), "NTLM");
        assert_eq!(Scheme::Basic.as_str(), "Basic");
        assert_eq!(Scheme::Digest.as_str(), "Digest");
        let s = Schemes::from(Scheme::Ntlm);
        assert!(s.contains(Scheme::Ntlm) && !s.contains(Scheme::Basic));
        assert!(!Schemes::ALL.without(Scheme::Basic).contains(Scheme::Basic));
        assert!(Scheme::Basic < Scheme::Digest && Scheme::Digest < Scheme::Ntlm);
        #[cfg(all(feature = "negotiate", unix))]
        assert!(Scheme::Ntlm < Scheme::Negotiate && Scheme::Negotiate.as_str() == "Negotiate");
    }
}

//! Digest proxy authentication (RFC 7616), answering a `407`'s
//! `Proxy-Authenticate: Digest ...` challenge.
//!
//! [`parse_challenges`] splits a header value into its challenges (RFC 9110
//! §11.6.1: a comma-separated list whose elements are schemes and their
//! parameters), [`choose`] picks the Digest challenge this client can
//! answer, and [`authorization`] writes the `Proxy-Authorization` value.
//!
//! Supported: `MD5`, `SHA-256` and their `-sess` variants, `qop=auth`, the
//! RFC 2069 form without `qop` (old proxies), `userhash`, and `username*`
//! (RFC 8187) for names a quoted string cannot carry. Not supported:
//! `qop=auth-int` alone (CONNECT has no body to protect, and no proxy is
//! known to require it) and `SHA-512-256`.

use std::fmt::Write as _;

use http::header::InvalidHeaderValue;
use http::HeaderValue;
use md5::Md5;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;

/// One challenge from a `Proxy-Authenticate` value: its scheme and either
/// its parameters or a token68.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// As sent; compare with `eq_ignore_ascii_case`.
    pub(crate) scheme: String,
    /// Parameter names lowercased, values unquoted and unescaped, in order.
    pub(crate) params: Vec<(String, String)>,
    /// The token68 form (`Negotiate abc==`), if that is what followed.
    pub(crate) token68: Option<String>,
}

impl Challenge {
    /// The first value of parameter `name` (lowercase).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A hash algorithm from the challenge's `algorithm` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Algorithm {
    Md5Sess,
    Md5,
    Sha256Sess,
    Sha256,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Self> {
        const NAMES: [(&str, Algorithm); 4] = [
            ("MD5", Algorithm::Md5),
            ("MD5-sess", Algorithm::Md5Sess),
            ("SHA-256", Algorithm::Sha256),
            ("SHA-256-sess", Algorithm::Sha256Sess),
        ];
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, a)| a)
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lowercase hex of the hash of `parts` joined by `:`.
    fn hex(self, parts: &[&str]) -> String {
        fn run<D: sha2::Digest>(parts: &[&str]) -> String {
            let mut h = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    h.update(b":");
                }
                h.update(p.as_bytes());
            }
            to_hex(&h.finalize())
        }
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => run::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => run::<Sha256>(parts),
        }
    }
}

/// A Digest challenge this client can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DigestChallenge {
    pub(crate) realm: String,
    pub(crate) nonce: String,
    pub(crate) opaque: Option<String>,
    pub(crate) algorithm: Algorithm,
    /// Whether the challenge named the algorithm (an RFC 2069 proxy may not
    /// know the parameter, so it is echoed only then, or with `qop`).
    algorithm_explicit: bool,
    /// `qop=auth` was offered; `false` is the RFC 2069 form.
    pub(crate) qop_auth: bool,
    /// `stale=true`: the nonce expired and the credentials were right, so
    /// one more try with the new nonce is worth it.
    pub(crate) stale: bool,
    /// `userhash=true` (RFC 7616 §3.4.4): send a hash of the username.
    pub(crate) userhash: bool,
}

impl DigestChallenge {
    /// `None` when this is not a Digest challenge, lacks `realm` or
    /// `nonce`, or asks for an algorithm or `qop` this client lacks.
    pub(crate) fn from_challenge(c: &Challenge) -> Option<Self> {
        if !c.scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let (algorithm, algorithm_explicit) = match c.param("algorithm") {
            Some(a) => (Algorithm::parse(a.trim())?, true),
            // RFC 7616 §3.3: absent means MD5.
            None => (Algorithm::Md5, false),
        };
        let qop_auth = match c.param("qop") {
            Some(list) => {
                if !list
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    return None;
                }
                true
            }
            None => false,
        };
        // -sess needs a cnonce in A1, and without qop there is none to send.
        if algorithm.is_sess() && !qop_auth {
            return None;
        }
        let is_true = |name| {
            c.param(name)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        Some(DigestChallenge {
            realm: c.param("realm")?.to_owned(),
            nonce: c.param("nonce")?.to_owned(),
            opaque: c.param("opaque").map(str::to_owned),
            algorithm,
            algorithm_explicit,
            qop_auth,
            stale: is_true("stale"),
            userhash: is_true("userhash"),
        })
    }
}

/// The Digest challenge to answer: SHA-256 before MD5, and the plain form
/// before `-sess`; among equals, the first (the proxy's preference).
pub(crate) fn choose<'a>(
    challenges: impl IntoIterator<Item = &'a Challenge>,
) -> Option<DigestChallenge> {
    let mut best: Option<DigestChallenge> = None;
    for c in challenges
        .into_iter()
        .filter_map(DigestChallenge::from_challenge)
    {
        if best.as_ref().is_none_or(|b| c.algorithm > b.algorithm) {
            best = Some(c);
        }
    }
    best
}

/// The `Proxy-Authorization` value answering `challenge` for a request
/// `method uri` (for CONNECT: `"CONNECT"`, `"host:port"`), marked
/// sensitive. `nc` is the nonce count, 1 for a nonce's first use.
///
/// # Errors
///
/// Only when the challenge's own values cannot be written back into a
/// header, which a value parsed from a header cannot cause.
pub(crate) fn authorization(
    challenge: &DigestChallenge,
    user: &str,
    pass: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> Result<HeaderValue, InvalidHeaderValue> {
    let c = challenge;
    let alg = c.algorithm;
    let nc = format!("{nc:08x}");
    let mut ha1 = alg.hex(&[user, &c.realm, pass]);
    if alg.is_sess() {
        // RFC 7616 §3.4.2: A1 = H(user:realm:pass):nonce:cnonce.
        ha1 = alg.hex(&[&ha1, &c.nonce, cnonce]);
    }
    let ha2 = alg.hex(&[method, uri]);
    let response = if c.qop_auth {
        alg.hex(&[&ha1, &c.nonce, &nc, cnonce, "auth", &ha2])
    } else {
        // RFC 2069 §2.1.2: no qop, no nc, no cnonce.
        alg.hex(&[&ha1, &c.nonce, &ha2])
    };

    let mut v = String::from("Digest ");
    if c.userhash {
        let hashed = alg.hex(&[user, &c.realm]);
        push_quoted(&mut v, "username", &hashed);
    } else if needs_extended(user) {
        // RFC 7616 §3.4.4 and RFC 8187: a name a quoted string cannot carry.
        let _ = write!(
            v,
            "username*=UTF-8''{}",
            utf8_percent_encode(user, ATTR_CHAR)
        );
    } else {
        push_quoted(&mut v, "username", user);
    }
    v.push_str(", ");
    push_quoted(&mut v, "realm", &c.realm);
    v.push_str(", ");
    push_quoted(&mut v, "nonce", &c.nonce);
    v.push_str(", ");
    push_quoted(&mut v, "uri", uri);
    if c.algorithm_explicit || c.qop_auth {
        let _ = write!(v, ", algorithm={}", alg.name());
    }
    v.push_str(", ");
    push_quoted(&mut v, "response", &response);
    if c.qop_auth {
        let _ = write!(v, ", qop=auth, nc={nc}, ");
        push_quoted(&mut v, "cnonce", cnonce);
    }
    if let Some(opaque) = &c.opaque {
        v.push_str(", ");
        push_quoted(&mut v, "opaque", opaque);
    }
    if c.userhash {
        v.push_str(", userhash=true");
    }
    let mut value = HeaderValue::from_str(&v)?;
    value.set_sensitive(true);
    Ok(value)
}

/// A fresh client nonce: 16 random bytes as lowercase hex.
pub(crate) fn new_cnonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)?;
    Ok(to_hex(&bytes))
}

fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// RFC 8187 §3.2.1 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~".
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Whether `s` has a byte a quoted string cannot hold even escaped: a
/// control character or non-ASCII.
fn needs_extended(s: &str) -> bool {
    s.bytes()
        .any(|b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
}

/// `name="value"` with `"` and `\` escaped (RFC 9110 §5.6.4).
fn push_quoted(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for ch in value.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

/// Splits a `Proxy-Authenticate` (or `WWW-Authenticate`) value into its
/// challenges. Garbage is skipped, never fatal: what can be read is kept.
pub(crate) fn parse_challenges(value: &str) -> Vec<Challenge> {
    let mut p = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    let mut current: Option<Challenge> = None;
    loop {
        p.skip(|b| is_ws(b) || b == b',');
        if p.at_end() {
            break;
        }
        let name = p.token();
        if name.is_empty() {
            // Not a token: skip this list element.
            p.skip_element();
            continue;
        }
        let after_name = p.i;
        p.skip(is_ws);
        if p.peek() != Some(b'=') {
            // A token not followed by `=` starts the next challenge.
            p.i = after_name;
            if let Some(c) = current.take() {
                out.push(c);
            }
            let mut c = Challenge {
                scheme: name.to_owned(),
                ..Challenge::default()
            };
            p.skip(is_ws);
            c.token68 = p.token68();
            current = Some(c);
            continue;
        }
        p.i += 1; // '='
        p.skip(is_ws);
        let value = match p.peek() {
            Some(b'"') => p.quoted_string(),
            _ => {
                let t = p.token();
                (!t.is_empty()).then(|| t.to_owned())
            }
        };
        let Some(value) = value else {
            p.skip_element();
            continue;
        };
        if let Some(c) = current.as_mut() {
            let name = name.to_ascii_lowercase();
            // RFC 9110 §11.2: a parameter name occurs once; keep the first.
            if c.param(&name).is_none() {
                c.params.push((name, value));
            }
        }
    }
    out.extend(current);
    out
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.i;
        self.skip(is_tchar);
        // tchar is ASCII, so this slice is on character boundaries.
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }

    /// RFC 9110 §11.2 token68 right after a scheme, only if the element
    /// ends there (so `realm=x` stays a parameter).
    fn token68(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        if self.i == start {
            return None;
        }
        self.skip(|b| b == b'=');
        let end = self.i;
        self.skip(is_ws);
        if self.at_end() || self.peek() == Some(b',') {
            std::str::from_utf8(&self.s[start..end])
                .ok()
                .map(str::to_owned)
        } else {
            self.i = start;
            None
        }
    }

    /// A quoted string at the cursor, unescaped; `None` if unterminated.
    fn quoted_string(&mut self) -> Option<String> {
        let mut out = Vec::new();
        self.i += 1; // opening quote
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        out.push(escaped);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        None
    }

    /// Skips to the next top-level comma, past quoted strings.
    fn skip_element(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b',' => return,
                b'"' => {
                    let _ = self.quoted_string();
                }
                _ => self.i += 1,
            }
        }
    }
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// RFC 9110 §5.6.2 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(value: &str) -> DigestChallenge {
        choose(&parse_challenges(value)).expect("an answerable challenge")
    }

    /// The `response` parameter of an Authorization value.
    fn response_of(v: &HeaderValue) -> String {
        let text = v.to_str().unwrap();
        let c = parse_challenges(text);
        c[0].param("response").unwrap().to_owned()
    }

    // RFC 7616 §3.9.1.
    const RFC7616_SHA256: &str = r#"Digest
        realm="http-auth@example.org",
        qop="auth, auth-int",
        algorithm=SHA-256,
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC7616_MD5: &str = r#"Digest
        realm="http-auth@example.org",
        qop="auth, auth-int",
        algorithm=MD5,
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    #[test]
    fn rfc7616_sha256_vector() {
        let c = digest(&RFC7616_SHA256.replace('\n', " "));
        assert_eq!(c.algorithm, Algorithm::Sha256);
        let v = authorization(
            &c,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert!(v.is_sensitive());
        assert_eq!(
            v.to_str().unwrap(),
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             uri=\"/dir/index.html\", algorithm=SHA-256, \
             response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
             qop=auth, nc=00000001, cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        );
    }

    #[test]
    fn rfc7616_md5_vector() {
        let c = digest(&RFC7616_MD5.replace('\n', " "));
        assert_eq!(c.algorithm, Algorithm::Md5);
        let v = authorization(
            &c,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert_eq!(response_of(&v), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rfc7616_both_offered_sha256_chosen() {
        // The RFC's example sends both challenges; SHA-256 wins whatever
        // the order.
        for value in [
            format!("{RFC7616_MD5}, {RFC7616_SHA256}"),
            format!("{RFC7616_SHA256}, {RFC7616_MD5}"),
        ] {
            assert_eq!(
                digest(&value.replace('\n', " ")).algorithm,
                Algorithm::Sha256
            );
        }
    }

    #[test]
    fn rfc2617_vector() {
        let c = digest(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        );
        let v = authorization(
            &c,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        )
        .unwrap();
        assert_eq!(response_of(&v), "6629fae49393a05397450978507c4ef1");
        // No algorithm in the challenge, but qop: MD5 is named.
        assert!(v.to_str().unwrap().contains(", algorithm=MD5, "));
    }

    #[test]
    fn rfc2069_form_without_qop() {
        // RFC 2069 §2.4 (response as corrected by its erratum 1,
        // "1949323746fe6a43ef61f9606e7febea").
        let c = digest(
            r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        );
        assert!(!c.qop_auth);
        let v = authorization(
            &c,
            "Mufasa",
            "CircleOfLife",
            "GET",
            "/dir/index.html",
            "x",
            1,
        )
        .unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"1949323746fe6a43ef61f9606e7febea\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
    }

    #[test]
    fn sess_variants() {
        // Independent check: A1 = H(H(user:realm:pass):nonce:cnonce).
        let c = digest(r#"Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess"#);
        assert_eq!(c.algorithm, Algorithm::Md5Sess);
        let v = authorization(&c, "u", "p", "CONNECT", "example.com:443", "cn", 1).unwrap();
        let ha1 = Algorithm::Md5.hex(&[&Algorithm::Md5.hex(&["u", "r", "p"]), "n", "cn"]);
        let ha2 = Algorithm::Md5.hex(&["CONNECT", "example.com:443"]);
        let want = Algorithm::Md5.hex(&[&ha1, "n", "00000001", "cn", "auth", &ha2]);
        assert_eq!(response_of(&v), want);
        assert!(v.to_str().unwrap().contains("algorithm=MD5-sess"));

        let c = digest(r#"Digest realm="r", nonce="n", qop="auth", algorithm=sha-256-SESS"#);
        assert_eq!(c.algorithm, Algorithm::Sha256Sess);
        // -sess without qop has no cnonce to send: not answerable.
        assert!(choose(&parse_challenges(
            r#"Digest realm="r", nonce="n", algorithm=MD5-sess"#
        ))
        .is_none());
    }

    #[test]
    fn connect_request_shape() {
        let c = digest(r#"Digest realm="proxy", nonce="abc", qop="auth", algorithm="SHA-256""#);
        let v = authorization(&c, "bob", "pw", "CONNECT", "example.com:443", "0123", 2).unwrap();
        let text = v.to_str().unwrap();
        assert!(text.starts_with("Digest username=\"bob\", realm=\"proxy\", nonce=\"abc\", uri=\"example.com:443\", algorithm=SHA-256, response=\""), "{text}");
        assert!(
            text.ends_with(", qop=auth, nc=00000002, cnonce=\"0123\""),
            "{text}"
        );
        assert!(!text.contains("pw"));
    }

    #[test]
    fn usernames_escaped_extended_and_hashed() {
        let c = digest(r#"Digest realm="r", nonce="n", qop="auth""#);
        let v = authorization(&c, r#"a"b\c"#, "p", "CONNECT", "h:1", "c", 1).unwrap();
        assert!(v
            .to_str()
            .unwrap()
            .starts_with(r#"Digest username="a\"b\\c", "#));
        let back = parse_challenges(v.to_str().unwrap());
        assert_eq!(back[0].param("username"), Some(r#"a"b\c"#));

        let v = authorization(&c, "J\u{e4}s\u{f8}n Doe", "p", "CONNECT", "h:1", "c", 1).unwrap();
        assert!(
            v.to_str()
                .unwrap()
                .starts_with("Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, "),
            "{v:?}"
        );
        // A control character cannot break the header.
        let v = authorization(&c, "a\r\nX-Evil: 1", "p", "CONNECT", "h:1", "c", 1).unwrap();
        assert!(v
            .to_str()
            .unwrap()
            .contains("username*=UTF-8''a%0D%0AX-Evil%3A%201"));

        let c = digest(r#"Digest realm="r", nonce="n", qop="auth", userhash=true"#);
        let v = authorization(&c, "Mufasa", "p", "CONNECT", "h:1", "c", 1).unwrap();
        let text = v.to_str().unwrap();
        let hashed = Algorithm::Md5.hex(&["Mufasa", "r"]);
        assert!(text.starts_with(&format!("Digest username=\"{hashed}\", ")));
        assert!(text.ends_with(", userhash=true"));
        assert!(!text.contains("Mufasa"));
    }

    #[test]
    fn choose_rules() {
        let none = |v: &str| assert!(choose(&parse_challenges(v)).is_none(), "{v}");
        none(r#"Basic realm="a""#);
        none(r#"Digest realm="a", nonce="b", qop="auth-int""#);
        none(r#"Digest realm="a", nonce="b", algorithm=SHA-512-256"#);
        none(r#"Digest realm="a", nonce="b", algorithm=FOO"#);
        none(r#"Digest realm="a""#);
        none(r#"Digest nonce="a""#);
        none("");
        let c = digest(r#"Basic realm="a", Digest realm="b", nonce="c""#);
        assert_eq!((c.realm.as_str(), c.nonce.as_str()), ("b", "c"));
        assert_eq!(c.algorithm, Algorithm::Md5);
        let c = digest(r#"digest REALM="b", Nonce="c", STALE=TRUE, qop="AUTH-INT , Auth""#);
        assert!(c.stale && c.qop_auth);
        // Same algorithm twice: the first one (the proxy's preference).
        let c = digest(r#"Digest realm="1", nonce="x", Digest realm="2", nonce="y""#);
        assert_eq!(c.realm, "1");
        let c = digest(
            r#"Digest realm="1", nonce="x", algorithm=SHA-256-sess, qop=auth, Digest realm="2", nonce="y", algorithm=SHA-256, qop=auth"#,
        );
        assert_eq!(c.realm, "2");
    }

    #[test]
    fn parser_splits_schemes() {
        let c = parse_challenges(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "Newauth");
        assert_eq!(
            c[0].params,
            [
                ("realm".to_owned(), "apps".to_owned()),
                ("type".to_owned(), "1".to_owned()),
                ("title".to_owned(), "Login to \"apps\"".to_owned()),
            ]
        );
        assert_eq!(c[1].scheme, "Basic");
        assert_eq!(c[1].param("realm"), Some("simple"));

        let c = parse_challenges(
            "Negotiate, NTLM TlRMTVNTUAACAAAA/+==, Digest realm = \"x,y\" ,nonce=abc",
        );
        let schemes: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Negotiate", "NTLM", "Digest"]);
        assert_eq!(c[0].token68, None);
        assert_eq!(c[1].token68.as_deref(), Some("TlRMTVNTUAACAAAA/+=="));
        assert_eq!(c[2].param("realm"), Some("x,y"));
        assert_eq!(c[2].param("nonce"), Some("abc"));

        // Empty list elements, tabs, a duplicate parameter (first kept).
        let c = parse_challenges(",, Digest\trealm=\"a\",,,realm=\"b\" , nonce=\"n\",");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("realm"), Some("a"));
        assert_eq!(c[0].param("nonce"), Some("n"));

        // A token68 that looks like a parameter without a value.
        let c = parse_challenges("Basic abc=, Digest realm=r");
        assert_eq!(c[0].token68.as_deref(), Some("abc="));
        assert_eq!(c[1].param("realm"), Some("r"));
    }

    #[test]
    fn parser_garbage_is_skipped() {
        // Unterminated quote: the parameter is dropped, no panic.
        let c = parse_challenges(r#"Digest nonce="n", realm="a, b"#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].params, [("nonce".to_owned(), "n".to_owned())]);
        let c = parse_challenges(r#"Digest realm="r", @@@, nonce="n""#);
        assert_eq!(c[0].param("nonce"), Some("n"));
        // Parameters before any scheme have nowhere to go.
        let c = parse_challenges(r#"realm="x", Digest nonce="n""#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("realm"), None);
        // Escapes at the very end, non-ASCII inside quotes.
        let c = parse_challenges("Digest realm=\"caf\u{e9}\", nonce=\"\\");
        assert_eq!(c[0].param("realm"), Some("caf\u{e9}"));
        assert_eq!(parse_challenges("   ").len(), 0);
        assert_eq!(parse_challenges("=,=\"").len(), 0);
    }

    #[test]
    fn never_panics_on_mutated_input() {
        let seeds = [
            RFC7616_SHA256,
            r#"Basic realm="a", Digest realm="b\"q", nonce="c", qop="auth", opaque=o"#,
            "NTLM abc==, Negotiate",
        ];
        let alphabet = b"\"\\,= \tDigestrealmnonce=qopauth\x7f\xc3\xa9/+=";
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut bytes = seeds[(next() % 3) as usize].as_bytes().to_vec();
            for _ in 0..(next() % 6) {
                let pos = (next() as usize) % (bytes.len() + 1);
                match next() % 3 {
                    0 if pos < bytes.len() => {
                        bytes.remove(pos);
                    }
                    1 if pos < bytes.len() => bytes.truncate(pos),
                    _ => bytes.insert(pos, alphabet[(next() as usize) % alphabet.len()]),
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let challenges = parse_challenges(&text);
            if let Some(c) = choose(&challenges) {
                let v = authorization(&c, "u", "p", "CONNECT", "h:1", "c", 1);
                // What came from a real header goes back into one.
                if HeaderValue::from_str(&text).is_ok() {
                    assert!(v.is_ok(), "{text:?}: {v:?}");
                }
            }
        }
    }

    proptest::proptest! {
        /// Any text: no panic, and an answerable challenge from a valid
        /// header value always yields a valid header value.
        #[test]
        fn proptest_parse_and_answer(text in proptest::prelude::any::<String>()) {
            let challenges = parse_challenges(&text);
            if let Some(c) = choose(&challenges) {
                let v = authorization(&c, "u", "p", "CONNECT", "h:1", "c", 1);
                if HeaderValue::from_str(&text).is_ok() {
                    proptest::prop_assert!(v.is_ok());
                }
            }
        }

        /// Parameters written by `push_quoted` read back as written.
        #[test]
        fn proptest_quoted_round_trip(value in "[ -~]{0,40}") {
            let mut header = String::from("Digest ");
            push_quoted(&mut header, "realm", &value);
            header.push_str(", nonce=n");
            let c = parse_challenges(&header);
            proptest::prop_assert_eq!(c.len(), 1);
            proptest::prop_assert_eq!(c[0].param("realm"), Some(value.as_str()));
        }
    }

    #[test]
    fn cnonce_is_fresh_hex() {
        let a = new_cnonce().unwrap();
        let b = new_cnonce().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}

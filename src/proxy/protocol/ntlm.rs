//! NTLM proxy authentication (MS-NLMP), the client's side, NTLMv2 only.
//!
//! One handshake is three messages on one connection, since NTLM
//! authenticates the connection rather than the request:
//! [`negotiate_message`] (type 1) goes with the first request, the proxy's
//! `407` carries a [`Challenge`] (type 2), and [`authenticate_message`]
//! (type 3) answers it on the same connection. [`negotiate_header`],
//! [`Challenge::from_challenges`] and [`authenticate_header`] are the same
//! steps as `Proxy-Authorization` / `Proxy-Authenticate` values
//! (`NTLM <base64>`).
//!
//! Only NTLMv2 responses are made (MS-NLMP §3.3.2). LM and NTLMv1 are not
//! implemented at all: a challenge without target info (an old server, or
//! squid's `ntlm_fake_auth`) still gets NTLMv2, over an AV pair list that
//! is only MsvAvEOL, as pyspnego answers it; the server verifies the blob
//! the client sends, so it needs no target info of its own. HTTP uses NTLM
//! to authenticate only, so there is no key exchange, signing, sealing or
//! MIC, as in curl.
//!
//! Credentials: `DOMAIN\user` (or curl's `DOMAIN/user`) names the domain;
//! anything else, `user@corp.example.com` included, is the user name with an
//! empty domain, which is how Windows itself sends a UPN and how curl and
//! pyspnego read it (splitting a UPN at `@` would hash a DNS domain where the
//! server expects the NetBIOS one).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderValue;
use md4::{Digest as _, Md4};
use md5::Md5;

use super::digest::Challenge as AuthChallenge;

/// The scheme name in `Proxy-Authenticate` and `Proxy-Authorization`.
pub(crate) const SCHEME: &str = "NTLM";

/// The longest CHALLENGE_MESSAGE accepted. Real ones are a few hundred
/// bytes; a header cap already bounds them, this bounds the parser on its
/// own.
pub(crate) const MAX_MESSAGE: usize = 16 * 1024;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
const NEGOTIATE: u32 = 1;
const CHALLENGE: u32 = 2;
const AUTHENTICATE: u32 = 3;

// MS-NLMP §2.2.2.5, the NegotiateFlags this client uses.
const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const NEGOTIATE_OEM: u32 = 0x0000_0002;
const REQUEST_TARGET: u32 = 0x0000_0004;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;

/// What the NEGOTIATE_MESSAGE asks for: either character set, the server's
/// name, NTLM with extended session security. No LM_KEY, no 56/128/KEY_EXCH
/// (nothing is signed or sealed), no domain or workstation supplied.
const NEGOTIATE_FLAGS: u32 = NEGOTIATE_UNICODE
    | NEGOTIATE_OEM
    | REQUEST_TARGET
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY;

// MS-NLMP §2.2.2.1, AV_PAIR ids.
const MSV_AV_EOL: u16 = 0;
const MSV_AV_TIMESTAMP: u16 = 7;

/// 100 ns ticks from 1601-01-01 (FILETIME's epoch) to 1970-01-01.
const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// Why an NTLM step failed. Never holds a credential or a token.
#[derive(Debug)]
pub(crate) enum NtlmError {
    /// The `407` offers no `NTLM` challenge.
    NotOffered,
    /// `NTLM` without a token where a CHALLENGE_MESSAGE was expected: the
    /// proxy started over, which after an AUTHENTICATE_MESSAGE means it
    /// turned the credentials down.
    NoChallenge,
    /// The token is not base64.
    Base64,
    /// The CHALLENGE_MESSAGE is not one.
    Malformed(&'static str),
    /// The CHALLENGE_MESSAGE is longer than [`MAX_MESSAGE`].
    TooLong(usize),
    /// The proxy did not offer Unicode, and a credential is not ASCII.
    NotAscii,
    /// A credential does not fit a message field (64 KiB).
    FieldTooLong(&'static str),
    /// No randomness for the client challenge.
    Random(getrandom::Error),
}

impl fmt::Display for NtlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NtlmError::NotOffered => f.write_str("the proxy offers no NTLM challenge"),
            NtlmError::NoChallenge => f.write_str(
                "the proxy sent NTLM without a challenge: it turned the credentials down",
            ),
            NtlmError::Base64 => f.write_str("the NTLM challenge is not base64"),
            NtlmError::Malformed(what) => write!(f, "malformed NTLM challenge: {what}"),
            NtlmError::TooLong(len) => {
                write!(
                    f,
                    "the NTLM challenge is {len} bytes, more than {MAX_MESSAGE}"
                )
            }
            NtlmError::NotAscii => f.write_str(
                "the proxy offers NTLM without Unicode, and the credentials are not ASCII",
            ),
            NtlmError::FieldTooLong(what) => write!(f, "the NTLM {what} is too long"),
            NtlmError::Random(e) => write!(f, "no randomness for the NTLM client challenge: {e}"),
        }
    }
}

impl std::error::Error for NtlmError {}

/// A domain, user name and password for NTLM. `Debug` shows the domain
/// only.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct NtlmCredentials {
    domain: String,
    user: String,
    password: String,
    workstation: String,
}

impl NtlmCredentials {
    /// Reads the user part of a proxy URL (already percent-decoded):
    /// `DOMAIN\user` or `DOMAIN/user` name the domain; anything else is the
    /// user name, a UPN (`user@corp.example.com`) included, with no domain.
    pub(crate) fn parse(user: &str, password: &str) -> Self {
        let (domain, user) = match user.find(['\\', '/']) {
            Some(at) => (&user[..at], &user[at + 1..]),
            None => ("", user),
        };
        NtlmCredentials::new(domain, user, password)
    }

    pub(crate) fn new(domain: &str, user: &str, password: &str) -> Self {
        NtlmCredentials {
            domain: domain.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
            workstation: String::new(),
        }
    }

    /// The workstation name sent in the AUTHENTICATE_MESSAGE; empty by
    /// default (curl sends none either, and it is not part of any hash).
    #[cfg(test)]
    pub(crate) fn with_workstation(mut self, workstation: &str) -> Self {
        self.workstation = workstation.to_owned();
        self
    }

    #[cfg(test)]
    pub(crate) fn domain(&self) -> &str {
        &self.domain
    }

    #[cfg(test)]
    pub(crate) fn user(&self) -> &str {
        &self.user
    }
}

impl fmt::Debug for NtlmCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmCredentials")
            .field("domain", &self.domain)
            .field("user", &format_args!("<redacted>"))
            .field("password", &format_args!("<redacted>"))
            .finish()
    }
}

/// The NEGOTIATE_MESSAGE (type 1), 32 bytes.
pub(crate) fn negotiate_message() -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&NEGOTIATE.to_le_bytes());
    m.extend_from_slice(&NEGOTIATE_FLAGS.to_le_bytes());
    // DomainNameFields and WorkstationFields, empty: no OEM_*_SUPPLIED flag.
    push_fields(&mut m, 0, 32);
    push_fields(&mut m, 0, 32);
    m
}

/// `NTLM <base64 NEGOTIATE_MESSAGE>`, for the first request.
pub(crate) fn negotiate_header() -> HeaderValue {
    header(&negotiate_message())
}

/// A parsed CHALLENGE_MESSAGE (type 2): what the AUTHENTICATE_MESSAGE needs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    flags: u32,
    server_challenge: [u8; 8],
    /// The server's name for itself, as sent (for `Debug`).
    target_name: Vec<u8>,
    /// The AV pairs up to MsvAvEOL (excluded), in order.
    target_info: Vec<(u16, Vec<u8>)>,
    /// MsvAvTimestamp, when the server sent one.
    timestamp: Option<u64>,
}

impl Challenge {
    /// Parses a CHALLENGE_MESSAGE. Every length and offset is checked
    /// against the message: garbage is an error, never a panic.
    ///
    /// # Errors
    ///
    /// [`NtlmError::TooLong`] and [`NtlmError::Malformed`].
    pub(crate) fn parse(msg: &[u8]) -> Result<Challenge, NtlmError> {
        if msg.len() > MAX_MESSAGE {
            return Err(NtlmError::TooLong(msg.len()));
        }
        // Signature, MessageType, TargetNameFields, NegotiateFlags,
        // ServerChallenge: the 32 bytes every version has.
        if msg.len() < 32 {
            return Err(NtlmError::Malformed("shorter than its header"));
        }
        if &msg[..8] != SIGNATURE {
            return Err(NtlmError::Malformed("no NTLMSSP signature"));
        }
        if le_u32(msg, 8) != Some(CHALLENGE) {
            return Err(NtlmError::Malformed("not a CHALLENGE_MESSAGE"));
        }
        let flags = le_u32(msg, 20).unwrap_or_default();
        let mut server_challenge = [0u8; 8];
        server_challenge.copy_from_slice(&msg[24..32]);
        // The name is only shown, so a bad one is dropped, not fatal.
        let target_name = field(msg, 12).unwrap_or_default().to_vec();
        // Reserved (8 bytes), then TargetInfoFields at 40, meaningful only
        // with the TARGET_INFO flag (an old server's message may end, or
        // carry its target name, where they would be).
        let info = match msg.len() {
            48.. if flags & NEGOTIATE_TARGET_INFO != 0 => {
                field(msg, 40).ok_or(NtlmError::Malformed("target info outside the message"))?
            }
            _ => &[][..],
        };
        let target_info = parse_av_pairs(info)?;
        let timestamp = match target_info.iter().find(|(id, _)| *id == MSV_AV_TIMESTAMP) {
            Some((_, value)) => {
                Some(u64::from_le_bytes(value.as_slice().try_into().map_err(
                    |_| NtlmError::Malformed("MsvAvTimestamp is not 8 bytes"),
                )?))
            }
            None => None,
        };
        Ok(Challenge {
            flags,
            server_challenge,
            target_name,
            target_info,
            timestamp,
        })
    }

    /// The CHALLENGE_MESSAGE in a `Proxy-Authenticate` token68.
    pub(crate) fn from_token68(token: &str) -> Result<Challenge, NtlmError> {
        // Some servers drop the padding.
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        // Base64 of MAX_MESSAGE bytes, plus padding slack.
        if token.len() > MAX_MESSAGE / 3 * 4 + 8 {
            return Err(NtlmError::TooLong(token.len() / 4 * 3));
        }
        let bytes = LENIENT.decode(token).map_err(|_| NtlmError::Base64)?;
        Challenge::parse(&bytes)
    }

    /// The CHALLENGE_MESSAGE among a `407`'s challenges (as
    /// `digest::parse_challenges` splits them): the first `NTLM <token>`.
    ///
    /// # Errors
    ///
    /// [`NtlmError::NotOffered`] without any `NTLM` challenge,
    /// [`NtlmError::NoChallenge`] when `NTLM` comes without a token, and
    /// the errors of [`Challenge::parse`].
    pub(crate) fn from_challenges<'a>(
        challenges: impl IntoIterator<Item = &'a AuthChallenge>,
    ) -> Result<Challenge, NtlmError> {
        let mut offered = false;
        for c in challenges {
            if !c.scheme.eq_ignore_ascii_case(SCHEME) {
                continue;
            }
            match &c.token68 {
                Some(token) => return Challenge::from_token68(token),
                None => offered = true,
            }
        }
        Err(if offered {
            NtlmError::NoChallenge
        } else {
            NtlmError::NotOffered
        })
    }

    /// Whether the server offered Unicode strings.
    pub(crate) fn is_unicode(&self) -> bool {
        self.flags & NEGOTIATE_UNICODE != 0
    }

    /// The server's MsvAvTimestamp, if it sent one.
    #[cfg(test)]
    pub(crate) fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.is_unicode() {
            String::from_utf16_lossy(
                &self
                    .target_name
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect::<Vec<_>>(),
            )
        } else {
            String::from_utf8_lossy(&self.target_name).into_owned()
        };
        let ids: Vec<u16> = self.target_info.iter().map(|(id, _)| *id).collect();
        f.debug_struct("Challenge")
            .field("flags", &format_args!("{:#010x}", self.flags))
            .field("target_name", &name)
            .field("av_pair_ids", &ids)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

/// An AUTHENTICATE_MESSAGE (type 3). Its NTLMv2 response can be attacked
/// offline for the password, so `Debug` shows its length only.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AuthenticateMessage(Vec<u8>);

impl AuthenticateMessage {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for AuthenticateMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthenticateMessage(<{} bytes redacted>)", self.0.len())
    }
}

/// The AUTHENTICATE_MESSAGE (type 3) answering `challenge` with NTLMv2.
///
/// `client_challenge` must be fresh random bytes. The time in the response
/// is the challenge's MsvAvTimestamp when it has one (MS-NLMP §3.1.5.1.2),
/// else `timestamp` (a FILETIME: 100 ns ticks since 1601), else now.
///
/// # Errors
///
/// [`NtlmError::NotAscii`] when the proxy did not offer Unicode and a
/// credential is not ASCII; [`NtlmError::FieldTooLong`] for a credential
/// longer than a message field holds.
pub(crate) fn authenticate_message(
    challenge: &Challenge,
    credentials: &NtlmCredentials,
    client_challenge: [u8; 8],
    timestamp: Option<u64>,
) -> Result<AuthenticateMessage, NtlmError> {
    let unicode = challenge.is_unicode();
    let text = |s: &str| -> Result<Vec<u8>, NtlmError> {
        if unicode {
            Ok(utf16le(s))
        } else if s.is_ascii() {
            // OEM code page: ASCII is the part every code page agrees on.
            Ok(s.as_bytes().to_vec())
        } else {
            Err(NtlmError::NotAscii)
        }
    };
    let time = challenge
        .timestamp
        .or(timestamp)
        .unwrap_or_else(filetime_now);
    let key = ntowf_v2(
        &credentials.password,
        &credentials.user,
        &credentials.domain,
    );
    let target_info = encode_av_pairs(&challenge.target_info);
    let nt = ntlmv2_response(
        &key,
        &challenge.server_challenge,
        &client_challenge,
        time,
        &target_info,
    );
    // MS-NLMP §3.1.5.1.2: with a server timestamp, no LMv2 response (as
    // Windows and pyspnego send, Z(24)); without one, LMv2.
    let lm = match challenge.timestamp {
        Some(_) => vec![0; 24],
        None => lmv2_response(&key, &challenge.server_challenge, &client_challenge).to_vec(),
    };
    let charset = if unicode {
        NEGOTIATE_UNICODE
    } else {
        NEGOTIATE_OEM
    };
    let flags = charset
        | REQUEST_TARGET
        | NEGOTIATE_NTLM
        | NEGOTIATE_ALWAYS_SIGN
        | (challenge.flags & (NEGOTIATE_EXTENDED_SESSIONSECURITY | NEGOTIATE_TARGET_INFO));
    let message = encode_authenticate(&AuthenticateFields {
        lm: &lm,
        nt: &nt,
        domain: &text(&credentials.domain)?,
        user: &text(&credentials.user)?,
        workstation: &text(&credentials.workstation)?,
        session_key: &[],
        flags,
        version: None,
    })?;
    Ok(AuthenticateMessage(message))
}

/// `NTLM <base64 AUTHENTICATE_MESSAGE>` answering `challenge`, with a fresh
/// client challenge and the current time, marked sensitive.
///
/// # Errors
///
/// Those of [`authenticate_message`], and [`NtlmError::Random`].
pub(crate) fn authenticate_header(
    challenge: &Challenge,
    credentials: &NtlmCredentials,
) -> Result<HeaderValue, NtlmError> {
    let mut client_challenge = [0u8; 8];
    getrandom::getrandom(&mut client_challenge).map_err(NtlmError::Random)?;
    let message = authenticate_message(challenge, credentials, client_challenge, None)?;
    Ok(header(message.as_bytes()))
}

/// `NTLM <base64>`, sensitive.
fn header(message: &[u8]) -> HeaderValue {
    let mut value = HeaderValue::try_from(format!("{SCHEME} {}", STANDARD.encode(message)))
        .expect("`NTLM ` and base64 are always a valid header value");
    value.set_sensitive(true);
    value
}

/// The parts of an AUTHENTICATE_MESSAGE, already encoded.
struct AuthenticateFields<'a> {
    lm: &'a [u8],
    nt: &'a [u8],
    domain: &'a [u8],
    user: &'a [u8],
    workstation: &'a [u8],
    session_key: &'a [u8],
    flags: u32,
    /// The 8-byte VERSION structure, sent when the NEGOTIATE_VERSION flag
    /// is; this client sends none.
    version: Option<[u8; 8]>,
}

/// MS-NLMP §2.2.1.3: the fixed part, then the payload in the order Windows
/// writes it (domain, user, workstation, LM, NT, session key).
fn encode_authenticate(f: &AuthenticateFields<'_>) -> Result<Vec<u8>, NtlmError> {
    let head = 64 + if f.version.is_some() { 8 } else { 0 };
    let payload = [
        (f.domain, "domain"),
        (f.user, "user name"),
        (f.workstation, "workstation name"),
        (f.lm, "LM response"),
        (f.nt, "NT response"),
        (f.session_key, "session key"),
    ];
    let mut offsets = [0u32; 6];
    let mut at = head;
    for (i, (bytes, what)) in payload.iter().enumerate() {
        if bytes.len() > usize::from(u16::MAX) {
            return Err(NtlmError::FieldTooLong(what));
        }
        // Six fields of at most 64 KiB each after a 72-byte head.
        offsets[i] = u32::try_from(at).expect("an NTLM message is far below 4 GiB");
        at += bytes.len();
    }
    let mut m = Vec::with_capacity(at);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&AUTHENTICATE.to_le_bytes());
    // The fields in header order: LM, NT, domain, user, workstation, key.
    for i in [3, 4, 0, 1, 2, 5] {
        push_fields(&mut m, payload[i].0.len(), offsets[i]);
    }
    m.extend_from_slice(&f.flags.to_le_bytes());
    if let Some(version) = f.version {
        m.extend_from_slice(&version);
    }
    for (bytes, _) in payload {
        m.extend_from_slice(bytes);
    }
    Ok(m)
}

/// A security buffer's Len, MaxLen and BufferOffset.
fn push_fields(m: &mut Vec<u8>, len: usize, offset: u32) {
    let len = u16::try_from(len).expect("callers check field lengths");
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&offset.to_le_bytes());
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([bytes[0], bytes[1]]))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The bytes a security buffer at `at` points to, if they are inside `msg`.
fn field(msg: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(le_u16(msg, at)?);
    let offset = usize::try_from(le_u32(msg, at + 4)?).ok()?;
    msg.get(offset..offset.checked_add(len)?)
}

/// AV pairs up to MsvAvEOL. A list that ends without one is taken as ended
/// (the EOL is written back when it is sent); a pair that runs past the
/// end is an error.
fn parse_av_pairs(mut info: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, NtlmError> {
    let mut pairs = Vec::new();
    while !info.is_empty() {
        let (Some(id), Some(len)) = (le_u16(info, 0), le_u16(info, 2)) else {
            return Err(NtlmError::Malformed("a truncated AV pair"));
        };
        if id == MSV_AV_EOL {
            break;
        }
        let value = info
            .get(4..4 + usize::from(len))
            .ok_or(NtlmError::Malformed("an AV pair runs past the target info"))?;
        pairs.push((id, value.to_vec()));
        info = &info[4 + usize::from(len)..];
    }
    Ok(pairs)
}

fn encode_av_pairs(pairs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, value) in pairs {
        out.extend_from_slice(&id.to_le_bytes());
        // Parsed from a u16 length, so it fits one.
        let len = u16::try_from(value.len()).expect("an AV pair read from a u16 length");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(&[0, 0, 0, 0]); // MsvAvEOL
    out
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Uppercase one character at a time, keeping a character whose uppercase
/// is several (`ß`): Windows uppercases user names with a simple,
/// one-to-one case mapping.
fn uppercase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// MS-NLMP §3.3.2: NTOWFv2 = HMAC_MD5(MD4(UNICODE(Passwd)),
/// UNICODE(Uppercase(User) || UserDom)). LMOWFv2 is the same value.
fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash: [u8; 16] = Md4::digest(utf16le(password)).into();
    let mut name = uppercase(user);
    name.push_str(domain);
    hmac_md5(&nt_hash, &[&utf16le(&name)])
}

/// MS-NLMP §3.3.2 `temp`: the NTLMv2_CLIENT_CHALLENGE and the trailing Z(4).
fn client_blob(client_challenge: &[u8; 8], time: u64, target_info: &[u8]) -> Vec<u8> {
    let mut temp = Vec::with_capacity(28 + target_info.len() + 4);
    // Responserversion, HiResponserversion, Z(6).
    temp.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    temp.extend_from_slice(&time.to_le_bytes());
    temp.extend_from_slice(client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(target_info);
    temp.extend_from_slice(&[0; 4]);
    temp
}

/// MS-NLMP §3.3.2: NtChallengeResponse = NTProofStr || temp.
fn ntlmv2_response(
    key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
    time: u64,
    target_info: &[u8],
) -> Vec<u8> {
    let temp = client_blob(client_challenge, time, target_info);
    let proof = hmac_md5(key, &[server_challenge, &temp]);
    let mut response = proof.to_vec();
    response.extend_from_slice(&temp);
    response
}

/// MS-NLMP §3.3.2: LmChallengeResponse = HMAC_MD5(ResponseKeyLM,
/// ServerChallenge || ClientChallenge) || ClientChallenge.
fn lmv2_response(
    key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(&hmac_md5(key, &[server_challenge, client_challenge]));
    out[16..].copy_from_slice(client_challenge);
    out
}

/// Now as a FILETIME; a clock before 1970 gives the epoch.
fn filetime_now() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ticks = since.as_secs() * 10_000_000 + u64::from(since.subsec_nanos() / 100);
    FILETIME_UNIX_EPOCH + ticks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::protocol::digest::parse_challenges;

    // MS-NLMP §4.2.4 "NTLMv2 Authentication", with the common values of
    // §4.2.1: user "User", domain "Domain", password "Password", server
    // challenge 0123456789abcdef, client challenge aa * 8, time 0,
    // workstation "COMPUTER", random session key 55 * 16.
    // https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/7fc694c9-397a-446a-bd80-4635000f2c0f
    // (the same bytes are in pyspnego's tests/_ntlm_raw/test_crypto.py).
    const USER: &str = "User";
    const DOMAIN: &str = "Domain";
    const PASSWORD: &str = "Password";
    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    const CLIENT_CHALLENGE: [u8; 8] = [0xaa; 8];

    /// §4.2.4.1.1 NTOWFv2().
    const NTOWF_V2: [u8; 16] = [
        0x0c, 0x86, 0x8a, 0x40, 0x3b, 0xfd, 0x7a, 0x93, 0xa3, 0x00, 0x1e, 0xf2, 0x2e, 0xf0, 0x2e,
        0x3f,
    ];
    /// §4.2.4.1.2 Session Base Key.
    const SESSION_BASE_KEY: [u8; 16] = [
        0x8d, 0xe4, 0x0c, 0xca, 0xdb, 0xc1, 0x4a, 0x82, 0xf1, 0x5c, 0xb0, 0xad, 0x0d, 0xe9, 0x5c,
        0xa3,
    ];
    /// §4.2.4.2.1 LMv2 Response.
    const LMV2_RESPONSE: [u8; 24] = [
        0x86, 0xc3, 0x50, 0x97, 0xac, 0x9c, 0xec, 0x10, 0x25, 0x54, 0x76, 0x4a, 0x57, 0xcc, 0xcc,
        0x19, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
    ];
    /// §4.2.4.2.2 NTLMv2 Response: its first 16 bytes, NTProofStr.
    const NT_PROOF_STR: [u8; 16] = [
        0x68, 0xcd, 0x0a, 0xb8, 0x51, 0xe5, 0x1c, 0x96, 0xaa, 0xbc, 0x92, 0x7b, 0xeb, 0xef, 0x6a,
        0x1c,
    ];
    /// §4.2.4.2.3 Encrypted Session Key (RC4, which this client does not
    /// do: only placed in the message to check the layout).
    const ENCRYPTED_SESSION_KEY: [u8; 16] = [
        0xc5, 0xda, 0xd2, 0x54, 0x4f, 0xc9, 0x79, 0x90, 0x94, 0xce, 0x1c, 0xe9, 0x0b, 0xc9, 0xd0,
        0x3e,
    ];
    /// §4.2.4.3 the CHALLENGE_MESSAGE (flags 0xe28a8233, target name
    /// "Server", target info NbDomainName "Domain", NbComputerName "Server").
    #[rustfmt::skip]
    const CHALLENGE_MESSAGE: [u8; 104] = [
        0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0c, 0x00,
        0x38, 0x00, 0x00, 0x00, 0x33, 0x82, 0x8a, 0xe2, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x24, 0x00, 0x44, 0x00, 0x00, 0x00,
        0x06, 0x00, 0x70, 0x17, 0x00, 0x00, 0x00, 0x0f, 0x53, 0x00, 0x65, 0x00, 0x72, 0x00, 0x76, 0x00,
        0x65, 0x00, 0x72, 0x00, 0x02, 0x00, 0x0c, 0x00, 0x44, 0x00, 0x6f, 0x00, 0x6d, 0x00, 0x61, 0x00,
        0x69, 0x00, 0x6e, 0x00, 0x01, 0x00, 0x0c, 0x00, 0x53, 0x00, 0x65, 0x00, 0x72, 0x00, 0x76, 0x00,
        0x65, 0x00, 0x72, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    /// §4.2.4.3 the AUTHENTICATE_MESSAGE: flags 0xe2888235, a VERSION
    /// (5.1.2600, revision 15), payload from 72: domain, user,
    /// workstation, LMv2 (0x6c), NTLMv2 (0x84, 84 bytes), session key.
    #[rustfmt::skip]
    const AUTHENTICATE_MESSAGE: [u8; 232] = [
        0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x03, 0x00, 0x00, 0x00, 0x18, 0x00, 0x18, 0x00,
        0x6c, 0x00, 0x00, 0x00, 0x54, 0x00, 0x54, 0x00, 0x84, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0c, 0x00,
        0x48, 0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x00, 0x54, 0x00, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00,
        0x5c, 0x00, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00, 0xd8, 0x00, 0x00, 0x00, 0x35, 0x82, 0x88, 0xe2,
        0x05, 0x01, 0x28, 0x0a, 0x00, 0x00, 0x00, 0x0f, 0x44, 0x00, 0x6f, 0x00, 0x6d, 0x00, 0x61, 0x00,
        0x69, 0x00, 0x6e, 0x00, 0x55, 0x00, 0x73, 0x00, 0x65, 0x00, 0x72, 0x00, 0x43, 0x00, 0x4f, 0x00,
        0x4d, 0x00, 0x50, 0x00, 0x55, 0x00, 0x54, 0x00, 0x45, 0x00, 0x52, 0x00, 0x86, 0xc3, 0x50, 0x97,
        0xac, 0x9c, 0xec, 0x10, 0x25, 0x54, 0x76, 0x4a, 0x57, 0xcc, 0xcc, 0x19, 0xaa, 0xaa, 0xaa, 0xaa,
        0xaa, 0xaa, 0xaa, 0xaa, 0x68, 0xcd, 0x0a, 0xb8, 0x51, 0xe5, 0x1c, 0x96, 0xaa, 0xbc, 0x92, 0x7b,
        0xeb, 0xef, 0x6a, 0x1c, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x0c, 0x00, 0x44, 0x00, 0x6f, 0x00, 0x6d, 0x00, 0x61, 0x00, 0x69, 0x00, 0x6e, 0x00,
        0x01, 0x00, 0x0c, 0x00, 0x53, 0x00, 0x65, 0x00, 0x72, 0x00, 0x76, 0x00, 0x65, 0x00, 0x72, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc5, 0xda, 0xd2, 0x54, 0x4f, 0xc9, 0x79, 0x90,
        0x94, 0xce, 0x1c, 0xe9, 0x0b, 0xc9, 0xd0, 0x3e,
    ];
    /// Where the NTLMv2 response sits in [`AUTHENTICATE_MESSAGE`].
    const NT_RESPONSE_AT: std::ops::Range<usize> = 0x84..0x84 + 84;

    fn spec_challenge() -> Challenge {
        Challenge::parse(&CHALLENGE_MESSAGE).unwrap()
    }

    /// The bytes the security buffer at `at` of an AUTHENTICATE_MESSAGE
    /// points to.
    fn buffer(msg: &[u8], at: usize) -> &[u8] {
        field(msg, at).expect("a security buffer inside the message")
    }

    #[test]
    fn ntowf_v2_vector() {
        assert_eq!(ntowf_v2(PASSWORD, USER, DOMAIN), NTOWF_V2);
        // Only the user name is uppercased.
        assert_eq!(ntowf_v2(PASSWORD, "user", DOMAIN), NTOWF_V2);
        assert_ne!(ntowf_v2(PASSWORD, USER, "DOMAIN"), NTOWF_V2);
    }

    #[test]
    fn responses_and_session_key_vectors() {
        let c = spec_challenge();
        let info = encode_av_pairs(&c.target_info);
        let nt = ntlmv2_response(&NTOWF_V2, &SERVER_CHALLENGE, &CLIENT_CHALLENGE, 0, &info);
        assert_eq!(nt[..16], NT_PROOF_STR);
        assert_eq!(nt, AUTHENTICATE_MESSAGE[NT_RESPONSE_AT]);
        assert_eq!(
            lmv2_response(&NTOWF_V2, &SERVER_CHALLENGE, &CLIENT_CHALLENGE),
            LMV2_RESPONSE
        );
        // SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr): not sent
        // (no MIC, no key exchange), checked to pin NTProofStr's role.
        assert_eq!(hmac_md5(&NTOWF_V2, &[&NT_PROOF_STR]), SESSION_BASE_KEY);
    }

    #[test]
    fn spec_challenge_parses() {
        let c = spec_challenge();
        assert_eq!(c.flags, 0xe28a_8233);
        assert_eq!(c.server_challenge, SERVER_CHALLENGE);
        assert_eq!(c.target_name, utf16le("Server"));
        assert_eq!(
            c.target_info,
            [(2, utf16le("Domain")), (1, utf16le("Server"))]
        );
        assert_eq!(c.timestamp(), None);
        assert!(c.is_unicode());
        // Written back exactly as the server sent it.
        assert_eq!(encode_av_pairs(&c.target_info), CHALLENGE_MESSAGE[0x44..]);
        let debug = format!("{c:?}");
        assert!(
            debug.contains("\"Server\"") && debug.contains("0xe28a8233"),
            "{debug}"
        );
    }

    #[test]
    fn spec_authenticate_message_byte_for_byte() {
        // The layout, against the whole 232 bytes: the spec's message
        // carries a VERSION and an RC4-encrypted session key, which this
        // client does not send, so they are given here.
        let c = spec_challenge();
        let info = encode_av_pairs(&c.target_info);
        let nt = ntlmv2_response(&NTOWF_V2, &SERVER_CHALLENGE, &CLIENT_CHALLENGE, 0, &info);
        let lm = lmv2_response(&NTOWF_V2, &SERVER_CHALLENGE, &CLIENT_CHALLENGE);
        let m = encode_authenticate(&AuthenticateFields {
            lm: &lm,
            nt: &nt,
            domain: &utf16le(DOMAIN),
            user: &utf16le(USER),
            workstation: &utf16le("COMPUTER"),
            session_key: &ENCRYPTED_SESSION_KEY,
            flags: 0xe288_8235,
            version: Some([0x05, 0x01, 0x28, 0x0a, 0x00, 0x00, 0x00, 0x0f]),
        })
        .unwrap();
        assert_eq!(m, AUTHENTICATE_MESSAGE);
    }

    #[test]
    fn authenticate_message_answers_the_spec_challenge() {
        let creds = NtlmCredentials::parse("Domain\\User", PASSWORD);
        let m = authenticate_message(&spec_challenge(), &creds, CLIENT_CHALLENGE, Some(0))
            .unwrap()
            .into_bytes();
        assert_eq!(&m[..12], b"NTLMSSP\0\x03\0\0\0");
        // No VERSION: the payload (the domain first) starts at 64.
        assert_eq!(le_u32(&m, 32), Some(64));
        assert_eq!(buffer(&m, 12), LMV2_RESPONSE);
        assert_eq!(buffer(&m, 20), &AUTHENTICATE_MESSAGE[NT_RESPONSE_AT]);
        assert_eq!(buffer(&m, 28), utf16le(DOMAIN));
        assert_eq!(buffer(&m, 36), utf16le(USER));
        assert_eq!(buffer(&m, 44), b"");
        assert_eq!(buffer(&m, 52), b"");
        let flags = le_u32(&m, 60).unwrap();
        assert_eq!(
            flags,
            NEGOTIATE_UNICODE
                | REQUEST_TARGET
                | NEGOTIATE_NTLM
                | NEGOTIATE_ALWAYS_SIGN
                | NEGOTIATE_EXTENDED_SESSIONSECURITY
                | NEGOTIATE_TARGET_INFO
        );
        assert_eq!(m.len(), 64 + 24 + 84 + 12 + 8);
    }

    #[test]
    fn server_timestamp_is_used_and_lm_is_zero() {
        // The spec's challenge with MsvAvTimestamp added before the EOL.
        let stamp: u64 = 0x01d9_1234_5678_9abc;
        let mut c = spec_challenge();
        c.target_info
            .push((MSV_AV_TIMESTAMP, stamp.to_le_bytes().to_vec()));
        let raw = challenge_bytes(c.flags, &encode_av_pairs(&c.target_info));
        let c = Challenge::parse(&raw).unwrap();
        assert_eq!(c.timestamp(), Some(stamp));
        let creds = NtlmCredentials::new(DOMAIN, USER, PASSWORD);
        let m = authenticate_message(&c, &creds, CLIENT_CHALLENGE, Some(1))
            .unwrap()
            .into_bytes();
        assert_eq!(buffer(&m, 12), [0u8; 24]);
        let nt = buffer(&m, 20);
        assert_eq!(nt[16 + 8..16 + 16], stamp.to_le_bytes());
        let info = encode_av_pairs(&c.target_info);
        assert_eq!(
            nt,
            ntlmv2_response(
                &NTOWF_V2,
                &SERVER_CHALLENGE,
                &CLIENT_CHALLENGE,
                stamp,
                &info
            )
        );
    }

    #[test]
    fn no_timestamp_anywhere_uses_now() {
        let creds = NtlmCredentials::new(DOMAIN, USER, PASSWORD);
        let before = filetime_now();
        let m = authenticate_message(&spec_challenge(), &creds, CLIENT_CHALLENGE, None)
            .unwrap()
            .into_bytes();
        let nt = buffer(&m, 20);
        let time = u64::from_le_bytes(nt[24..32].try_into().unwrap());
        assert!(time >= before && time - before < 60 * 10_000_000, "{time}");
        // 2020-01-01 in FILETIME is 132223104000000000.
        assert!(before > 132_223_104_000_000_000);
    }

    #[test]
    fn oem_challenge_gets_ascii_strings() {
        let c = spec_challenge();
        let raw = challenge_bytes(
            c.flags & !NEGOTIATE_UNICODE,
            &encode_av_pairs(&c.target_info),
        );
        let c = Challenge::parse(&raw).unwrap();
        let m = authenticate_message(
            &c,
            &NtlmCredentials::new("CORP", "alice", "pw").with_workstation("WS1"),
            CLIENT_CHALLENGE,
            Some(0),
        )
        .unwrap()
        .into_bytes();
        assert_eq!(buffer(&m, 28), b"CORP");
        assert_eq!(buffer(&m, 36), b"alice");
        assert_eq!(buffer(&m, 44), b"WS1");
        assert_eq!(le_u32(&m, 60).unwrap() & 3, NEGOTIATE_OEM);
        let err = authenticate_message(
            &c,
            &NtlmCredentials::new("CORP", "j\u{f6}rg", "pw"),
            CLIENT_CHALLENGE,
            Some(0),
        )
        .unwrap_err();
        assert!(matches!(err, NtlmError::NotAscii), "{err:?}");
    }

    /// What Debian's squid 5.7 `ntlm_fake_auth` sends: 49 bytes, no
    /// TARGET_INFO flag, OEM, a target name whose offset points nowhere
    /// (0xaaaaaaae) and "WORKGROUP" where TargetInfoFields would be.
    const FAKE_AUTH_CHALLENGE: &str =
        "TlRMTVNTUAACAAAACQAJAK6qqqoGgggABltX4Srth5EAAAAAAAA6AFdPUktHUk9VUA==";

    #[test]
    fn no_target_info_still_gets_ntlmv2() {
        let c = Challenge::from_token68(FAKE_AUTH_CHALLENGE).unwrap();
        assert_eq!(c.flags, 0x0008_8206);
        assert!(!c.is_unicode() && c.target_info.is_empty() && c.target_name.is_empty());
        let creds = NtlmCredentials::parse("DOMAIN\\aladdin", "open sesame");
        let m = authenticate_message(&c, &creds, CLIENT_CHALLENGE, Some(0))
            .unwrap()
            .into_bytes();
        assert_eq!(buffer(&m, 28), b"DOMAIN");
        assert_eq!(buffer(&m, 36), b"aladdin");
        // NTLMv2 over an AV list that is MsvAvEOL alone: 16 + 28 + 4 + 4.
        let nt = buffer(&m, 20);
        assert_eq!(nt.len(), 52);
        let key = ntowf_v2("open sesame", "aladdin", "DOMAIN");
        assert_eq!(
            nt,
            ntlmv2_response(&key, &c.server_challenge, &CLIENT_CHALLENGE, 0, &[0; 4])
        );
        // A 32-byte message (the oldest servers'), too.
        let c = Challenge::parse(&CHALLENGE_MESSAGE[..32]).unwrap();
        assert!(c.target_info.is_empty());
    }

    #[test]
    fn negotiate_message_bytes() {
        assert_eq!(
            negotiate_message(),
            [
                b'N', b'T', b'L', b'M', b'S', b'S', b'P', 0, 1, 0, 0, 0, 0x07, 0x82, 0x08, 0x00, 0,
                0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0
            ]
        );
        let h = negotiate_header();
        assert_eq!(
            h.to_str().unwrap(),
            "NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAgAAAAAAAAACAAAAA="
        );
    }

    #[test]
    fn credentials_parse() {
        let c = NtlmCredentials::parse("CORP\\alice", "pw");
        assert_eq!((c.domain(), c.user()), ("CORP", "alice"));
        let c = NtlmCredentials::parse("CORP/alice", "pw");
        assert_eq!((c.domain(), c.user()), ("CORP", "alice"));
        // A UPN is a user name, with no domain.
        let c = NtlmCredentials::parse("alice@corp.example.com", "pw");
        assert_eq!((c.domain(), c.user()), ("", "alice@corp.example.com"));
        let c = NtlmCredentials::parse("alice", "pw");
        assert_eq!((c.domain(), c.user()), ("", "alice"));
        // Only the first separator splits.
        let c = NtlmCredentials::parse("CORP\\a\\b", "pw");
        assert_eq!((c.domain(), c.user()), ("CORP", "a\\b"));
    }

    #[test]
    fn uppercase_is_one_to_one() {
        assert_eq!(uppercase("stra\u{df}e-\u{e9}"), "STRA\u{df}E-\u{c9}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let creds = NtlmCredentials::parse("CORP\\alice", "Xq7-Pa55w0rd");
        let debug = format!("{creds:?} {creds:#?}");
        assert!(debug.contains("CORP"), "{debug}");
        assert!(
            !debug.contains("Xq7-Pa55w0rd") && !debug.contains("alice"),
            "{debug}"
        );
        let m = authenticate_message(&spec_challenge(), &creds, CLIENT_CHALLENGE, Some(0)).unwrap();
        assert_eq!(
            format!("{m:?}"),
            format!(
                "AuthenticateMessage(<{} bytes redacted>)",
                m.as_bytes().len()
            )
        );
        let h = authenticate_header(&spec_challenge(), &creds).unwrap();
        assert!(h.is_sensitive());
        assert_eq!(format!("{h:?}"), "Sensitive");
    }

    #[test]
    fn header_round_trip() {
        let token = STANDARD.encode(CHALLENGE_MESSAGE);
        let challenges = parse_challenges(&format!("Negotiate, NTLM {token}, Basic realm=\"x\""));
        assert_eq!(
            Challenge::from_challenges(&challenges).unwrap(),
            spec_challenge()
        );
        // Without padding, too.
        let challenges = parse_challenges(&format!("NTLM {}", token.trim_end_matches('=')));
        assert_eq!(
            Challenge::from_challenges(&challenges).unwrap(),
            spec_challenge()
        );

        let creds = NtlmCredentials::new(DOMAIN, USER, PASSWORD);
        let h = authenticate_header(&spec_challenge(), &creds).unwrap();
        let text = h.to_str().unwrap();
        let m = STANDARD
            .decode(text.strip_prefix("NTLM ").unwrap())
            .unwrap();
        assert_eq!(buffer(&m, 36), utf16le(USER));
        // A fresh client challenge each time.
        let again = authenticate_header(&spec_challenge(), &creds).unwrap();
        assert_ne!(h, again);
    }

    #[test]
    fn header_errors() {
        let err = |v: &str| Challenge::from_challenges(&parse_challenges(v)).unwrap_err();
        assert!(matches!(err("Basic realm=\"x\""), NtlmError::NotOffered));
        assert!(matches!(
            err("NTLM, Basic realm=\"x\""),
            NtlmError::NoChallenge
        ));
        assert!(matches!(
            err("NTLM !!!!"),
            NtlmError::NoChallenge | NtlmError::Base64
        ));
        assert!(matches!(err("NTLM QUJD"), NtlmError::Malformed(_)));
        let long = "A".repeat(MAX_MESSAGE * 2);
        assert!(matches!(
            err(&format!("NTLM {long}")),
            NtlmError::TooLong(_)
        ));
        for e in [
            NtlmError::NotOffered,
            NtlmError::NoChallenge,
            NtlmError::Base64,
            NtlmError::Malformed("x"),
            NtlmError::TooLong(1),
            NtlmError::NotAscii,
            NtlmError::FieldTooLong("user name"),
        ] {
            let text = e.to_string();
            assert!(
                text.starts_with(|c: char| c.is_lowercase()) && !text.ends_with('.'),
                "{text}"
            );
        }
    }

    /// A CHALLENGE_MESSAGE with `flags` and `target_info`, no VERSION.
    fn challenge_bytes(flags: u32, target_info: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(SIGNATURE);
        m.extend_from_slice(&CHALLENGE.to_le_bytes());
        push_fields(&mut m, 0, 48);
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&SERVER_CHALLENGE);
        m.extend_from_slice(&[0; 8]);
        push_fields(&mut m, target_info.len(), 48);
        m.extend_from_slice(target_info);
        m
    }

    #[test]
    fn malformed_challenges() {
        let bad = |m: &[u8]| Challenge::parse(m).unwrap_err();
        assert!(matches!(bad(b""), NtlmError::Malformed(_)));
        let mut m = CHALLENGE_MESSAGE;
        m[8] = 3;
        assert!(matches!(
            bad(&m),
            NtlmError::Malformed("not a CHALLENGE_MESSAGE")
        ));
        let mut m = CHALLENGE_MESSAGE;
        m[0] = b'X';
        assert!(matches!(
            bad(&m),
            NtlmError::Malformed("no NTLMSSP signature")
        ));
        // Target info length beyond the message, offset past the end.
        let mut m = CHALLENGE_MESSAGE;
        m[40..42].copy_from_slice(&0xffffu16.to_le_bytes());
        assert!(matches!(bad(&m), NtlmError::Malformed(_)));
        let mut m = CHALLENGE_MESSAGE;
        m[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(bad(&m), NtlmError::Malformed(_)));
        // An AV pair longer than the target info; a bad timestamp length.
        const INFO: u32 = NEGOTIATE_UNICODE | NEGOTIATE_TARGET_INFO;
        assert!(matches!(
            bad(&challenge_bytes(INFO, &[2, 0, 9, 0, b'x', 0])),
            NtlmError::Malformed(_)
        ));
        assert!(matches!(
            bad(&challenge_bytes(INFO, &[7, 0, 2, 0, 1, 2, 0, 0, 0, 0])),
            NtlmError::Malformed("MsvAvTimestamp is not 8 bytes")
        ));
        // No EOL is tolerated (written back on send); bytes after it ignored.
        let c = Challenge::parse(&challenge_bytes(INFO, &[2, 0, 2, 0, b'D', 0])).unwrap();
        assert_eq!(
            encode_av_pairs(&c.target_info),
            [2, 0, 2, 0, b'D', 0, 0, 0, 0, 0]
        );
        let c = Challenge::parse(&challenge_bytes(INFO, &[0, 0, 0, 0, 0xff])).unwrap();
        assert!(c.target_info.is_empty());
        // Without the TARGET_INFO flag, whatever is at 40 is not read.
        let c = Challenge::parse(&challenge_bytes(1, &[2, 0, 9, 0, b'x', 0])).unwrap();
        assert!(c.target_info.is_empty());
        // Too long.
        assert!(matches!(
            bad(&vec![0; MAX_MESSAGE + 1]),
            NtlmError::TooLong(_)
        ));
    }

    #[test]
    fn never_panics_on_prefixes_flips_and_mutations() {
        for n in 0..CHALLENGE_MESSAGE.len() {
            let _ = Challenge::parse(&CHALLENGE_MESSAGE[..n]);
        }
        for byte in 0..CHALLENGE_MESSAGE.len() {
            for bit in 0..8 {
                let mut m = CHALLENGE_MESSAGE;
                m[byte] ^= 1 << bit;
                if let Ok(c) = Challenge::parse(&m) {
                    let creds = NtlmCredentials::new(DOMAIN, USER, PASSWORD);
                    // Whatever parsed can be answered.
                    authenticate_message(&c, &creds, CLIENT_CHALLENGE, Some(0)).unwrap();
                }
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut m = CHALLENGE_MESSAGE.to_vec();
            for _ in 0..(next() % 8) {
                let at = (next() as usize) % (m.len() + 1);
                match next() % 3 {
                    0 if at < m.len() => m[at] = next() as u8,
                    1 if at < m.len() => {
                        m.remove(at);
                    }
                    _ => m.insert(at, next() as u8),
                }
            }
            let _ = Challenge::parse(&m);
        }
    }

    proptest::proptest! {
        #[test]
        fn proptest_parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = Challenge::parse(&bytes);
            let mut m = CHALLENGE_MESSAGE[..48].to_vec();
            m.extend_from_slice(&bytes);
            let _ = Challenge::parse(&m);
        }
    }
}

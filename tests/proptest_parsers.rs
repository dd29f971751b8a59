//! The fuzz targets' properties, run by proptest in every `cargo test`: the CONNECT answer
//! parser, the CONNECT read loop and `Proxy::new` never panic, never stall, and never
//! buffer past the cap.

use proptest::prelude::*;
use tower_tunnel::__fuzz::{connect_exchange, parse_reply, socks_reply, Exchange, Parsed};
use tower_tunnel::{ErrorKind, Proxy};

/// A valid answer head: a status line with a 2xx or non-2xx code and a few header fields.
fn valid_head() -> impl Strategy<Value = (u16, Vec<u8>)> {
    let code = prop_oneof![200u16..=299, 300u16..=599];
    let field = ("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,40}");
    (code, prop::collection::vec(field, 0..8), any::<bool>()).prop_map(|(code, fields, v10)| {
        let mut head = format!("HTTP/1.{} {code} Whatever\r\n", u8::from(!v10));
        for (name, value) in fields {
            head.push_str(&format!("{name}: {}\r\n", value.trim()));
        }
        head.push_str("\r\n");
        (code, head.into_bytes())
    })
}

/// The fixed texts of `Proxy::new`'s errors that hold a digit.
const FIXED_MESSAGES: &str =
    "the scheme must be http, https, socks5, socks5h, socks4a, socks4 or socks; \
     user name is not UTF-8; password is not UTF-8";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn socks_parsers_never_panic_nor_overclaim(
        which in 0u8..4,
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(Some(consumed)) = socks_reply(which, &bytes) {
            prop_assert!(consumed > 0 && consumed <= bytes.len());
        }
    }

    #[test]
    fn parse_reply_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        match parse_reply(&bytes) {
            Ok(Parsed::Interim(n)) | Ok(Parsed::Established(n)) => {
                prop_assert!(n > 0 && n <= bytes.len())
            }
            _ => {}
        }
    }

    #[test]
    fn valid_head_split_anywhere((code, head) in valid_head(), cut in any::<prop::sample::Index>(), tail in prop::collection::vec(any::<u8>(), 0..32)) {
        let cut = cut.index(head.len());
        // Any prefix is incomplete, never an error.
        prop_assert_eq!(parse_reply(&head[..cut]), Ok(Parsed::Partial));
        // The whole head parses, whatever follows it.
        let mut whole = head.clone();
        whole.extend_from_slice(&tail);
        let expected = if (200..300).contains(&code) {
            Parsed::Established(head.len())
        } else {
            Parsed::Refused(code)
        };
        prop_assert_eq!(parse_reply(&whole), Ok(expected));
        // Through the read loop, split in two reads at the cut, the result is the same.
        let got = connect_exchange(&[&whole[..cut], &whole[cut..]], 16 * 1024);
        match got {
            Some(Exchange::Established { head_end, buffered }) => {
                prop_assert!((200..300).contains(&code));
                prop_assert_eq!(head_end, head.len());
                prop_assert_eq!(buffered, whole.len());
            }
            Some(Exchange::Failed(kind)) => {
                prop_assert!(!(200..300).contains(&code));
                let want = if code == 407 { ErrorKind::ProxyAuthRequired } else { ErrorKind::ProxyRefused };
                prop_assert_eq!(kind, want);
            }
            None => prop_assert!(false, "stalled"),
        }
    }

    #[test]
    fn exchange_on_arbitrary_reads_is_bounded(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..40),
        cap in 64usize..4096,
    ) {
        let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        match connect_exchange(&chunks, cap) {
            Some(Exchange::Established { head_end, buffered }) => {
                prop_assert!(head_end <= buffered && buffered <= cap)
            }
            Some(Exchange::Failed(_)) => {}
            None => prop_assert!(false, "stalled"),
        }
    }

    #[test]
    fn endless_headers_stop_at_the_cap(cap in 64usize..8192, line in "[A-Za-z]{1,8}: [a-z]{0,200}") {
        let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
        while answer.len() < 64 * 1024 {
            answer.extend_from_slice(line.as_bytes());
            answer.extend_from_slice(b"\r\n");
        }
        let got = connect_exchange(&[&answer], cap);
        prop_assert_eq!(got, Some(Exchange::Failed(ErrorKind::ProxyHeadersTooLarge)));
    }

    #[test]
    fn proxy_url_never_panics(url in ".{0,80}") {
        match Proxy::new(&url) {
            Ok(p) => {
                prop_assert!(p.authority().port_u16().is_some());
                prop_assert!(!p.authority().as_str().contains('@'));
                prop_assert!(!p.to_string().contains('@'));
            }
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidProxy),
        }
    }

    #[test]
    fn rejected_proxy_url_never_echoes_the_password(
        scheme in "(http|https|socks5|ftp|)",
        password in "[A-Za-z]{2,10}[0-9][A-Za-z0-9]{1,10}",
        rest in "[ -~]{0,30}",
    ) {
        let url = format!("{scheme}://user:{password}@{rest}");
        if let Err(e) = Proxy::new(&url) {
            let shown = format!("{e} {e:?}");
            // A "password" that is part of a fixed message ("socks5h") proves nothing.
            if !FIXED_MESSAGES.contains(&password) {
                prop_assert!(!shown.contains(&password), "{}", shown);
            }
        }
    }

    #[test]
    fn proxy_url_password_is_never_shown(
        user in "[a-z]{1,8}",
        pass in "[A-Za-z0-9]{12,20}",
        port in 1u16..,
    ) {
        let p = Proxy::new(&format!("http://{user}:{pass}@127.0.0.1:{port}")).unwrap();
        prop_assert!(p.has_credentials());
        let shown = format!("{:?}", p);
        prop_assert!(!shown.contains(&pass));
    }
}

#[test]
fn known_answers() {
    assert_eq!(
        parse_reply(b"HTTP/1.1 200 OK\nVia: x\n\n"),
        Ok(Parsed::Established(24))
    );
    assert_eq!(
        parse_reply(b"HTTP/1.1 100 Continue\r\n\r\n"),
        Ok(Parsed::Interim(25))
    );
    assert!(parse_reply(b"HTTP/9.9 200 OK\r\n\r\n").is_err());
    assert_eq!(
        connect_exchange(
            &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nX"],
            1024
        ),
        Some(Exchange::Established {
            head_end: 44,
            buffered: 45
        })
    );
    assert_eq!(
        connect_exchange(&[], 1024),
        Some(Exchange::Failed(ErrorKind::ProxyClosed))
    );
    assert_eq!(
        connect_exchange(&[b"HTTP/1.1 2"], 1024),
        Some(Exchange::Failed(ErrorKind::ProxyTruncated))
    );
}

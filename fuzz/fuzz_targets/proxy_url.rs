//! `Proxy::new` on arbitrary strings: no panic; an accepted proxy has an explicit port and
//! a credential-free authority and display; a rejected one never echoes its password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_tunnel::Proxy;

/// The fixed texts of `Proxy::new`'s errors that hold a digit: a "password" that is part
/// of one (`UTF-8`, `socks5h`) shows up in the message without being echoed.
const FIXED_MESSAGES: &str =
    "the scheme must be http, https, socks5, socks5h, socks4a, socks4 or socks; \
     user name is not UTF-8; password is not UTF-8; invalid IPv6 address";

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    match Proxy::new(url) {
        Ok(proxy) => {
            assert!(proxy.authority().port_u16().is_some());
            assert!(!proxy.authority().as_str().contains('@'));
            assert!(!proxy.to_string().contains('@'));
            let _ = format!("{proxy:?}");
        }
        Err(err) => {
            // The password of `scheme://user:password@host`, when it looks like one (letters
            // and a digit, not part of a fixed message): it must not be echoed.
            let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
            if let Some((userinfo, _)) = after_scheme.rsplit_once('@') {
                if let Some((_, password)) = userinfo.split_once(':') {
                    // Letters and digits only, so that it cannot be spliced together
                    // from the fixed texts around it (`is not UTF-8 tower_tunnel::Error`).
                    if password.len() >= 4
                        && password.bytes().all(|b| b.is_ascii_alphanumeric())
                        && password.bytes().any(|b| b.is_ascii_digit())
                        && !FIXED_MESSAGES.contains(password)
                    {
                        let shown = format!("{err} {err:?}");
                        assert!(!shown.contains(password), "{shown}");
                    }
                }
            }
        }
    }
});

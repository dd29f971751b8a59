//! `Proxy::new` on arbitrary strings: no panic; an accepted proxy has an explicit port and
//! a credential-free dial URI; a rejected one never echoes its password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_tunnel::Proxy;

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    match Proxy::new(url) {
        Ok(proxy) => {
            assert!(proxy.authority().port_u16().is_some());
            assert!(!proxy.uri().to_string().contains('@'));
            let _ = format!("{proxy:?}");
        }
        Err(err) => {
            // The password of `scheme://user:password@host`: with a digit in it (no fixed
            // message text has one) it must not be echoed.
            let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
            if let Some((userinfo, _)) = after_scheme.rsplit_once('@') {
                if let Some((_, password)) = userinfo.split_once(':') {
                    if password.len() >= 4 && password.bytes().any(|b| b.is_ascii_digit()) {
                        let shown = format!("{err} {err:?}");
                        assert!(!shown.contains(password), "{shown}");
                    }
                }
            }
        }
    }
});

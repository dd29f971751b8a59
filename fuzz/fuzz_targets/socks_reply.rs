//! The SOCKS5, RFC 1929 and SOCKS4 reply parsers on arbitrary bytes: no panic, a
//! complete reply never claims more bytes than it was given, and an incomplete one
//! always asks for more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_tunnel::__fuzz::socks_reply;

fuzz_target!(|data: &[u8]| {
    let Some((&which, buf)) = data.split_first() else {
        return;
    };
    if let Ok(Some(consumed)) = socks_reply(which, buf) {
        assert!(consumed > 0 && consumed <= buf.len());
    }
});

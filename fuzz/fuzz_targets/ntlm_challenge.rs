//! The NTLM CHALLENGE_MESSAGE parser on arbitrary bytes: no panic, and whatever parses
//! can be answered with an AUTHENTICATE_MESSAGE.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_tunnel::__fuzz::ntlm_challenge;

fuzz_target!(|data: &[u8]| {
    if let Ok(len) = ntlm_challenge(data) {
        assert!(len >= 64);
    }
});

//! The CONNECT answer parser on arbitrary bytes: no panic, and every length it reports
//! lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_tunnel::__fuzz::{parse_reply, Parsed};

fuzz_target!(|data: &[u8]| {
    match parse_reply(data) {
        Ok(Parsed::Interim(n)) | Ok(Parsed::Established(n)) => assert!(n > 0 && n <= data.len()),
        Ok(Parsed::Refused(code)) => assert!((100..=999).contains(&code)),
        Ok(Parsed::Partial) | Err(_) => {}
    }
});

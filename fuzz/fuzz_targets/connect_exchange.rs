//! The whole CONNECT exchange against a proxy whose answer arrives in arbitrary pieces:
//! no panic, it always finishes, and it never buffers more than the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_tunnel::__fuzz::{connect_exchange, Exchange};

fuzz_target!(|data: &[u8]| {
    // First byte: the cap, 64..=16 KiB. Then the answer, cut at every 0xFF byte into the
    // reads the proxy's answer arrives in.
    let Some((&cap, rest)) = data.split_first() else {
        return;
    };
    let max_head = 64 + usize::from(cap) * 64;
    let chunks: Vec<&[u8]> = rest.split(|b| *b == 0xFF).collect();
    match connect_exchange(&chunks, max_head) {
        Some(Exchange::Established { head_end, buffered }) => {
            assert!(head_end <= buffered && buffered <= max_head)
        }
        Some(Exchange::Failed(_)) => {}
        None => panic!("the exchange stalled on a ready stream"),
    }
});

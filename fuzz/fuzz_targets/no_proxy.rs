//! `NoProxy::parse` and `NoProxy::matches` on arbitrary input: no panic, and the list's
//! laws hold whatever the entries are.
//!
//! Input: two bytes of port, then `list` and `host` separated by the first `\n`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_tunnel::NoProxy;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let port = u16::from_be_bytes([data[0], data[1]]);
    let Ok(text) = std::str::from_utf8(&data[2..]) else {
        return;
    };
    let (list, host) = text.split_once('\n').unwrap_or((text, "example.com"));

    let no_proxy = NoProxy::parse(list);
    let matched = no_proxy.matches(host, port);

    // Parsing is a pure function of the list, and extra separators change nothing.
    assert_eq!(no_proxy, NoProxy::parse(list));
    assert_eq!(no_proxy, NoProxy::parse(&format!(", {list}\t,")));
    // An empty list bypasses nothing; `*` anywhere bypasses everything.
    if no_proxy.is_empty() {
        assert!(!matched);
    }
    assert!(NoProxy::parse(&format!("{list},*")).matches(host, port));
    // Adding an entry never takes a match away.
    if matched {
        assert!(NoProxy::parse(&format!("{list},unrelated.invalid")).matches(host, port));
    }
    // Names and IP literals compare case-insensitively.
    assert_eq!(matched, no_proxy.matches(&host.to_ascii_uppercase(), port));
    assert_eq!(matched, no_proxy.matches(&host.to_ascii_lowercase(), port));
    // A plain name matches with or without one trailing dot.
    if !host.is_empty()
        && !host.ends_with('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        assert_eq!(matched, no_proxy.matches(&format!("{host}."), port));
    }
    // A bare IPv6 literal and its bracketed form are the same target.
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        assert_eq!(matched, no_proxy.matches(&format!("[{host}]"), port));
    }
});

//! The PAC API a script sees: the functions written in JavaScript, and the
//! ones answered from Rust (name resolution, the machine's address, the
//! IPv6 extensions, `alert`).
//!
//! Semantics follow Chromium's `net/proxy_resolution/pac_js_library.h`
//! (itself Mozilla's `ProxyAutoConfig.cpp` utility script) and Chromium's
//! native bindings in `proxy_resolver_v8.cc` for `isPlainHostName`,
//! `dnsResolve*`, `myIpAddress*`, `sortIpAddressList`, `isInNetEx` and
//! `getClientVersion`; Microsoft's "IPv6 extensions to PAC" define the
//! `*Ex` family. The JavaScript below is written for this crate; the
//! behaviour (including quirks such as `shExpMatch` being a regular
//! expression with `.`, `*` and `?` translated) is the browsers', with one
//! exception: a `dateRange` month range ends on the month's last day,
//! where the browsers' script runs an end of `"FEB"` into March.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

/// The JavaScript half of the library, evaluated before the script. Every
/// time-dependent function reads the clock through `__pacNow()` (native),
/// so tests can set it.
pub(super) const JS_LIBRARY: &str = r#"
function dnsDomainIs(host, domain) {
    host = String(host); domain = String(domain);
    return host.length >= domain.length &&
        host.substring(host.length - domain.length) == domain;
}
function dnsDomainLevels(host) {
    return String(host).split('.').length - 1;
}
function localHostOrDomainIs(host, hostdom) {
    host = String(host); hostdom = String(hostdom);
    return host == hostdom || hostdom.lastIndexOf(host + '.', 0) == 0;
}
function __pacIsIpv4(text) {
    var m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
    if (m == null) return false;
    for (var i = 1; i <= 4; i++) if (+m[i] > 255) return false;
    return true;
}
function __pacIpv4Bits(text) {
    var p = text.split('.');
    return ((p[0] & 0xff) << 24) | ((p[1] & 0xff) << 16) | ((p[2] & 0xff) << 8) | (p[3] & 0xff);
}
function isInNet(ipaddr, pattern, maskstr) {
    ipaddr = String(ipaddr); pattern = String(pattern); maskstr = String(maskstr);
    if (!__pacIsIpv4(pattern) || !__pacIsIpv4(maskstr)) return false;
    if (!__pacIsIpv4(ipaddr)) {
        ipaddr = dnsResolve(ipaddr);
        if (ipaddr == null) return false;
    }
    var mask = __pacIpv4Bits(maskstr);
    return (__pacIpv4Bits(ipaddr) & mask) == (__pacIpv4Bits(pattern) & mask);
}
function isResolvable(host) {
    return dnsResolve(host) != null;
}
function isResolvableEx(host) {
    return dnsResolveEx(host) != '';
}
function shExpMatch(url, pattern) {
    pattern = String(pattern).replace(/\./g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.');
    return new RegExp('^' + pattern + '$').test(url);
}
var __pacDays = {SUN: 0, MON: 1, TUE: 2, WED: 3, THU: 4, FRI: 5, SAT: 6};
var __pacMonths = {JAN: 0, FEB: 1, MAR: 2, APR: 3, MAY: 4, JUN: 5, JUL: 6,
                   AUG: 7, SEP: 8, OCT: 9, NOV: 10, DEC: 11};
function __pacDate() {
    return new Date(__pacNow());
}
function weekdayRange() {
    var argc = arguments.length;
    if (argc < 1) return false;
    var now = __pacDate();
    var today;
    if (arguments[argc - 1] == 'GMT') { argc--; today = now.getUTCDay(); }
    else { today = now.getDay(); }
    var day = function (name) { return (name in __pacDays) ? __pacDays[name] : -1; };
    var from = day(arguments[0]);
    var to = argc == 2 ? day(arguments[1]) : from;
    if (from == -1 || to == -1) return false;
    return from <= to ? (from <= today && today <= to) : (to >= today || today >= from);
}
// Moves the end of a date range to (year, month) with its day (31 unless
// given) cut to the month's length: "FEB" as an end is 28 or 29 February,
// never 3 March, as a plain setMonth on 31 December would give.
function __pacEndIn(d, year, month, day) {
    d.setDate(1);
    d.setFullYear(year, month);
    var last = new Date(d.getTime());
    last.setFullYear(year, month + 1, 0);
    d.setDate(day < last.getDate() ? day : last.getDate());
}
function dateRange() {
    var argc = arguments.length;
    if (argc < 1) return false;
    var now = __pacDate();
    var gmt = arguments[argc - 1] == 'GMT';
    if (gmt) argc--;
    var month = function (name) { return (name in __pacMonths) ? __pacMonths[name] : -1; };
    if (argc == 1) {
        var n = parseInt(arguments[0]);
        if (isNaN(n)) return (gmt ? now.getUTCMonth() : now.getMonth()) == month(arguments[0]);
        if (n < 32) return (gmt ? now.getUTCDate() : now.getDate()) == n;
        return (gmt ? now.getUTCFullYear() : now.getFullYear()) == n;
    }
    var year = now.getFullYear();
    var start = new Date(year, 0, 1, 0, 0, 0);
    var end = new Date(year, 11, 31, 23, 59, 59);
    var sameMonth = false;
    var half = argc >> 1;
    var endDay = 31;
    for (var i = 0; i < argc; i++) {
        var d = i < half ? start : end;
        var v = parseInt(arguments[i]);
        if (i >= half && (isNaN(v) || v >= 32)) {
            if (isNaN(v)) __pacEndIn(end, end.getFullYear(), month(arguments[i]), endDay);
            else __pacEndIn(end, v, end.getMonth(), endDay);
        }
        else if (isNaN(v)) d.setMonth(month(arguments[i]));
        else if (v < 32) { if (i < half) sameMonth = argc <= 2; else endDay = v; d.setDate(v); }
        else d.setFullYear(v);
    }
    if (sameMonth) { start.setMonth(now.getMonth()); end.setMonth(now.getMonth()); }
    if (gmt) {
        var utc = now;
        utc.setFullYear(now.getUTCFullYear()); utc.setMonth(now.getUTCMonth());
        utc.setDate(now.getUTCDate()); utc.setHours(now.getUTCHours());
        utc.setMinutes(now.getUTCMinutes()); utc.setSeconds(now.getUTCSeconds());
        now = utc;
    }
    return start <= end ? (start <= now && now <= end) : (end >= now || now >= start);
}
function timeRange() {
    var argc = arguments.length;
    if (argc < 1) return false;
    var now = __pacDate();
    var gmt = false;
    if (arguments[argc - 1] == 'GMT') { gmt = true; argc--; }
    var hour = gmt ? now.getUTCHours() : now.getHours();
    if (argc == 1) return hour == arguments[0];
    if (argc == 2) return arguments[0] <= hour && hour <= arguments[1];
    var start = __pacDate();
    var end = __pacDate();
    if (argc == 6) {
        start.setSeconds(arguments[2]);
        end.setSeconds(arguments[5]);
    } else if (argc != 4) {
        throw 'timeRange: bad number of arguments';
    }
    var mid = argc >> 1;
    start.setHours(arguments[0]); start.setMinutes(arguments[1]);
    end.setHours(arguments[mid]); end.setMinutes(arguments[mid + 1]);
    if (mid == 2) end.setSeconds(59);
    if (gmt) {
        now.setFullYear(now.getUTCFullYear()); now.setMonth(now.getUTCMonth());
        now.setDate(now.getUTCDate()); now.setHours(now.getUTCHours());
        now.setMinutes(now.getUTCMinutes()); now.setSeconds(now.getUTCSeconds());
    }
    return start <= end ? (start <= now && now <= end) : (end >= now || now >= start);
}
"#;

/// `isPlainHostName(host)`: no dot, and not an IPv6 literal (Chromium's
/// `IsPlainHostName`: `::1` is not a plain host name; `[::1]`, in
/// brackets, is not an IP literal and so is one).
pub(super) fn is_plain_host_name(host: &str) -> bool {
    !host.contains('.') && host.parse::<Ipv6Addr>().is_err()
}

/// `isInNetEx(ip, prefix)`: whether the IP literal `ip` (taken exactly as
/// given: no name is resolved, no blank trimmed, as Chromium's `IsInNetEx`)
/// lies in the CIDR `prefix` (`address/bits`, blanks around either part
/// allowed, as Chromium's `ParseCIDRBlock`). An IPv4 address and an
/// IPv4-mapped IPv6 prefix (or the reverse) compare as the same address.
pub(super) fn is_in_net_ex(ip: &str, prefix: &str) -> bool {
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let Some(net) = parse_cidr(prefix) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(_), IpNet::V4(_)) | (IpAddr::V6(_), IpNet::V6(_)) => net.contains(&ip),
        (IpAddr::V4(v4), IpNet::V6(_)) => net.contains(&IpAddr::V6(v4.to_ipv6_mapped())),
        (IpAddr::V6(v6), IpNet::V4(_)) => v6
            .to_ipv4_mapped()
            .is_some_and(|v4| net.contains(&IpAddr::V4(v4))),
    }
}

/// `address/bits`; the address's host bits may be set (`198.95.3.3/16`).
fn parse_cidr(text: &str) -> Option<IpNet> {
    let (addr, bits) = text.split_once('/')?;
    let bits = bits.trim();
    if bits.contains('/') || bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let addr = addr.trim().parse::<IpAddr>().ok()?;
    let bits = bits.parse::<u8>().ok()?;
    IpNet::new(addr, bits).ok()
}

/// `sortIpAddressList(list)`: the `;`-separated addresses, blanks and tabs
/// removed and empty entries skipped, sorted IPv6 first, then IPv4, each in
/// ascending order, stably, and given back as they were written (Chromium's
/// `SortIpAddressList`: `"0::1;::1"` stays as it is). `None` (the script
/// sees `false`) when no address is left or an entry is not an address.
pub(super) fn sort_ip_address_list(list: &str) -> Option<String> {
    let cleaned: String = list.chars().filter(|c| !matches!(c, ' ' | '\t')).collect();
    let mut entries = cleaned
        .split(';')
        .filter(|entry| !entry.is_empty())
        .map(|entry| entry.parse::<IpAddr>().map(|ip| (ip, entry)))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    if entries.is_empty() {
        return None;
    }
    // A stable sort: equal addresses keep their order (and their spelling).
    entries.sort_by_key(|(ip, _)| (ip.is_ipv4(), *ip));
    let texts: Vec<&str> = entries.iter().map(|(_, text)| *text).collect();
    Some(texts.join(";"))
}

/// The name a PAC function hands to the resolver, as Chromium's
/// `GetHostnameArgument`: ASCII text as it is (the empty name and any
/// other odd text included), other text converted to punycode (IDNA);
/// `None` when that conversion fails.
pub(super) fn host_for_resolver(name: &str) -> Option<String> {
    if name.is_ascii() {
        return Some(name.to_owned());
    }
    idna::domain_to_ascii(name).ok()
}

/// Addresses joined with `;`, as the `*Ex` functions answer.
pub(super) fn join(ips: &[IpAddr]) -> String {
    let mut out = String::new();
    for (n, ip) in ips.iter().enumerate() {
        if n > 0 {
            out.push(';');
        }
        out.push_str(&ip.to_string());
    }
    out
}

/// The first non-loopback IPv4 address of `ips`, else the first
/// non-loopback one, for `myIpAddress()`.
pub(super) fn pick_my_ip(ips: &[IpAddr]) -> Option<IpAddr> {
    let usable = || {
        ips.iter()
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
    };
    usable()
        .find(|ip| ip.is_ipv4())
        .or_else(|| usable().next())
        .copied()
}

/// The machine's host name, for `myIpAddress()`; `localhost` when it
/// cannot be read.
pub(super) fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty() && s.len() <= 253)
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_host_names() {
        for (host, plain) in [
            ("www", true),
            ("www.example.com", false),
            ("", true),
            ("localhost", true),
            ("::1", false),
            ("[::1]", true),
            ("fe80::1", false),
            ("::192.186.1.1", false),
            ("foopy::1", true),
            ("foo:112", true),
            (":", true),
            ("[:]", true),
            ("10.0.0.1", false),
            ("host-1", true),
        ] {
            assert_eq!(is_plain_host_name(host), plain, "{host}");
        }
    }

    #[test]
    fn in_net_ex() {
        for (ip, prefix, inside) in [
            ("10.1.2.3", "10.0.0.0/8", true),
            ("11.1.2.3", "10.0.0.0/8", false),
            ("198.95.249.79", "198.95.249.79/32", true),
            ("198.95.249.80", "198.95.249.79/32", false),
            ("3ffe:8311:ffff::1", "3ffe:8311:ffff::/48", true),
            ("3ffe:8311:fffe::1", "3ffe:8311:ffff::/48", false),
            ("10.1.2.3", "::ffff:10.0.0.0/104", true),
            ("::ffff:10.1.2.3", "10.0.0.0/8", true),
            ("::1", "10.0.0.0/8", false),
            ("example.com", "10.0.0.0/8", false),
            ("10.1.2.3", "10.0.0.0", false),
            ("10.1.2.3", "10.0.0.0/33", false),
            ("10.1.2.3", "garbage", false),
            ("", "0.0.0.0/0", false),
            ("127.0.0.1 ", "127.0.0.1/32", false),
            (" 127.0.0.1", "127.0.0.1/32", false),
            ("[::1]", "::1/128", false),
            ("10.1.2.3", " 10.0.0.0 / 8 ", true),
            ("10.1.2.3", "10.0.0.0/8/8", false),
            ("10.1.2.3", "10.0.0.0/+8", false),
            ("198.95.1.1", "198.95.3.3/16", true),
        ] {
            assert_eq!(is_in_net_ex(ip, prefix), inside, "{ip} in {prefix}");
        }
    }

    #[test]
    fn sorted_address_lists() {
        for (list, sorted) in [
            ("10.2.3.9;10.2.3.1", Some("10.2.3.1;10.2.3.9")),
            ("10.2.3.9;::1;10.2.3.1", Some("::1;10.2.3.1;10.2.3.9")),
            (
                "2001:db8::2; ::1 ;192.168.0.1",
                Some("::1;2001:db8::2;192.168.0.1"),
            ),
            ("127.0.0.1", Some("127.0.0.1")),
            ("192.168.1.1;0:0::1", Some("0:0::1;192.168.1.1")),
            ("0::1;::1;0:0::1", Some("0::1;::1;0:0::1")),
            (";127.0.0.1;", Some("127.0.0.1")),
            ("10.0.0.1;", Some("10.0.0.1")),
            (
                "127.0.0.1;\t127.0.0.2;\t 127.0.0.0",
                Some("127.0.0.0;127.0.0.1;127.0.0.2"),
            ),
            ("", None),
            (" ", None),
            (";", None),
            (" ;  ; ", None),
            ("10.0.0.1;example.com", None),
            ("256.0.0.1", None),
        ] {
            assert_eq!(sort_ip_address_list(list).as_deref(), sorted, "{list}");
        }
    }

    #[test]
    fn names_for_the_resolver() {
        assert_eq!(host_for_resolver("").as_deref(), Some(""));
        assert_eq!(host_for_resolver("a b").as_deref(), Some("a b"));
        assert_eq!(
            host_for_resolver("B\u{fc}cher.ch").as_deref(),
            Some("xn--bcher-kva.ch")
        );
    }

    #[test]
    fn my_ip_picks_a_routable_ipv4_first() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(pick_my_ip(&[ip("127.0.1.1"), ip("::1")]), None);
        assert_eq!(
            pick_my_ip(&[ip("127.0.0.1"), ip("fd00::5"), ip("10.0.0.5")]),
            Some(ip("10.0.0.5"))
        );
        assert_eq!(pick_my_ip(&[ip("fd00::5")]), Some(ip("fd00::5")));
        assert_eq!(join(&[ip("10.0.0.1"), ip("::1")]), "10.0.0.1;::1");
        assert!(!host_name().is_empty());
    }
}

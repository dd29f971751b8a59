//! WPAD's DNS method (feature `wpad`): where to look for `wpad.dat`, from the machine's
//! search domains, never above the registrable domain.
//!
//! For each search domain, `http://wpad.<domain>/wpad.dat` is tried,
//! then with the first label removed, up to and including the registrable
//! domain (the public suffix plus one label, from the Public Suffix List
//! compiled into the `psl` crate): `eng.corp.example.co.uk` gives
//! `wpad.eng.corp.example.co.uk`, `wpad.corp.example.co.uk` and
//! `wpad.example.co.uk`, never `wpad.co.uk` or `wpad.uk`, whoever owns
//! those. A search domain that is itself a public suffix (`com`, `lan`
//! where nobody registered it) gives nothing.
//!
//! The search domains are the `search` and `domain` lines of
//! `/etc/resolv.conf` (the last of them wins, as in glibc), in order.
//!
//! DHCP option 252 (the other WPAD method) is not supported. Asking for it
//! takes a `DHCPINFORM` exchange on UDP port 68, which needs privileges a
//! library must not assume, or the lease of the machine's DHCP client,
//! which each client keeps its own way (NetworkManager over D-Bus,
//! systemd-networkd, dhclient's lease files). Chromium asks for it on
//! Windows alone, through the operating system; Firefox never does.

use std::collections::HashSet;

/// At most this many `wpad.dat` URLs are tried: deeper search lists are
/// cut, so discovery stays bounded in time.
const MAX_CANDIDATES: usize = 8;

/// The machine's DNS search domains, from `/etc/resolv.conf` (empty where
/// it cannot be read, or on a platform without one).
///
/// # Example
///
/// ```
/// // Whatever this machine has; each one is a plain domain name.
/// for domain in tower_tunnel::route::search_domains() {
///     assert!(!domain.contains(char::is_whitespace));
/// }
/// ```
pub fn search_domains() -> Vec<String> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|text| parse_search_domains(&text))
        .unwrap_or_default()
}

/// The search domains in a `resolv.conf` text: the last `search` or
/// `domain` line, as the resolver reads it.
pub(crate) fn parse_search_domains(resolv_conf: &str) -> Vec<String> {
    let mut domains = Vec::new();
    for line in resolv_conf.lines() {
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some("search") | Some("domain") => {
                domains = words
                    .take_while(|w| !w.starts_with(['#', ';']))
                    .map(str::to_owned)
                    .collect();
            }
            _ => {}
        }
    }
    domains
}

/// The `wpad.dat` URLs WPAD's DNS method tries for these search domains,
/// in order, at most eight: for each domain, `wpad.<domain>`, then with
/// its first label removed, up to and including the registrable domain
/// (the public suffix plus one label, from the Public Suffix List), never
/// `wpad.<public suffix>`. A domain that is itself a public suffix gives
/// nothing. DHCP option 252 is not asked for: it needs privileges a
/// library must not assume, or the lease of whichever DHCP client the
/// machine runs (Chromium asks for it on Windows alone, through the
/// operating system; Firefox never does).
///
/// # Example
///
/// ```
/// let urls = tower_tunnel::route::wpad_urls(&["eng.corp.example.com"]);
/// assert_eq!(urls, [
///     "http://wpad.eng.corp.example.com/wpad.dat",
///     "http://wpad.corp.example.com/wpad.dat",
///     "http://wpad.example.com/wpad.dat", // never wpad.com
/// ]);
/// ```
pub fn wpad_urls<S: AsRef<str>>(domains: &[S]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut urls = Vec::new();
    for domain in domains {
        let domain = domain
            .as_ref()
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if domain.is_empty()
            || domain.len() > 253
            || !domain
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(is_label_byte))
        {
            continue;
        }
        let Some(registrable) = psl::domain_str(&domain) else {
            continue;
        };
        let mut rest = domain.as_str();
        loop {
            if seen.insert(rest.to_owned()) {
                urls.push(format!("http://wpad.{rest}/wpad.dat"));
                if urls.len() == MAX_CANDIDATES {
                    return urls;
                }
            }
            if rest.len() <= registrable.len() {
                break;
            }
            match rest.split_once('.') {
                Some((_, up)) => rest = up,
                None => break,
            }
        }
    }
    urls
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_up_to_the_registrable_domain_and_never_past_it() {
        assert_eq!(
            wpad_urls(&["eng.corp.example.com"]),
            [
                "http://wpad.eng.corp.example.com/wpad.dat",
                "http://wpad.corp.example.com/wpad.dat",
                "http://wpad.example.com/wpad.dat",
            ]
        );
        assert_eq!(
            wpad_urls(&["corp.example.co.uk."]),
            [
                "http://wpad.corp.example.co.uk/wpad.dat",
                "http://wpad.example.co.uk/wpad.dat",
            ]
        );
        // Public suffixes themselves: nothing, whoever registered wpad there.
        for suffix in ["com", "co.uk", "uk", "github.io", "", ".", "a..b.com"] {
            assert!(wpad_urls(&[suffix]).is_empty(), "{suffix}");
        }
        // Private names under an unlisted top-level domain: the last label
        // counts as the suffix, as the list's default rule says.
        assert_eq!(
            wpad_urls(&["Office.Corp.Internal"]),
            [
                "http://wpad.office.corp.internal/wpad.dat",
                "http://wpad.corp.internal/wpad.dat",
            ]
        );
    }

    #[test]
    fn several_search_domains_in_order_without_repeats_and_bounded() {
        assert_eq!(
            wpad_urls(&["a.example.com", "example.com", "b.example.org"]),
            [
                "http://wpad.a.example.com/wpad.dat",
                "http://wpad.example.com/wpad.dat",
                "http://wpad.b.example.org/wpad.dat",
                "http://wpad.example.org/wpad.dat",
            ]
        );
        let deep = "a.b.c.d.e.f.g.h.i.j.example.com";
        assert_eq!(wpad_urls(&[deep]).len(), MAX_CANDIDATES);
        assert!(wpad_urls(&["bad/name.example.com", "x y.example.com"]).is_empty());
    }

    #[test]
    fn reads_resolv_conf_as_the_resolver_does() {
        let conf = "nameserver 10.0.0.1\nsearch eng.corp.example.com corp.example.com # lab\noptions ndots:2\n";
        assert_eq!(
            parse_search_domains(conf),
            ["eng.corp.example.com", "corp.example.com"]
        );
        assert_eq!(
            parse_search_domains("domain a.example\nsearch b.example\n"),
            ["b.example"]
        );
        assert_eq!(
            parse_search_domains("search b.example\ndomain a.example\n"),
            ["a.example"]
        );
        assert!(parse_search_domains("nameserver 1.1.1.1\n").is_empty());
    }
}

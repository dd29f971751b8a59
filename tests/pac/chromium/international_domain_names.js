// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/international_domain_names.js
// (test ProxyResolverV8Test.DNSResolutionOfInternationDomainName). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// A name with a non-ASCII letter reaches the resolver as punycode:
// "B\u00fccher.ch" is "xn--bcher-kva.ch".
function FindProxyForURL(url, host) {
  var name = "B\u00fccher.ch";
  dnsResolve(name);
  dnsResolveEx(name);
  return "DIRECT";
}

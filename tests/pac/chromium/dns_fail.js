// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/dns_fail.js
// (test ProxyResolverV8Test.DNSResolutionFailure). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// Run with a resolver that fails every name. (Chromium also checks
// myIpAddress() == "127.0.0.1" and myIpAddressEx() == "" when the host's own
// lookup fails; tower-tunnel's myIpAddress does not go through the injectable
// resolver, so those two are not ported.)
function FindProxyForURL(url, host) {
  var checks = [
    ["dnsResolve", null, dnsResolve("not-found")],
    ["dnsResolveEx", "", dnsResolveEx("not-found")],
    ["isResolvable", false, isResolvable("not-found")],
    ["isResolvableEx", false, isResolvableEx("not-found")],
  ];
  var failed = [];
  for (var i = 0; i < checks.length; i++)
    if (checks[i][1] !== checks[i][2])
      failed.push(checks[i][0] + " => " + checks[i][2]);
  return failed.length == 0 ? "PROXY success:80" : "FAIL " + failed.join(" | ");
}

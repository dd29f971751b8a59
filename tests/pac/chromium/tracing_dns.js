// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_tracing_unittest/dns.js
// (test ProxyResolverV8TracingTest.Dns). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// A sequence of lookups, repeated names included, joined into one answer.
// Chromium's mock answers dnsResolve and dnsResolveEx separately and gives
// myIpAddressEx its own address; tower-tunnel has one resolver and one
// address (Pac::with_my_ip_address), so the expected answer is adapted
// (tests/pac/expected.txt).
function FindProxyForURL(url, host) {
  var ips = [
    myIpAddress(),
    dnsResolve(""),
    dnsResolveEx("host1"),
    dnsResolve("host2"),
    dnsResolve("host3"),
    myIpAddress(),
    dnsResolve("host3"),
    dnsResolveEx("host1"),
    myIpAddress(),
    dnsResolve("host2"),
    dnsResolveEx("host6"),
    myIpAddressEx(),
    dnsResolve("host1"),
  ];
  for (var i = 0; i < ips.length; i++) ips[i] = "" + ips[i];
  return "PROXY " + ips.join("-").replace(/[^0-9a-zA-Z.-]/g, "_") + ".test:99";
}

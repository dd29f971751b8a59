// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/resolve_host.js
// (test ProxyResolverV8Test.IPv6HostnamesNotBracketed). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// The host of http://[abcd::efff]:99/ reaches the script without brackets
// (Chromium checks the name dnsResolveEx(host) is given; this port checks
// the argument itself and resolves it too).
function FindProxyForURL(url, host) {
  dnsResolveEx(host);
  if (host == "abcd::efff") return "DIRECT";
  return "PROXY wrong-host-" + host.replace(/[^0-9a-z]/g, "_") + ":1";
}

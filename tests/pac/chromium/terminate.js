// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/terminate.js
// (test ProxyResolverV8Test.Terminate). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// For the host "hang": a lookup, then a loop that never ends; the call must
// be stopped (tower-tunnel: by its time budget) and the next call must work.
function FindProxyForURL(url, host) {
  if (host != "hang")
    return "PROXY " + host + ":88";
  dnsResolve("host1");
  dnsResolveEx("host2");
  alert("about to hang");
  for (;;) {}
}

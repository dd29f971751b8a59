// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_tracing_unittest/too_many_alerts.js, too_many_empty_alerts.js
// (test ProxyResolverV8TracingTest.TooManyAlerts, TooManyEmptyAlerts). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// Many alerts (1000 empty, 50 not) and a lookup must not stop the call.
function FindProxyForURL(url, host) {
  dnsResolve(host);
  for (var i = 0; i < 1000; i++) alert("");
  for (var j = 0; j < 50; j++) alert("Gee, all these alerts are silly!");
  return "PROXY foo:3";
}

// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/side_effects.js
// (test ProxyResolverV8Test.SideEffects). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// A counter that survives between calls; loading the script again starts it
// over (and would keep it if the same environment ran the script twice).
if (!counter) {
  var counter = 0;
}
function FindProxyForURL(url, host) {
  return "PROXY sideffect_" + counter++;
}

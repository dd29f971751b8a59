// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/binding_from_global.js
// (test ProxyResolverV8Test.BindingCalledDuringInitialization). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// A native function called while the script loads (crbug.com/40026).
var me = myIpAddress();
function FindProxyForURL(url, host) {
  return "PROXY " + me + ":80";
}

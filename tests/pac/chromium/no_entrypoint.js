// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/no_entrypoint.js
// (test ProxyResolverV8Test.NoEntryPoint). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// No FindProxyForURL: compiling the script must fail.
var x = "DIRECT";
function FindProxyForURI(url, host) {
  return x;
}

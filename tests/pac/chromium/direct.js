// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/direct.js
// (test ProxyResolverV8Test.Direct). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
function FindProxyForURL(url, host) {
  return "DIRECT";
}

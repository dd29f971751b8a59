// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/unhandled_exception.js
// (test ProxyResolverV8Test.UnhandledException). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
function FindProxyForURL(url, host) {
  // A ReferenceError: nothing of this name exists.
  return no_such_variable + "DIRECT";
}

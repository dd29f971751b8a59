// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/missing_close_brace.js
// (test ProxyResolverV8Test.ParseError). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// A syntax error: the function body is never closed.
function FindProxyForURL(url, host) {
  if (host == "x") {
    return "DIRECT";
  }

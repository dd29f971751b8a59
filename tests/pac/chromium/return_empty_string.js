// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/return_empty_string.js
// (test ProxyResolverV8Test.ReturnEmptyString). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// Chromium reads an empty answer as DIRECT.
function FindProxyForURL(url, host) {
  return "";
}

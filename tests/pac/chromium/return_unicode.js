// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/return_unicode.js
// (test ProxyResolverV8Test.ReturnUnicode). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// Ends with U+200B ZERO WIDTH SPACE: the answer cannot be parsed.
function FindProxyForURL(url, host) {
  return "PROXY foo.com\u200B";
}

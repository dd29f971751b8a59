// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/no_webassembly.js
// (test ProxyResolverV8Test.NoWebAssembly). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// WebAssembly must not be reachable from a PAC script.
function FindProxyForURL(url, host) {
  if (typeof WebAssembly == "undefined") return "DIRECT";
  throw new Error("WebAssembly is available to the script");
}

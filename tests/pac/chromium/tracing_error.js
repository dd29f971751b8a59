// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_tracing_unittest/error.js
// (test ProxyResolverV8TracingTest.JavascriptError). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
function FindProxyForURL(url, host) {
  if (host == "throw-an-error") {
    alert("Prepare to DIE!");
    var nothing = null;
    return nothing.split("-");  // a TypeError
  }
  return "PROXY i-approve-this-message:42";
}

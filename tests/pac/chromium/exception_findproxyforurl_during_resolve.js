// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/exception_findproxyforurl_during_resolve.js
// (test ProxyResolverV8Test.ExceptionAccessingFindProxyForURLDuringResolve). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// Reading FindProxyForURL works once (when the script is loaded) and throws
// from the second read on (when a URL is resolved): the call must fail.
var reads = 0;
function realFindProxyForURL(url, host) {
  return "DIRECT";
}
Object.defineProperty(this, "FindProxyForURL", {
  get: function() {
    reads++;
    if (reads >= 2) throw "crash!";
    return realFindProxyForURL;
  }
});

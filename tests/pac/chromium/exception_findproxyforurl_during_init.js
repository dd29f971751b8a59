// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/exception_findproxyforurl_during_init.js
// (test ProxyResolverV8Test.ExceptionAccessingFindProxyForURLDuringInit). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// Reading FindProxyForURL throws: loading the script must fail.
Object.defineProperty(this, "FindProxyForURL", {
  get: function() { throw "crash!"; }
});

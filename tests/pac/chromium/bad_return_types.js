// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/return_{undefined,integer,function,object,null}.js
// (test ProxyResolverV8Test.BadReturnType). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// Chromium has one script per type; here the host argument picks the type.
// Each must fail the call: FindProxyForURL() did not return a string.
function FindProxyForURL(url, host) {
  if (host == "undefined") return undefined;
  if (host == "integer") return 0;
  if (host == "function") return FindProxyForURL;
  if (host == "object") return { PROXY: "a:1" };
  if (host == "null") return null;
  return "DIRECT";
}

// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/passthrough.js
// (test ProxyResolverV8Test.Basic). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// Encodes both arguments into one pseudo host name, so the test sees exactly
// what FindProxyForURL was given: runs of characters other than letters and
// digits become one dot, with none at either end.
function FindProxyForURL(url, host) {
  if (arguments.length != 2)
    throw "FindProxyForURL got " + arguments.length + " arguments";
  var pseudo = (url + "." + host).replace(/[^0-9a-zA-Z]+/g, ".");
  return "PROXY " + pseudo.replace(/^\.+|\.+$/g, "");
}

// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/bindings.js
// (test ProxyResolverV8Test.V8Bindings). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// Calls the native functions with odd arguments. Non-string arguments to
// dnsResolve answer null without reaching the resolver; strings reach it
// (the test's resolver answers 127.0.0.1 for every name). alert() takes
// anything, and an argument whose toString() throws makes alert throw.
function Weird() {}
Weird.prototype.toString = function() {
  throw "exception from calling toString()";
};
function expect(what, expected, actual) {
  if (expected !== actual)
    throw what + ": expected " + expected + ", got " + actual;
}
function FindProxyForURL(url, host) {
  expect("dnsResolve()", null, dnsResolve());
  expect("dnsResolve(null)", null, dnsResolve(null));
  expect("dnsResolve(undefined)", null, dnsResolve(undefined));
  expect("dnsResolve('')", "127.0.0.1", dnsResolve(""));
  expect("dnsResolve({})", null, dnsResolve({ foo: "bar" }));
  expect("dnsResolve(fn)", null, dnsResolve(function() {}));
  expect("dnsResolve(['3'])", null, dnsResolve(["3"]));
  expect("dnsResolve(4 args)", "127.0.0.1", dnsResolve("arg1", "arg2", "arg3", "arg4"));
  alert();
  alert(null);
  alert(undefined);
  alert({ foo: "bar" });
  try {
    alert(new Weird());
  } catch (e) {
    alert(e);
  }
  myIpAddress(null);
  myIpAddress(null, null);
  myIpAddressEx();
  isResolvableEx("is_resolvable");
  dnsResolveEx("foobar");
  return "DIRECT";
}

// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/
// pac_library_unittest.js, run by ProxyResolverV8Test.JavascriptLibrary in
// services/proxy_resolver/proxy_resolver_v8_unittest.cc.
// Copyright 2014 The Chromium Authors. Use of the original is governed by a
// BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// The assertions (call and expected value) are Chromium's; the harness is
// tower-tunnel's own: each assertion is an expression text evaluated with
// indirect eval, so a failure names the exact call. The date and time
// assertions, which Chromium runs against a mocked Date, live in
// pac_library_dates.js and run against Pac::with_clock instead.
//
// Answers "PROXY success:80" when every assertion holds, else
// "FAIL <expression> => <actual> (expected <expected>) | ...".

function FindProxyForURL(url, host) {
  var failures = [];
  for (var i = 0; i < CASES.length; i++) {
    var expr = CASES[i][0], expected = CASES[i][1], actual;
    if (expected === THROWS_TYPE_ERROR) {
      try {
        actual = (0, eval)(expr);
        failures.push(expr + " => " + actual + " (expected a TypeError)");
      } catch (e) {
        if (!(e instanceof TypeError))
          failures.push(expr + " => threw " + e + " (expected a TypeError)");
      }
      continue;
    }
    try {
      actual = (0, eval)(expr);
    } catch (e) {
      failures.push(expr + " => threw " + e + " (expected " + expected + ")");
      continue;
    }
    if (actual !== expected)
      failures.push(expr + " => " + actual + " (expected " + expected + ")");
  }
  return failures.length == 0 ? "PROXY success:80" : "FAIL " + failures.join(" | ");
}

var THROWS_TYPE_ERROR = {};

var CASES = [
  // testDnsDomainIs
  ['dnsDomainIs("google.com", ".com")', true],
  ['dnsDomainIs("google.co.uk", ".co.uk")', true],
  ['dnsDomainIs("google.com", ".co.uk")', false],
  ['dnsDomainIs("www.adobe.com", ".ad")', false],

  // testDnsDomainLevels
  ['dnsDomainLevels("www")', 0],
  ['dnsDomainLevels("www.google.com")', 2],
  ['dnsDomainLevels("192.168.1.1")', 3],

  // testIsInNet
  ['isInNet("192.89.132.25", "192.89.132.25", "255.255.255.255")', true],
  ['isInNet("193.89.132.25", "192.89.132.25", "255.255.255.255")', false],
  ['isInNet("192.89.132.25", "192.89.0.0", "255.255.0.0")', true],
  ['isInNet("193.89.132.25", "192.89.0.0", "255.255.0.0")', false],
  ['isInNet("192.89.132.a", "192.89.0.0", "255.255.0.0")', false],

  // testIsPlainHostName
  ['isPlainHostName("google")', true],
  ['isPlainHostName("google.com")', false],
  ['isPlainHostName("192.168.1.1")', false],
  ['isPlainHostName(".")', false],
  ['isPlainHostName(".:")', false],
  ['isPlainHostName("::1")', false],            // a valid IPv6 literal
  ['isPlainHostName("::192.186.1.1")', false],  // IPv6 literal with dots
  ['isPlainHostName("foopy::1")', true],        // not an IPv6 literal
  ['isPlainHostName("foo:112")', true],
  ['isPlainHostName(":")', true],
  ['isPlainHostName("[:]")', true],
  ['isPlainHostName("[::1]")', true],           // brackets: not a literal
  ['isPlainHostName("foo", "foo", "foo")', true],
  // Chromium throws "TypeError: Requires 1 string parameter"; the message
  // text is Chromium's binding, the port checks the TypeError only.
  ['isPlainHostName()', THROWS_TYPE_ERROR],
  ['isPlainHostName(null)', THROWS_TYPE_ERROR],
  ['isPlainHostName(1)', THROWS_TYPE_ERROR],
  ['isPlainHostName(function() {})', THROWS_TYPE_ERROR],

  // testLocalHostOrDomainIs
  ['localHostOrDomainIs("www.google.com", "www.google.com")', true],
  ['localHostOrDomainIs("www", "www.google.com")', true],
  ['localHostOrDomainIs("maps.google.com", "www.google.com")', false],

  // testShExpMatch
  ['shExpMatch("foo.jpg", "*.jpg")', true],
  ['shExpMatch("foo5.jpg", "*o?.jpg")', true],
  ['shExpMatch("foo.jpg", ".jpg")', false],
  ['shExpMatch("foo.jpg", "foo")', false],

  // testSortIpAddressList
  ['sortIpAddressList("::2;::3;::1")', "::1;::2;::3"],
  ['sortIpAddressList("157.59.139.22;2001:4898:28:3:201:2ff:feea:fc14;fe80::5efe:157:9d3b:8b16")',
   "2001:4898:28:3:201:2ff:feea:fc14;fe80::5efe:157:9d3b:8b16;157.59.139.22"],
  ['sortIpAddressList("127.0.0.1")', "127.0.0.1"],
  ['sortIpAddressList("::1")', "::1"],
  ['sortIpAddressList("192.168.1.1;0:0::1")', "0:0::1;192.168.1.1"],  // not rewritten
  ['sortIpAddressList("::1;192.168.1.3")', "::1;192.168.1.3"],
  ['sortIpAddressList("0::1;::1;0:0::1")', "0::1;::1;0:0::1"],        // stable
  ['sortIpAddressList(";127.0.0.1;")', "127.0.0.1"],
  ['sortIpAddressList("192.168.0.1; 192.168.0.2")', "192.168.0.1;192.168.0.2"],
  ['sortIpAddressList("127.0.0.1;\\t127.0.0.2;\\t 127.0.0.0")', "127.0.0.0;127.0.0.1;127.0.0.2"],
  ['sortIpAddressList("")', false],
  ['sortIpAddressList(" ")', false],
  ['sortIpAddressList(";")', false],
  ['sortIpAddressList(";;")', false],
  ['sortIpAddressList(" ;  ; ")', false],
  ['sortIpAddressList("256.0.0.1")', false],
  ['sortIpAddressList("192.168.1.1;0:0:0:1;127.0.0.1")', false],
  ['sortIpAddressList()', null],
  ['sortIpAddressList(null)', null],
  ['sortIpAddressList(null, null)', null],

  // testIsInNetEx
  ['isInNetEx("198.95.249.79", "198.95.249.79/32")', true],
  ['isInNetEx("198.95.115.10", "198.95.0.0/16")', true],
  ['isInNetEx("198.95.1.1", "198.95.0.0/16")', true],
  ['isInNetEx("198.95.1.1", "198.95.3.3/16")', true],
  ['isInNetEx("0:0:0:0:0:0:7f00:1", "0:0:0:0:0:0:7f00:1/32")', true],
  ['isInNetEx("3ffe:8311:ffff:abcd:1234:dead:beef:101", "3ffe:8311:ffff::/48")', true],
  ['isInNetEx("127.0.0.1", "0:0:0:0:0:0:7f00:1/16")', true],
  ['isInNetEx("192.168.24.3", "fe80:0:0:0:0:0:c0a8:1803/32")', false],
  ['isInNetEx("::ffff:192.168.100.5", "192.168.1.1/16")', true],
  ['isInNetEx("::ffff:10.168.100.5", "192.168.1.1/16")', false],
  ['isInNetEx("::fffe:192.168.100.5", "192.168.1.1/16")', false],
  ['isInNetEx("::ffff:192.168.100.5", "::ffff:192.168.1.1/112")', true],
  ['isInNetEx("::ffff:10.168.100.5", "::ffff:192.168.1.1/112")', false],
  ['isInNetEx("192.168.1.1", "::ffff:192.168.1.1/112")', true],
  ['isInNetEx("192.168.1.1", "::fffe:192.168.1.1/112")', false],
  ['isInNetEx("10.168.1.1", "::ffff:192.168.1.1/112")', false],
  ['isInNetEx("198.95.249.78", "198.95.249.79/32")', false],
  ['isInNetEx("198.96.115.10", "198.95.0.0/16")', false],
  ['isInNetEx("3fff:8311:ffff:abcd:1234:dead:beef:101", "3ffe:8311:ffff::/48")', false],
  ['isInNetEx()', null],
  ['isInNetEx(null)', null],
  ['isInNetEx(null, null)', null],
  ['isInNetEx(null, null, null)', null],
  ['isInNetEx("198.95.249.79")', null],
  ['isInNetEx("256.0.0.1", "198.95.249.79")', false],
  ['isInNetEx("127.0.0.1 ", "127.0.0.1/32")', false],  // extra space
  ['isInNetEx("198.95.115.10", "198.95.0.0/34")', false],  // prefix too long
  ['isInNetEx("127.0.0.1", "127.0.0.1")', false],  // no "/" in the prefix
];

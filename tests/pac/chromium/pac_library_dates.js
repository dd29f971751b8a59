// Ported from Chromium: the testWeekdayRange, testDateRange and testTimeRange
// groups of services/proxy_resolver/test/data/proxy_resolver_v8_unittest/
// pac_library_unittest.js (ProxyResolverV8Test.JavascriptLibrary).
// Copyright 2014 The Chromium Authors. Use of the original is governed by a
// BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Chromium swaps the global Date for a mock set to a fixed instant; tower-tunnel
// sets the instant with Pac::with_clock instead, so the groups are split by
// the instant each needs and the host argument names the group (the test
// table, tests/pac/expected.txt, gives each row its clock). The assertions
// (call and expected value) are Chromium's; the harness is tower-tunnel's own.
//
// Answers "PROXY success:80" when every assertion of the group holds, else
// "FAIL <expression> => <actual> (expected <expected>) | ...".

var GROUPS = {
  // MockDate "Tue Mar 03 2009" (local midnight).
  "weekday-local": [
    ['weekdayRange("MON", "FRI")', true],
    ['weekdayRange("TUE", "FRI")', true],
    ['weekdayRange("TUE", "TUE")', true],
    ['weekdayRange("SAT", "WED")', true],
    ['weekdayRange("TUE")', true],
    ['weekdayRange("WED", "FRI")', false],
    ['weekdayRange("SUN", "MON")', false],
    ['weekdayRange("SAT")', false],
    ['weekdayRange("FRI", "MON")', false],
  ],
  // MockDate "Tue Mar 03 2009 GMT" (midnight UTC).
  "weekday-gmt": [
    ['weekdayRange("MON", "FRI", "GMT")', true],
    ['weekdayRange("TUE", "FRI", "GMT")', true],
    ['weekdayRange("TUE", "TUE", "GMT")', true],
    ['weekdayRange("TUE", "GMT")', true],
    ['weekdayRange("WED", "FRI", "GMT")', false],
    ['weekdayRange("SUN", "MON", "GMT")', false],
    ['weekdayRange("SAT", "GMT")', false],
  ],
  // MockDate "Mar 03 2009 GMT".
  "date-gmt-2009-03-03": [
    ['dateRange(3, "GMT")', true],
    ['dateRange(1, "GMT")', false],
  ],
  // MockDate "Mar 03 2009" (local midnight).
  "date-local-2009-03-03": [
    ['dateRange(3)', true],
    ['dateRange(1)', false],
    ['dateRange(1, 4)', true],
    ['dateRange(4, 20)', false],
    ['dateRange(3, "MAR")', true],
    ['dateRange(3, "MAR", 2009)', true],
    // Chromium: "Unclear what this is supposed to mean" (crbug.com/827292),
    // kept bug-for-bug with Firefox.
    ['dateRange(4, "MAR", 2009)', true],
    ['dateRange(3, "FEB", 2009)', true],
    ['dateRange("JAN", "MAR")', true],
    ['dateRange("MAR", "JAN")', true],
    ['dateRange("SEP", "APR")', true],
    ['dateRange("FEB", "JAN")', true],
    ['dateRange("SEP", "FEB")', false],
    ['dateRange("MAR", "APR")', true],
    ['dateRange("MAY", "SEP")', false],
    ['dateRange(1, "JAN", 3, "MAR")', true],
    ['dateRange(3, "MAR", 1, "JAN")', true],
    ['dateRange(4, "SEP", 3, "APR")', true],
    ['dateRange(4, "FEB", 3, "JAN")', true],
    ['dateRange(4, "SEP", 3, "FEB")', false],
    ['dateRange(3, "MAR", 4, "SEP")', true],
    ['dateRange(4, "MAR", 4, "SEP")', false],
    ['dateRange("FEB", 2009, "MAR", 2009)', true],
    ['dateRange(1, "JAN", 2009, 3, "MAR", 2009)', true],
    ['dateRange(3, "MAR", 2009, 4, "SEP", 2009)', true],
    ['dateRange(3, "JAN", 2009, 4, "FEB", 2010)', true],
    ['dateRange(4, "MAR", 2009, 4, "SEP", 2009)', false],
  ],
  // MockDate "Mar 03 2014" (local midnight).
  "date-local-2014-03-03": [
    ['dateRange(3, "MAR")', true],
    // Chromium: the Netscape code answers true for any (day, month)
    // (crbug.com/827292); documented bug-for-bug.
    ['dateRange(2, "MAR")', true],
    ['dateRange(3, "JAN")', true],
    ['dateRange(3, "MAR", 2009)', true],
  ],
  // MockDate "Apr 03 2009" (local midnight).
  "date-local-2009-04-03": [
    ['dateRange("FEB", 2009, "MAR", 2010)', true],
    ['dateRange("FEB", 2009, "MAR", 2009)', false],
  ],
  // MockDate "Mar 03, 2009 03:34:01" (local).
  "time-local-03:34:01": [
    ['timeRange(3)', true],
    ['timeRange(2)', false],
    ['timeRange(2, 3)', true],
    ['timeRange(2, 4)', true],
    ['timeRange(3, 5)', true],
    ['timeRange(1, 2)', false],
    ['timeRange(11, 12)', false],
    ['timeRange(1, 0, 3, 34)', true],
    ['timeRange(3, 34, 1, 0)', true],  // the reverse works too
    ['timeRange(1, 0, 3, 35)', true],
    ['timeRange(3, 34, 5, 0)', true],
    ['timeRange(1, 0, 3, 0)', false],
    ['timeRange(11, 0, 16, 0)', false],
  ],
  // MockDate "Mar 03, 2009 03:34:14" (local).
  "time-local-03:34:14": [
    ['timeRange(1, 0, 0, 3, 34, 14)', true],
    ['timeRange(1, 0, 0, 3, 34, 0)', false],
    ['timeRange(1, 0, 0, 3, 35, 0)', true],
    ['timeRange(3, 34, 0, 5, 0, 0)', true],
    ['timeRange(1, 0, 0, 3, 0, 0)', false],
    ['timeRange(11, 0, 0, 16, 0, 0)', false],
  ],
};

function FindProxyForURL(url, host) {
  var cases = GROUPS[host];
  if (!cases) return "FAIL no group named " + host;
  var failures = [];
  for (var i = 0; i < cases.length; i++) {
    var expr = cases[i][0], expected = cases[i][1], actual;
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

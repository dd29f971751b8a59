// Ported from pacparser (https://github.com/manugarg/pacparser): tests/proxy.pac,
// with the cases of tests/testdata (run by tests/runtests.py).
// Copyright (C) Manu Garg; pacparser is licensed under the GNU LGPL v3.
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
//
// Plain host names and hosts under .manugarg.com go direct, except
// www.manugarg.com; then hosts under externaldomain.com, https URLs, and the
// client's own address (192.0.0.0/8, 10.10.0.0/16) each have their answer.
// The first test answers whether the Microsoft IPv6 extensions exist
// (pacparser: only after enable_microsoft_extensions; Chromium, Firefox and
// tower-tunnel: always).
function FindProxyForURL(url, host) {
  if (typeof dnsResolveEx == "function")
    return "dnsResolveEx defined";

  var local = isPlainHostName(host) || dnsDomainIs(host, ".manugarg.com");
  if (local && !localHostOrDomainIs(host, "www.manugarg.com"))
    return "plainhost/.manugarg.com";

  if (/.*\.externaldomain\.com/.test(host))
    return "externaldomain";

  if (/^https:\/\/.*$/.test(url))
    return "secureUrl";

  if (isInNet(myIpAddress(), "192.0.0.0", "255.0.0.0"))
    return "192.0.0.0";
  if (isInNet(myIpAddress(), "10.10.0.0", "255.255.0.0"))
    return "10.10.0.0";
  return "END-OF-SCRIPT";
}

#!/usr/bin/python3
"""Generates PAC cross-check cases and answers them with pacparser.

Writes a JSON file of (script, URL, host, client address, instant) cases with
the answer of pacparser (Debian: python3-pacparser), the reference
implementation; tests/pac_conformance.rs (`crosscheck`) runs every case
through tower_tunnel::Pac and compares. See tests/pac/README.md.

    /usr/bin/python3 tests/pac/crosscheck/gen.py [--out FILE] [--seed N]

The scripts, URLs and addresses depend on the seed only. What a case records
as its instant ("now") is the moment pacparser ran it; the Rust side sets
Pac::with_clock to the same instant, so the date and time functions compare
exactly. Local-time forms are used only with ranges that cover every day and
hour (their answer does not depend on the instant or the time zone); every
other date/time call names "GMT".

No case needs the network: pacparser resolves names through the system
resolver, so every name a DNS function can see at run time is an IP literal
or `localhost` (scripts guard `host` before handing it to isInNet,
dnsResolve or isResolvable); the Rust side answers the same from a table
(`dns` in the output: localhost -> 127.0.0.1, IP literals -> themselves).
"""

import argparse
import json
import os
import random
import sys
import time

try:
    import pacparser
except ImportError:
    sys.exit("gen.py: needs pacparser (Debian: apt-get install python3-pacparser); "
             "run it with /usr/bin/python3")

SEED = 13

HOSTS = [
    "www.example.com", "example.com", "notexample.com", "mail.corp.example.com",
    "a.b.c.example.org", "intranet", "www", "localhost", "foo.example.net",
    "example.com.evil.net", "img.cdn.example.com", "10.1.2.3", "10.10.100.112",
    "192.168.1.20", "172.16.5.4", "127.0.0.1", "8.8.4.4", "printer.lan",
]
SCHEMES = ["http", "https", "ftp", "ws", "wss"]
PATHS = ["/", "/index.html", "/a/b?q=1", "/img/x.jpg", "/api/v1/items?id=7&x=y", ""]
PORTS = ["", "", "", ":8080", ":443", ":3128"]
MY_IPS = ["10.1.2.3", "10.10.100.112", "192.168.1.20", "172.16.0.5", "127.0.0.1",
          "8.8.4.4", "192.0.2.77"]
NETS = ["10.0.0.0", "10.10.0.0", "192.168.0.0", "192.168.1.0", "172.16.0.0",
        "127.0.0.0", "8.8.4.4", "0.0.0.0", "192.0.2.0"]
MASKS = ["255.0.0.0", "255.255.0.0", "255.255.255.0", "255.255.255.255",
         "0.0.0.0", "255.240.0.0", "255.255.254.0"]
DOMAINS = [".example.com", "example.com", ".com", ".corp.example.com", ".net",
           ".example.org", "www.example.com", ".lan"]
FULL_NAMES = ["www.example.com", "intranet.corp", "www", "example.com",
              "printer.lan", "mail.corp.example.com"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
          "NOV", "DEC"]
MONTHS_OF_31 = ["JAN", "MAR", "MAY", "JUL", "AUG", "OCT", "DEC"]
RESULTS = [
    "DIRECT",
    "PROXY proxy.example.com:3128",
    "PROXY 10.0.0.1:8080; DIRECT",
    "HTTP web.example.com:80",
    "HTTPS secure.example.com:443",
    "SOCKS socks.example.com:1080",
    "SOCKS4 s4.example.com:1080; DIRECT",
    "SOCKS5 10.0.0.5:1080; PROXY p.example.com:3128; DIRECT",
    "proxy lower.example.com:3128",
    "  PROXY  spaced.example.com:3128 ;DIRECT ",
    "PROXY a.example.com:1; PROXY b.example.com:2; SOCKS5 c.example.com:3; DIRECT",
]
DYNAMIC_RESULTS = [
    '"PROXY " + host + ":8080"',
    '"PROXY " + myIpAddress() + ":3128; DIRECT"',
    '"PROXY p" + dnsDomainLevels(host) + ".example.com:3128"',
]

# A guard every script defines: only IP literals and localhost reach DNS.
PRELUDE = (
    "function safe(h) { return /^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(h)"
    " || h == \"localhost\"; }\n"
)


def q(s):
    return json.dumps(s)


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def pick(self, xs):
        return self.r.choice(xs)

    def pattern(self):
        """A shExpMatch pattern: a host or URL with parts turned into * and ?."""
        r = self.r
        if r.random() < 0.35:
            base = "%s://%s%s" % (self.pick(SCHEMES), self.pick(HOSTS), self.pick(PATHS))
        else:
            base = self.pick(HOSTS)
        out = []
        i = 0
        while i < len(base):
            x = r.random()
            if x < 0.08:
                out.append("*")
                i += r.randint(1, 6)
            elif x < 0.14:
                out.append("?")
                i += 1
            else:
                out.append(base[i])
                i += 1
        p = "".join(out)
        if r.random() < 0.3:
            p = "*" + p
        if r.random() < 0.2:
            p = p + "*"
        return p

    def time_atom(self):
        """A date/time condition. Ranges run forwards (start before end):
        a range whose start is after its end wraps around in Chromium and
        Firefox, never holds in pacparser's older script, and is compared
        in the edge-wrap group instead. A month range ends in a month of
        31 days: tower-tunnel ends "FEB" on 28/29 February, where both
        pacparser and Chromium run on to 3 March (tests/pac/README.md).
        The bounds are ordered after drawing, so the draws (and the rest of
        the scripts) are the same as before."""
        r = self.r
        k = r.randrange(9)
        if k == 0:
            days = sorted(r.sample(DAYS, 2), key=DAYS.index)
            return "weekdayRange(%s, %s, \"GMT\")" % (q(days[0]), q(days[1]))
        if k == 1:
            return "weekdayRange(%s, \"GMT\")" % q(self.pick(DAYS))
        if k == 2:
            a, b = sorted((r.randint(1, 31), r.randint(1, 31)))
            return "dateRange(%d, %d, \"GMT\")" % (a, b)
        if k == 3:
            return "dateRange(%d, \"GMT\")" % r.randint(1, 31)
        if k == 4:
            a, b = sorted(MONTHS.index(m) for m in r.sample(MONTHS, 2))
            if MONTHS[b] not in MONTHS_OF_31:
                b += 1
            return "dateRange(%s, %s, \"GMT\")" % (q(MONTHS[a]), q(MONTHS[b]))
        if k == 5:
            return "timeRange(%d, \"GMT\")" % r.randint(0, 23)
        if k == 6:
            # Two hours: no implementation wraps this form, any order will do.
            return "timeRange(%d, %d, \"GMT\")" % (r.randint(0, 23), r.randint(0, 23))
        if k == 7:
            start = (r.randint(0, 23), r.randint(0, 59))
            end = (r.randint(0, 23), r.randint(0, 59))
            start, end = sorted((start, end))
            return "timeRange(%d, %d, %d, %d, \"GMT\")" % (start + end)
        # Local time, with ranges that hold at every instant in every zone.
        return self.pick([
            'weekdayRange("SUN", "SAT")', 'dateRange(1, "JAN", 31, "DEC")',
            'dateRange(1, 31)', 'dateRange("JAN", "DEC")', 'timeRange(0, 23)',
        ])

    def atom(self):
        r = self.r
        k = r.randrange(17)
        if k in (0, 1):
            return "shExpMatch(host, %s)" % q(self.pattern())
        if k == 2:
            return "shExpMatch(url, %s)" % q(self.pattern())
        if k == 3:
            return "dnsDomainIs(host, %s)" % q(self.pick(DOMAINS))
        if k == 4:
            return "localHostOrDomainIs(host, %s)" % q(self.pick(FULL_NAMES))
        if k == 5:
            return "isPlainHostName(host)"
        if k == 6:
            return "(dnsDomainLevels(host) %s %d)" % (self.pick(["==", ">", "<"]), r.randint(0, 4))
        if k == 7:
            return "(safe(host) && isInNet(host, %s, %s))" % (q(self.pick(NETS)), q(self.pick(MASKS)))
        if k == 8:
            return "isInNet(myIpAddress(), %s, %s)" % (q(self.pick(NETS)), q(self.pick(MASKS)))
        if k == 9:
            return "(safe(host) && isInNet(dnsResolve(host), %s, %s))" % (
                q(self.pick(NETS)), q(self.pick(MASKS)))
        if k == 10:
            return "(safe(host) && isResolvable(host))"
        if k == 11:
            return "(myIpAddress() == %s)" % q(self.pick(MY_IPS))
        if k == 12:
            return "(url.substring(0, %d) == %s)" % self.pick(
                [(5, q("http:")), (6, q("https:")), (4, q("ftp:")), (3, q("ws:"))])
        if k == 13:
            return "(host == %s)" % q(self.pick(HOSTS))
        if k == 14:
            return 'isInNet("localhost", "127.0.0.0", "255.0.0.0")'
        return self.time_atom()

    def cond(self, depth=0):
        r = self.r
        x = r.random()
        if depth < 2 and x < 0.2:
            return "(%s && %s)" % (self.cond(depth + 1), self.cond(depth + 1))
        if depth < 2 and x < 0.35:
            return "(%s || %s)" % (self.cond(depth + 1), self.cond(depth + 1))
        if x < 0.45:
            return "!" + self.atom()
        return self.atom()

    def result(self):
        if self.r.random() < 0.15:
            return self.pick(DYNAMIC_RESULTS)
        return q(self.pick(RESULTS))

    def tree_script(self):
        lines = [PRELUDE, "function FindProxyForURL(url, host) {"]
        for _ in range(self.r.randint(2, 6)):
            lines.append("  if (%s)\n    return %s;" % (self.cond(), self.result()))
        lines.append("  return %s;\n}" % self.result())
        return "\n".join(lines) + "\n"

    def probe_value(self):
        """An expression whose value (not only its truth) is compared."""
        r = self.r
        k = r.randrange(6)
        if k == 0:
            return "dnsDomainLevels(host)"
        if k == 1:
            return "myIpAddress()"
        if k == 2:
            return '(safe(host) ? dnsResolve(host) : "-")'
        if k == 3:
            return 'dnsResolve("localhost")'
        if k == 4:
            return '(safe(host) ? dnsResolveEx(host) : "-")'
        return "myIpAddressEx()"

    def probe_script(self):
        parts = []
        for _ in range(self.r.randint(5, 10)):
            parts.append(self.probe_value() if self.r.random() < 0.25 else self.cond(1))
        body = ",\n    ".join(parts)
        return (PRELUDE + "function FindProxyForURL(url, host) {\n"
                "  return [\n    " + body + "\n  ].join(\"|\");\n}\n")

    def url_host(self):
        host = self.pick(HOSTS)
        url = "%s://%s%s%s" % (self.pick(SCHEMES), host, self.pick(PORTS), self.pick(PATHS))
        return url, host


# Hand-written cases on the edges where implementations are known to part;
# each group is a tag the Rust allowlist can name.
EDGE = {
    # shExpMatch builds a RegExp from the pattern (pacparser, Chromium's JS
    # library): other regex metacharacters keep their regex meaning.
    "shexp-meta": [
        ('shExpMatch(host, "a+b.example.com")', ["a+b.example.com", "aab.example.com"]),
        ('shExpMatch(host, "(www).example.com")', ["www.example.com", "(www).example.com"]),
        ('shExpMatch(host, "[ab]*.example.com")', ["a.example.com", "[ab]x.example.com"]),
        ('shExpMatch(host, "^www*")', ["www.example.com", "^www.example.com"]),
        ('shExpMatch(host, "*.com$")', ["x.com", "x.com$"]),
        ('shExpMatch(host, "a|b")', ["a", "a|b", "b"]),
        ('shExpMatch(host, "x{2}.example.com")', ["xx.example.com", "x{2}.example.com"]),
        ('shExpMatch(url, "*\\\\d*")', ["http://d/", "http://1/"]),
    ],
    # Upper- and mixed-case names: the PAC string functions compare exactly.
    "case": [
        ('dnsDomainIs(host, ".example.com")', ["WWW.EXAMPLE.COM", "www.Example.com"]),
        ('shExpMatch(host, "*.example.com")', ["WWW.EXAMPLE.COM"]),
        ('localHostOrDomainIs(host, "www.example.com")', ["WWW", "WWW.EXAMPLE.COM"]),
    ],
    # dnsDomainIs is a plain suffix test: no dot boundary.
    "suffix": [
        ('dnsDomainIs(host, "example.com")', ["notexample.com", "example.com", "xexample.com"]),
        ('dnsDomainIs(host, "")', ["anything"]),
    ],
    # isPlainHostName on IPv6 literals: Chromium says false for a valid one.
    "plain-ipv6": [
        ('isPlainHostName(host)', ["::1", "fe80::1", "[::1]"]),
    ],
    # Masks that are not contiguous or not four octets; odd addresses.
    "innet-odd": [
        ('isInNet(host, "10.0.0.0", "255.0.255.0")', ["10.1.0.3", "10.1.2.3"]),
        ('isInNet(host, "10.0.0.0", "255.0")', ["10.1.2.3"]),
        ('isInNet(host, "10.0.0.0", "255.0.0.0.0")', ["10.1.2.3"]),
        ('isInNet(host, "10.0.0", "255.0.0.0")', ["10.1.2.3"]),
        ('isInNet(host, "10.0.0.0", "255.0.0.0")', ["10.1.2", "010.1.2.3", "0x0a.1.2.3"]),
    ],
    # dnsDomainLevels on odd names.
    "levels": [
        ('dnsDomainLevels(host)', ["a..b", ".", "a.", ".a"]),
    ],
    # The less common dateRange, weekdayRange and timeRange forms (the
    # ranges that wrap around are in "wrap").
    "date-forms": [
        ('dateRange(3, "MAR", "GMT")', ["x"]),
        ('dateRange(1, "JAN", 31, "DEC", "GMT")', ["x"]),
        ('dateRange("JAN", 2000, "DEC", 2100, "GMT")', ["x"]),
        ('dateRange(2000, 2100, "GMT")', ["x"]),
        ('dateRange(2000, "GMT")', ["x"]),
        ('dateRange(1, "JAN", 2000, 31, "DEC", 2100, "GMT")', ["x"]),
        ('weekdayRange("FOO")', ["x"]),
        ('timeRange()', ["x"]),
        ('timeRange(0, 0, 0, 23, 59, 59, "GMT")', ["x"]),
    ],
    # Ranges whose start is after their end: Firefox and Chromium read them
    # as wrapping around (SAT..FRI is every day), pacparser's older script
    # never holds them. Each is chosen to hold at every instant in
    # Chromium, so the difference shows whenever the cases are generated.
    "wrap": [
        ('weekdayRange("SAT", "FRI", "GMT")', ["x"]),
        ('dateRange(2, 1, "GMT")', ["x"]),
        ('dateRange("FEB", "JAN", "GMT")', ["x"]),
        ('timeRange(12, 0, 11, 59, "GMT")', ["x"]),
    ],
    # Answers that are not strings: pacparser converts them to text.
    "non-string": [
        ("42", ["x"]), ("null", ["x"]), ("undefined", ["x"]), ("true", ["x"]),
        ("({})", ["x"]),
    ],
    # The Microsoft IPv6 extensions, on IP literals.
    "ex": [
        ('isInNetEx(host, "10.0.0.0/8")', ["10.1.2.3", "11.1.2.3"]),
        ('isInNetEx(host, "192.168.0.0/16")', ["192.168.1.20"]),
        ('isResolvableEx(host)', ["127.0.0.1"]),
        ('dnsResolveEx(host)', ["10.1.2.3"]),
        ('myIpAddressEx()', ["x"]),
        ('typeof sortIpAddressList', ["x"]),
        ('typeof getClientVersion', ["x"]),
        ('typeof FindProxyForURLEx', ["x"]),
    ],
    # Globals beyond the PAC API.
    "globals": [
        ('typeof alert', ["x"]),
        ('typeof WebAssembly', ["x"]),
        ('typeof dnsResolve', ["x"]),
        ('typeof isInNet + typeof shExpMatch + typeof weekdayRange', ["x"]),
    ],
}


def answer(script, url, host, my_ip):
    """pacparser's answer, and the instant it was computed at (whole second)."""
    for _ in range(5):
        before = time.time()
        pacparser.init()
        pacparser.setmyip(my_ip)
        try:
            pacparser.parse_pac_string(script)
            try:
                out = {"pacparser": pacparser.find_proxy(url, host)}
            except Exception as e:  # pacparser.error: the call failed
                out = {"pacparser_error": str(e)}
        except Exception as e:
            out = {"pacparser_error": "load: %s" % e}
        finally:
            pacparser.cleanup()
        after = time.time()
        if int(before) == int(after):
            out["now"] = int(before)
            return out
    sys.exit("gen.py: could not run a case within one second")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "cases.json"))
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()

    g = Gen(args.seed)
    # Chromium, Firefox and tower-tunnel always define the *Ex functions.
    pacparser.enable_microsoft_extensions()
    scripts, cases = [], []

    def add_script(text):
        scripts.append(text)
        return len(scripts) - 1

    for group, count, per in (("tree", 70, 5), ("probe", 40, 5)):
        for _ in range(count):
            s = add_script(g.tree_script() if group == "tree" else g.probe_script())
            for _ in range(per):
                url, host = g.url_host()
                cases.append({"group": group, "script": s, "url": url, "host": host,
                              "my_ip": g.pick(MY_IPS)})
    for group, items in EDGE.items():
        for expr, hosts in items:
            s = add_script("function FindProxyForURL(url, host) {\n  return %s;\n}\n" % (
                expr if group == "non-string" else "\"\" + (%s)" % expr))
            for host in hosts:
                cases.append({"group": "edge-" + group, "script": s,
                              "url": "http://%s/" % host, "host": host, "my_ip": "10.1.2.3"})

    for i, c in enumerate(cases):
        c["id"] = i
        c.update(answer(scripts[c["script"]], c["url"], c["host"], c["my_ip"]))

    doc = {
        "generator": "tests/pac/crosscheck/gen.py",
        "seed": args.seed,
        "reference": "pacparser %s (python3-pacparser), Microsoft extensions enabled" % (
            pacparser.version() or "(version unknown)"),
        "dns": {"localhost": ["127.0.0.1"], "*": "IP literals answer themselves; "
                "every other name fails"},
        "scripts": scripts,
        "cases": cases,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, args.out)
    errors = sum(1 for c in cases if "pacparser_error" in c)
    print("gen.py: %d cases (%d scripts, %d where pacparser failed the call) -> %s" % (
        len(cases), len(scripts), errors, args.out))


if __name__ == "__main__":
    main()

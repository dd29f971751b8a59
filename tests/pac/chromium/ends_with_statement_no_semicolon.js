// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/ends_with_statement_no_semicolon.js
// (test ProxyResolverV8Test.EndsWithStatementNoNewline). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// The file ends with a statement, no semicolon, no newline (crbug.com/22864).
function FindProxyForURL(url, host) { return "PROXY success:" + x; }
x = 3
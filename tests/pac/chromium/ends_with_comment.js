// Ported from Chromium: services/proxy_resolver/test/data/proxy_resolver_v8_unittest/ends_with_comment.js
// (test ProxyResolverV8Test.EndsWithCommentNoNewline). Copyright The Chromium Authors; use of the original is governed
// by a BSD-style license (https://chromium.googlesource.com/chromium/src/+/main/LICENSE).
// Rewritten for tower-tunnel; expected results: tests/pac/expected.txt.
// The file ends inside a line comment, with no newline (crbug.com/22864).
function FindProxyForURL(url, host) {
  return "PROXY success:80";
}
// no newline after this comment
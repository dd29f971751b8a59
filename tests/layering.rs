//! Imports point down the stack: a module never names a module above it, so each can be
//! read knowing only the ones below. Measured from the source: every `crate::...` path in
//! code (comments and doc links aside) of every file under `src/`, against the order below.
//! The crate root's `BoxError` is the one name any module may use.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules, from the top of the stack down; modules on one line are peers that
/// do not import each other.
const ORDER: &[&[&str]] = &[
    &["test_util", "__fuzz"],
    &["dispatch", "forward"],
    &["tls"],
    &["proxy"],
    &["stage"],
    &["info"],
    &["route"],
    &["target", "timeout"],
    &["error"],
    &["macros"],
];

fn rank(module: &str) -> Option<usize> {
    ORDER.iter().position(|level| level.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line, without a `//` comment (no `//` appears inside a string in `src/`
/// paths that matter here, and a false cut only hides text, never adds a path).
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Every module named after `crate::` in `text`.
fn crate_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // `crate::{a, b}` groups: each name in the braces.
        if after.starts_with('{') {
            let group = &after[1..after.find('}').unwrap_or(after.len())];
            for part in group.split(',') {
                let head: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !head.is_empty() {
                    found.push(head);
                }
            }
        } else if !name.is_empty() {
            found.push(name);
        }
        rest = after;
    }
    found
}

#[test]
fn every_import_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str();
        let top = first.to_str().unwrap().trim_end_matches(".rs").to_owned();
        if top == "lib" {
            continue; // The root re-exports everything.
        }
        let own = rank(&top).unwrap_or_else(|| panic!("{top} is not in ORDER"));
        let text = fs::read_to_string(file).unwrap();
        // Code only, the whole file at once, so `use crate::{..}` groups over several
        // lines are read too.
        let code: String = text.lines().map(|l| code(l).to_owned() + "\n").collect();
        for name in crate_paths(&code) {
            checked += 1;
            if name == "BoxError" || name == top {
                continue;
            }
            match rank(&name) {
                Some(theirs) if theirs > own => {}
                Some(_) => upward.push(format!("{}: {top} names crate::{name}", rel.display())),
                None => upward.push(format!(
                    "{}: crate::{name}: name the module it lives in",
                    rel.display()
                )),
            }
        }
        // The wire protocols sit below the rest of `proxy`.
        if rel.starts_with("proxy/protocol")
            && (code.contains("super::super")
                || code
                    .match_indices("crate::proxy::")
                    .any(|(i, _)| !code[i..].starts_with("crate::proxy::protocol")))
        {
            upward.push(format!("{}: protocol names the proxy layer", rel.display()));
        }
    }
    assert!(
        checked > 40,
        "only {checked} paths seen: is the scan broken?"
    );
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_scan_finds_paths() {
    assert_eq!(
        crate_paths("use crate::{error::Error, info::ConnectionInfo};"),
        ["error", "info"]
    );
    assert_eq!(
        crate_paths("let x = crate::timeout::within(a);"),
        ["timeout"]
    );
    assert_eq!(code("foo(); // crate::dispatch"), "foo(); ");
}

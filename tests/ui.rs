//! Compile-fail tests: every misordered stack is rejected with the crate's
//! own message. Compiler output drifts between releases, so the `.stderr`
//! files are pinned to the CI toolchain (Rust 1.95); regenerate them with
//! `TRYBUILD=overwrite cargo test --test ui` and review the diff.

#[rustversion::stable(1.95)]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

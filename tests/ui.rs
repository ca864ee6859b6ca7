//! Compile-time behaviour of `#[in_netns]`: what it accepts (`ui/pass`) and the error each misuse
//! gets (`ui/fail`, with the expected messages committed next to each case).
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test --test ui`, then read them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}

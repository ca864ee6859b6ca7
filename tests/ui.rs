//! Compile-time behaviour of `#[in_netns]`: what it accepts (`ui/pass`) and the error each misuse
//! gets (`ui/fail`, with the expected messages committed next to each case).
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test --all-features --test ui`
//! and once more without `--all-features`, then read them.

#[in_netns::test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
    // `async fn` depends on the "tokio" feature: with it, async forms compile and lifetimes are
    // checked; without it, every async fn is refused with a message naming the feature. Whole
    // directories, so that a case cannot silently compile to nothing without the feature.
    // A wrong target's message lists the targets there are, which the feature changes: it is
    // checked with it.
    if cfg!(feature = "tokio") {
        cases.pass("tests/ui/async_pass/*.rs");
        cases.compile_fail("tests/ui/async/*.rs");
    } else {
        cases.compile_fail("tests/ui/no_tokio/*.rs");
    }
}

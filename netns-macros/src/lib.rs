//! The `#[in_netns]` attribute of the [`in-netns`](https://docs.rs/in-netns) crate. Use it through
//! `in-netns`, which documents it in full; this crate only holds the macro.
//!
//! Layout: `options` is the table of per-call options, which `args` follows to parse the
//! attribute's arguments and `expand` to turn them into `Options`; `item` parses the function,
//! `validate` refuses functions that cannot be rewritten, `inputs` collects what the parameters
//! bind, `expand` rewrites the function (turning any error into one `compile_error!`), and
//! `rename_self` renames `self` in the body.
//! `test_attr` is `#[in_netns::test]`.

#![deny(missing_docs)]
// On docs.rs (nightly, `--cfg docsrs`), feature-gated items say which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod args;
mod expand;
mod inputs;
mod item;
#[cfg(test)]
mod never_panics;
mod options;
mod rename_self;
#[cfg(test)]
mod snapshots;
mod test_attr;
mod validate;

use proc_macro::TokenStream;

/// Runs the function's body inside a network namespace, on a dedicated thread that entered it.
///
/// See the `in-netns` crate's documentation of `in_netns` for the forms and rules.
#[proc_macro_attribute]
pub fn in_netns(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::in_netns(attr.into(), item.into()).into()
}

/// Runs a test in a fresh network namespace with `lo` up, with or without root.
///
/// See the `in-netns` crate's documentation of `test` for what it gives.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    test_attr::test(attr.into(), item.into()).into()
}

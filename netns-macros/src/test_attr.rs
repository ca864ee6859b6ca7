//! `#[in_netns::test]`: a test whose body runs in a fresh network namespace with `lo` up.
//!
//! ```text
//! #[in_netns::test]
//! fn binds() -> io::Result<()> { BODY }
//! // becomes
//! #[test]
//! fn binds() -> io::Result<()> {
//!     fn body() -> io::Result<()> { BODY }     // `?` and `return` keep their meaning
//!     ::in_netns::__private::test::run(concat!(module_path!(), "::", "binds"), body)
//! }
//! ```

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn};

/// Expands `#[in_netns::test(attr)] item`; on an error, the item as written and one error.
pub(crate) fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        // Another item: refused, or its tests would run outside any namespace unnoticed.
        Err(_) if syn::parse2::<syn::Item>(item.clone()).is_ok() => {
            let error = syn::Error::new(
                item.clone()
                    .into_iter()
                    .next()
                    .map_or_else(Span::call_site, |t| t.span()),
                "`#[in_netns::test]` applies to a test function: put it on each `fn` in place of `#[test]`",
            );
            let error = error.to_compile_error();
            return quote!(#item #error);
        }
        // What does not parse is the compiler's to report, where it is.
        Err(_) => return item,
    };
    let args = match parse_args(attr) {
        Ok(args) => args,
        Err(error) => return with_error(func, error),
    };
    if let Err(error) = check(&func) {
        return with_error(func, error);
    }
    expand(func, args)
}

/// The attribute's arguments: `own_process` and `crate = path`, in any order.
struct Args {
    krate: TokenStream,
    own_process: bool,
}

const EXPECTED: &str = "`#[in_netns::test]` takes `own_process` and `crate = path`";

fn parse_args(attr: TokenStream) -> syn::Result<Args> {
    let mut args = Args {
        krate: quote!(::in_netns),
        own_process: false,
    };
    let parser = |input: syn::parse::ParseStream<'_>| {
        while !input.is_empty() {
            if input.peek(syn::Token![crate]) {
                input.parse::<syn::Token![crate]>()?;
                input.parse::<syn::Token![=]>()?;
                args.krate = input.call(syn::Path::parse_mod_style)?.into_token_stream();
            } else {
                let flag: Ident = input.parse()?;
                if flag != "own_process" {
                    return Err(syn::Error::new(
                        flag.span(),
                        format!("unknown option `{flag}`; {EXPECTED}"),
                    ));
                }
                if input.peek(syn::Token![=]) {
                    return Err(
                        input.error("`own_process` is a flag: write it alone, without a value")
                    );
                }
                if args.own_process {
                    return Err(syn::Error::new(
                        flag.span(),
                        "duplicate option `own_process`",
                    ));
                }
                args.own_process = true;
            }
            if !input.is_empty() {
                input.parse::<syn::Token![,]>()?;
            }
        }
        Ok(())
    };
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(args)
}

fn check(func: &ItemFn) -> syn::Result<()> {
    if let Some(test) = func.attrs.iter().find(|attr| attr.path().is_ident("test")) {
        return Err(syn::Error::new_spanned(
            test,
            "remove `#[test]`: `#[in_netns::test]` registers the test itself",
        ));
    }
    let sig = &func.sig;
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            "a test function takes no arguments",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a test function cannot be generic",
        ));
    }
    if sig.asyncness.is_some() && !cfg!(feature = "tokio") {
        return Err(syn::Error::new(
            sig.asyncness.span(),
            "`#[in_netns::test]` on an `async fn` needs the `tokio` feature of `in-netns`: \
             `in-netns = { version = \"0.1\", features = [\"tokio\"] }`",
        ));
    }
    Ok(())
}

fn expand(func: ItemFn, args: Args) -> TokenStream {
    let Args { krate, own_process } = args;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = sig.ident.clone();
    let body = Ident::new("in_netns_test_body", Span::mixed_site());
    let mut inner = sig.clone();
    inner.ident = body.clone();
    let runner = if sig.asyncness.is_some() {
        quote!(run_async)
    } else {
        quote!(run)
    };
    let mut outer = sig;
    outer.asyncness = None;
    // A child process that ran a `#[should_panic]` test passed because it panicked; the
    // parent must then panic too, with the child's message.
    let should_panic = attrs
        .iter()
        .any(|attr| attr.path().is_ident("should_panic"));
    quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis #outer {
            #inner #block
            #krate::__private::test::#runner(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                #should_panic,
                #own_process,
                #body,
            )
        }
    }
}

fn with_error(func: ItemFn, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#func #error)
}

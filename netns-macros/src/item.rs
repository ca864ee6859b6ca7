//! What `#[in_netns]` is applied to: a function, parsed whole when its body parses, or as a
//! signature and a body of raw tokens when it does not (tracing-attributes' `MaybeItemFn`).
//!
//! A body that does not parse already has rustc's own error at the right line, so such a
//! function is given back as written, with nothing added.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, ItemFn, Signature, Visibility};

/// The annotated item.
pub(crate) enum Item {
    /// A function whose body parses: it can be rewritten.
    Function(Box<ItemFn>),
    /// A function whose body does not parse: rustc reports the syntax error itself.
    BodyWithSyntaxError(TokenStream),
}

/// `ATTRS VIS SIGNATURE { TOKENS }`: a function, whatever its body holds.
struct FunctionWithRawBody;

impl Parse for FunctionWithRawBody {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        input.call(Attribute::parse_outer)?;
        input.parse::<Visibility>()?;
        input.parse::<Signature>()?;
        let body;
        syn::braced!(body in input);
        body.parse::<TokenStream>()?;
        Ok(FunctionWithRawBody)
    }
}

/// Parses the item; an error (spanned on its first token) when it is not a function with a body.
pub(crate) fn parse(item: TokenStream) -> syn::Result<Item> {
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => Ok(Item::Function(Box::new(func))),
        Err(_) if syn::parse2::<FunctionWithRawBody>(item.clone()).is_ok() => {
            Ok(Item::BodyWithSyntaxError(item))
        }
        Err(_) => {
            let span = item
                .into_iter()
                .next()
                .map_or_else(proc_macro2::Span::call_site, |token| token.span());
            Err(syn::Error::new(
                span,
                "`#[in_netns]` can only be applied to a function with a body",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn a_function_whose_body_does_not_parse_is_given_back_as_written() {
        let item = quote!(
            fn f() -> R {
                let x = 1 +;
            }
        );
        match parse(item.clone()) {
            Ok(Item::BodyWithSyntaxError(tokens)) => {
                assert_eq!(tokens.to_string(), item.to_string());
            }
            _ => panic!("expected the raw function back"),
        }
    }

    #[test]
    fn anything_else_is_refused_at_its_first_token() {
        for item in [
            quote!(
                struct S;
            ),
            quote!(
                fn f() -> R;
            ),
            quote!(),
        ] {
            let Err(error) = parse(item) else {
                panic!("expected an error")
            };
            assert!(error.to_string().contains("a function with a body"));
        }
    }
}

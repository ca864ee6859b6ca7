//! Rules a function must follow before it can be rewritten, each with an error that says what to
//! change.

use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

/// Checks the parts of `func` that `#[in_netns]` cannot handle.
pub(crate) fn check(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span,
            "`#[in_netns]` does not support `async fn` yet: its future would be polled by the \
             caller's executor threads, outside the namespace; make the function synchronous",
        ));
    }
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new(
            constness.span,
            "`#[in_netns]` cannot apply to a `const fn`: the body runs on another thread at run \
             time; remove `const`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new(
            variadic.span(),
            "`#[in_netns]` cannot move C variadic arguments to another thread",
        ));
    }
    if let ReturnType::Default = sig.output {
        return Err(syn::Error::new(
            sig.paren_token.span.join(),
            "`#[in_netns]` functions must return `Result<_, E>` with `E: From<netns::Error>`, \
             because entering the namespace can fail; add a return type such as \
             `-> Result<(), netns::Error>` or `-> std::io::Result<()>`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;
    use quote::quote;

    fn message(item: proc_macro2::TokenStream) -> String {
        let func = syn::parse2(item).unwrap();
        check(&func).unwrap_err().to_string()
    }

    #[test]
    fn accepts_a_plain_function_returning_something() {
        let func = syn::parse2(quote!(
            fn f(x: u32) -> Result<u32, E> {
                Ok(x)
            }
        ))
        .unwrap();
        assert!(check(&func).is_ok());
    }

    #[test]
    fn refuses_what_cannot_cross_threads() {
        assert!(
            message(quote!(
                async fn f() -> R {}
            ))
            .contains("does not support `async fn`")
        );
        assert!(
            message(quote!(
                const fn f() -> R {}
            ))
            .contains("`const fn`")
        );
        assert!(
            message(quote!(
                fn f() {}
            ))
            .contains("must return `Result<_, E>`")
        );
    }
}

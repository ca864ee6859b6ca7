//! Rules a function must follow before it can be rewritten, each with an error that says what to
//! change.

use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

/// Checks the parts of `func` that `#[in_netns]` cannot handle. `async_supported` says whether
/// `in-netns` was built with its `tokio` feature.
pub(crate) fn check(func: &ItemFn, async_supported: bool) -> syn::Result<()> {
    let sig = &func.sig;
    check_not_rewritten_by_async_trait(sig)?;
    if let Some(asyncness) = &sig.asyncness {
        if !async_supported {
            return Err(syn::Error::new(
                asyncness.span,
                "`#[in_netns]` on an `async fn` needs the `tokio` feature of `in-netns`: \
                 `in-netns = { version = \"0.1\", features = [\"tokio\"] }`",
            ));
        }
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
            "`#[in_netns]` functions must return `Result<_, E>` with `E: From<in_netns::Error>`, \
             because entering the namespace can fail; add a return type such as \
             `-> Result<(), in_netns::Error>` or `-> std::io::Result<()>`",
        ));
    }
    Ok(())
}

/// `#[async_trait]` on the impl expands first and turns `async fn f(..) -> R` into
/// `fn f<'async_trait>(..) -> Pin<Box<dyn Future<Output = R> + Send + 'async_trait>>`; what
/// `#[in_netns]` then sees is no longer the user's function.
fn check_not_rewritten_by_async_trait(sig: &syn::Signature) -> syn::Result<()> {
    let ReturnType::Type(_, ty) = &sig.output else {
        return Ok(());
    };
    let rewritten = crate::inputs::all_idents(ty)
        .iter()
        .any(|ident| ident == "async_trait");
    if rewritten {
        return Err(syn::Error::new(
            sig.ident.span(),
            "`#[in_netns]` cannot apply to a method of an `#[async_trait]` impl: `#[async_trait]` \
             has already turned it into a function returning a boxed future; write the body as \
             an `#[in_netns]` async fn outside the trait impl (a free function or an inherent \
             method) and call it from this method",
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
        check(&func, true).unwrap_err().to_string()
    }

    #[test]
    fn accepts_a_plain_function_returning_something() {
        let func = syn::parse2(quote!(
            fn f(x: u32) -> Result<u32, E> {
                Ok(x)
            }
        ))
        .unwrap();
        assert!(check(&func, false).is_ok());
    }

    #[test]
    fn refuses_what_cannot_cross_threads() {
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

    #[test]
    fn async_needs_the_tokio_feature_and_leaves_lifetimes_to_the_compiler() {
        let async_fn = syn::parse2(quote!(
            async fn f(label: &'static str, x: &str) -> R {}
        ))
        .unwrap();
        let without_tokio = check(&async_fn, false).unwrap_err().to_string();
        assert!(
            without_tokio.contains("needs the `tokio` feature"),
            "{without_tokio}"
        );
        // Whether an argument lives long enough is the `Sendable::new_owned` bound's to say.
        assert!(check(&async_fn, true).is_ok());
    }

    #[test]
    fn a_method_rewritten_by_async_trait_is_refused_at_its_name() {
        let message = message(quote!(
            fn probe<'life0, 'async_trait>(
                &'life0 self,
            ) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'async_trait>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async move { Ok(()) })
            }
        ));
        assert!(message.contains("`#[async_trait]` impl"), "{message}");
    }
}

//! Rules a function must follow before it can be rewritten, each with an error that says what to
//! change.

use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

/// Checks the parts of `func` that `#[in_netns]` cannot handle. `async_supported` says whether
/// `in-netns` was built with its `tokio` feature.
pub(crate) fn check(func: &ItemFn, async_supported: bool) -> syn::Result<()> {
    let sig = &func.sig;
    if let Some(asyncness) = &sig.asyncness {
        if !async_supported {
            return Err(syn::Error::new(
                asyncness.span,
                "`#[in_netns]` on an `async fn` needs the `tokio` feature of `in-netns`: \
                 `in-netns = { version = \"0.1\", features = [\"tokio\"] }`",
            ));
        }
        check_owned_inputs(sig)?;
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

/// An `async fn`'s arguments move to a thread that may outlive the caller's future (when it is
/// dropped), so they cannot borrow: refuse `&self` and `&T` where the user wrote them.
fn check_owned_inputs(sig: &syn::Signature) -> syn::Result<()> {
    const OWNED: &str = "an `async fn` under `#[in_netns]` runs its body on another thread that \
        may outlive the caller's future, so its arguments must be owned (`Send + 'static`)";
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) if receiver.reference.is_some() => {
                return Err(syn::Error::new_spanned(
                    receiver,
                    format!(
                        "{OWNED}: take `self: Arc<Self>` (or `self`) instead of a borrowed `self`"
                    ),
                ));
            }
            FnArg::Typed(param) if matches!(*param.ty, Type::Reference(_)) => {
                return Err(syn::Error::new_spanned(
                    &param.ty,
                    format!("{OWNED}: pass an owned value or an `Arc` instead of a reference"),
                ));
            }
            _ => {}
        }
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
    fn async_needs_the_tokio_feature_and_owned_arguments() {
        let async_fn = syn::parse2(quote!(
            async fn f() -> R {}
        ))
        .unwrap();
        let without_tokio = check(&async_fn, false).unwrap_err().to_string();
        assert!(
            without_tokio.contains("needs the `tokio` feature"),
            "{without_tokio}"
        );
        assert!(check(&async_fn, true).is_ok());
        let borrowed = message(quote!(
            async fn f(x: &str) -> R {}
        ));
        assert!(borrowed.contains("instead of a reference"), "{borrowed}");
        let borrowed_self = message(quote!(
            async fn f(&self) -> R {}
        ));
        assert!(
            borrowed_self.contains("`self: Arc<Self>`"),
            "{borrowed_self}"
        );
        let owned = message(quote!(
            async fn f(self: Arc<Self>, x: String) {}
        ));
        assert!(owned.contains("must return"), "{owned}");
    }
}

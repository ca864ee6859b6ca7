//! The rewrite: the function keeps its signature, and its body moves into a closure that
//! `in-netns` runs on a dedicated thread inside the namespace.
//!
//! ```text
//! fn f(a: A, mut b: B) -> Ret {                   // `mut` moves to the rebinding below
//!     let target = resolve(TARGET);               // on the caller's thread, borrowing nothing
//!     let arg0 = &mut Sendable::new(a);           // `A: Send` checked here, at `A`
//!     let arg1 = &mut Sendable::new(b);           // (an async fn moves them: no `&mut`)
//!     return run(target, OPTIONS,                 // an explicit `return`: no implicit one
//!         Returns::checked(),                     // `Ret: Send`, `Ret` a Result, checked at `Ret`
//!         move || { let a = arg0.take(); let mut b = arg1.take(); BODY });
//! }
//! ```
//!
//! `tests/expand/*.expanded.rs` hold the exact expansions of many shapes.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Ident, ItemFn, ReturnType};

use crate::args::{Args, Target};
use crate::inputs::{self, Binding, ParamAttrs, ReceiverInfo};
use crate::item::{self, Item};
use crate::rename_self::{fresh_name, rename_self};
use crate::validate;

/// Whether `async fn` is accepted: `in-netns` was built with its `tokio` feature.
pub(crate) const ASYNC_SUPPORTED: bool = cfg!(feature = "tokio");

/// Expands `#[in_netns(attr)] item`. Never panics: on an error it returns the item as written
/// (so the rest of the crate still type-checks) followed by that one error, as a
/// `compile_error!` spanned where the user can fix it.
pub(crate) fn in_netns(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr, item.clone()) {
        Ok(expanded) => expanded,
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#item #error)
        }
    }
}

fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let func = match item::parse(item)? {
        Item::Function(func) => func,
        // rustc has reported the syntax error, at its line; nothing to add.
        Item::BodyWithSyntaxError(item) => return Ok(item),
    };
    let args = syn::parse2::<Args>(attr)?;
    validate::check(&func, ASYNC_SUPPORTED)?;
    Ok(rewrite(args, *func))
}

/// The `#[allow]`s the expansion needs, each on the one generated statement it is about.
mod allow {
    use proc_macro2::TokenStream;
    use quote::quote;

    /// On the rebinding of each parameter inside the closure.
    pub(super) fn rebinding() -> TokenStream {
        quote!(#[allow(
            clippy::shadow_unrelated,
            reason = "the parameter itself, moved to the namespace thread and bound again there"
        )])
    }

    /// On the rebinding of a parameter that the target expression reads.
    pub(super) fn read_by_target() -> TokenStream {
        quote!(#[allow(
            unused_variables,
            reason = "the target expression reads this parameter, so the body need not"
        )])
    }

    /// On the rebinding of each parameter of a function that `#[instrument]` also wraps: the
    /// span records the parameters on the caller's side, so the body need not use them.
    pub(super) fn recorded_by_instrument() -> TokenStream {
        quote!(#[allow(
            unused_variables,
            reason = "`#[instrument]` records the parameters in the function's span, so the body need not use them"
        )])
    }

    /// On the rebinding of the receiver.
    pub(super) fn receiver() -> TokenStream {
        quote!(#[allow(
            unused_variables,
            reason = "`self` is bound again under another name; rustc never reports an unused `self`"
        )])
    }

    /// On the unreachable `return` that tells an async body its return type.
    pub(super) fn fake_return() -> TokenStream {
        quote!(#[allow(
            unreachable_code,
            reason = "never runs: it only gives `?` and `return` in the async body their type"
        )] #[allow(
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::needless_return,
            clippy::unreachable,
            reason = "the `loop {}` that makes a value of the return type without running"
        )])
    }
}

fn rewrite(args: Args, mut func: ItemFn) -> TokenStream {
    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| quote!(::in_netns), ToTokens::to_token_stream);
    let private = quote!(#krate::__private);
    let is_async = func.sig.asyncness.is_some();

    let self_name = fresh_name(&func);
    let (bindings, receiver) = inputs::collect(&mut func.sig, &args.target);
    if receiver.is_some() {
        rename_self(&mut func.block, &self_name);
    }
    let target_var = Ident::new("netns_target", Span::mixed_site());
    let resolve = resolve_target(&args, &private);
    let options = options(&args, &krate);
    // `#[tracing::instrument]` left on the function (written under `#[in_netns]`) wraps what
    // this expansion makes of it, and reads the parameters there.
    let instrumented = func.attrs.iter().any(|attr| {
        attr.path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "instrument")
    });
    let (captures, rebindings) = moves(
        &bindings,
        receiver.as_ref(),
        &self_name,
        is_async,
        instrumented,
        &private,
    );
    let returns = returns_check(&func.sig.output, is_async, &private);

    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &func;
    // The user's braces, made to count as the expansion's: the block is kept whole (its `use`
    // items must not reach the rebindings) but rustc must not call its braces unnecessary.
    let mut user_block = (**block).clone();
    user_block.brace_token =
        syn::token::Brace(Span::mixed_site().located_at(block.brace_token.span.join()));
    let run = if is_async {
        let fake_return = fake_return_edge(&sig.output);
        let closure = quote! {
            move || async move {
                #(#rebindings)*
                #fake_return
                #user_block
            }
        };
        // The body's future holds the arguments, so it needs `'static` wherever an argument
        // does: spanned at the first argument of a generic type, rustc reports a type parameter
        // that may not live long enough there, where the argument's own check does, and not at
        // the attribute.
        let span = generic_argument_span(sig).unwrap_or_else(Span::call_site);
        let run_async = respan(quote!(#private::run_async), span);
        let mut call = proc_macro2::Group::new(
            proc_macro2::Delimiter::Parenthesis,
            quote!(#target_var, #options, #returns, #closure),
        );
        call.set_span(span);
        let await_ = respan(quote!(.await), span);
        quote!(#run_async #call #await_)
    } else {
        quote! {
            #private::run(#target_var, #options, #returns, move || {
                #(#rebindings)*
                #user_block
            })
        }
    };
    let body = quote! {
        let #target_var = #resolve;
        #(#captures)*
        // `return`, so that `clippy::implicit_return` finds no implicit one in the expansion
        // (`clippy::needless_return` leaves a `return` from a macro alone).
        return #run;
    };
    let mut out = TokenStream::new();
    for attr in attrs {
        attr.to_tokens(&mut out);
    }
    vis.to_tokens(&mut out);
    sig.to_tokens(&mut out);
    block.brace_token.surround(&mut out, |out| out.extend(body));
    out
}

/// `resolve(TARGET)`, evaluated on the caller's thread. With per-call options it also checks
/// that the target takes them, and reports a failure at the first option in table order.
fn resolve_target(args: &Args, private: &TokenStream) -> TokenStream {
    let expr = args.target.expr();
    let span = expr.span();
    let target = match &args.target {
        Target::Expr(_) => quote!(#expr),
        Target::Name(_) => {
            let name = respan(quote!(#private::Name), span);
            quote!(#name(#expr))
        }
        Target::Pid(_) => {
            let pid = respan(quote!(#private::Pid), span);
            quote!(#pid(#expr))
        }
    };
    let resolve = match args.options().next() {
        Some(option) => respan(quote!(#private::resolve_with_options), option.span),
        None => respan(quote!(#private::resolve), span),
    };
    quote!(#resolve(#target))
}

/// The call's `Options`: the defaults, then a builder call for each option given.
fn options(args: &Args, krate: &TokenStream) -> TokenStream {
    let mut options = quote!(#krate::Options::DEFAULT);
    for option in args.options() {
        options.extend(option.builder_call());
    }
    options
}

/// How each argument and the receiver cross into the closure: checked and wrapped on the
/// caller's thread (the check reported at the parameter), and bound again inside under the
/// user's own name (`self` under `self_name`). An async body moves to a thread that may outlive
/// the caller's future, so what it takes must also be `'static`. A sync body runs while the
/// caller waits, so it takes each value out of a slot in the caller's frame: a large argument is
/// moved once, into its slot, not again into the closure and into each call the closure goes
/// through.
fn moves(
    bindings: &[Binding],
    receiver: Option<&ReceiverInfo>,
    self_name: &str,
    is_async: bool,
    instrumented: bool,
    private: &TokenStream,
) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let (wrap, borrow, unwrap) = if is_async {
        (
            quote!(#private::Sendable::new_owned),
            quote!(),
            quote!(into_inner),
        )
    } else {
        (quote!(#private::Sendable::new), quote!(&mut), quote!(take))
    };
    let mut captures = Vec::new();
    let mut rebindings = Vec::new();
    for (index, binding) in bindings.iter().enumerate() {
        let var = format_ident!("netns_arg{}", index, span = Span::mixed_site());
        let ident = &binding.ident;
        let ParamAttrs { cfgs, lints } = &binding.attrs;
        let wrapped = checked_call(&wrap, ident.to_token_stream(), binding.check_span);
        captures.push(quote!(#(#cfgs)* let #var = #borrow #wrapped;));
        let mutability = &binding.mutability;
        let unused = match (binding.named_by_target, instrumented) {
            (true, _) => Some(allow::read_by_target()),
            (false, true) => Some(allow::recorded_by_instrument()),
            (false, false) => None,
        };
        let allow = allow::rebinding();
        rebindings.push(quote! {
            #(#cfgs)* #(#lints)* #unused #allow
            let #mutability #ident = #var.#unwrap();
        });
    }
    if let Some(receiver) = receiver {
        let var = Ident::new("netns_self", Span::mixed_site());
        let self_token = &receiver.self_token;
        let wrapped = checked_call(&wrap, self_token.to_token_stream(), receiver.check_span);
        captures.push(quote!(let #var = #borrow #wrapped;));
        let renamed = Ident::new(self_name, self_token.span);
        let mutability = &receiver.mutability;
        let allow = allow::receiver();
        rebindings.push(quote!(#allow let #mutability #renamed = #var.#unwrap();));
    }
    (captures, rebindings)
}

/// `function(argument)`, every generated token spanned at `span` (the user's parameter or
/// receiver), so that rustc reports a failed bound of `function`, or a borrow that does not
/// live long enough for it, there and not at the attribute.
fn checked_call(function: &TokenStream, argument: TokenStream, span: Span) -> TokenStream {
    let function = respan(function.clone(), span);
    let mut call = proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, argument);
    call.set_span(span);
    quote!(#function #call)
}

/// Where the first parameter whose type names a type parameter of `sig` (or `impl Trait`)
/// checks its bounds.
fn generic_argument_span(sig: &syn::Signature) -> Option<Span> {
    let type_params: Vec<&Ident> = sig.generics.type_params().map(|p| &p.ident).collect();
    sig.inputs.iter().find_map(|input| match input {
        syn::FnArg::Typed(param) => inputs::all_idents(&param.ty)
            .iter()
            .any(|ident| ident == "impl" || type_params.contains(&ident))
            .then(|| param.ty.span()),
        syn::FnArg::Receiver(_) => None,
    })
}

/// `Returns::checked()`, spanned over the return type so that a result that is not `Send`, or
/// not a suitable `Result`, is reported there.
fn returns_check(output: &ReturnType, is_async: bool, private: &TokenStream) -> TokenStream {
    let checked = if is_async {
        quote!(#private::Returns::checked_owned())
    } else {
        quote!(#private::Returns::checked())
    };
    match output {
        ReturnType::Type(_, ty) => respan_over(checked, ty),
        ReturnType::Default => checked,
    }
}

/// An unreachable `return` of the function's return type, so that `?` and `return` in an async
/// body know the type they produce (an async block does not learn it from its context).
/// `impl Trait` is erased to `_`, since it cannot be named in a `let`.
fn fake_return_edge(output: &ReturnType) -> TokenStream {
    let ReturnType::Type(_, ty) = output else {
        return TokenStream::new();
    };
    let mut ty = (**ty).clone();
    EraseImplTrait.visit_type_mut(&mut ty);
    let var = Ident::new("netns_return", Span::mixed_site());
    let allow = allow::fake_return();
    quote! {
        #allow
        if false {
            let #var: #ty = loop {};
            return #var;
        }
    }
}

/// Replaces `impl Trait` with `_`.
struct EraseImplTrait;

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, ty: &mut syn::Type) {
        if let syn::Type::ImplTrait(impl_trait) = ty {
            *ty = syn::Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](impl_trait.impl_token.span),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
}

/// `tokens` with every span set to `span`, so that rustc reports a failed bound on a generated
/// call at the user's code (argument, receiver, return type or target) rather than at the
/// attribute. Only for paths to the runtime: user tokens keep their own spans.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// `tokens` spanned over all of `node`: the first token at its start, the rest at its end, so
/// rustc underlines the whole of `node` (a single span cannot be joined on stable).
fn respan_over(tokens: TokenStream, node: &impl ToTokens) -> TokenStream {
    let mut node_tokens = node.to_token_stream().into_iter();
    let Some(first) = node_tokens.next() else {
        return tokens;
    };
    let start = first.span();
    let end = node_tokens.last().map_or(start, |last| last.span());
    let mut tokens = tokens.into_iter();
    let head = tokens.next().map(|tree| respan(tree.into(), start));
    head.into_iter()
        .flatten()
        .chain(respan(tokens.collect(), end))
        .collect()
}

#[cfg(test)]
mod tests {
    //! The error paths; whole expansions are reviewed in `tests/expand` (see `snapshots.rs`).
    use super::in_netns;
    use quote::quote;

    fn expand(attr: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
        in_netns(attr, item).to_string()
    }

    #[test]
    fn errors_keep_the_item_and_add_one_compile_error() {
        let out = expand(
            quote!(),
            quote!(
                fn f() -> R {
                    g()
                }
            ),
        );
        assert!(out.starts_with("fn f () -> R { g () }"), "{out}");
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        let out = expand(
            quote!("/x"),
            quote!(
                struct S;
            ),
        );
        assert!(out.starts_with("struct S ;"), "{out}");
        assert!(out.contains("can only be applied to a function"), "{out}");
    }

    #[test]
    fn a_body_that_does_not_parse_comes_back_as_written_with_no_error_added() {
        let item: proc_macro2::TokenStream = "fn f() -> R { let x = 1 +; Ok(x) }".parse().unwrap();
        let out = in_netns(quote!("/x"), item.clone());
        assert_eq!(out.to_string(), item.to_string());
    }
}

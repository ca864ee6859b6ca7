//! The rewrite: the function keeps its signature, and its body moves into a closure that
//! `in-netns` runs on a dedicated thread inside the namespace.
//!
//! ```text
//! fn f(a: A, mut b: B) -> Ret {                   // `mut` moves to the rebinding below
//!     let target = resolve(TARGET);               // on the caller's thread, borrowing nothing
//!     let arg0 = &mut Sendable::new(a);           // `A: Send` checked here, at `A`
//!     let arg1 = &mut Sendable::new(b);           // (an async fn moves them: no `&mut`)
//!     run(target, OPTIONS, Returns::checked(),    // `Ret: Send`, `Ret` a Result, checked at `Ret`
//!         move || { let a = arg0.take(); let mut b = arg1.take(); BODY })
//! }
//! ```

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Expr, FnArg, Ident, ItemFn, PatIdent, Receiver, ReturnType};

use crate::args::{Args, Target};
use crate::rename_self::{RENAMED_SELF, rename_self};
use crate::validate;

/// Whether `async fn` is accepted: `in-netns` was built with its `tokio` feature.
pub(crate) const ASYNC_SUPPORTED: bool = cfg!(feature = "tokio");

/// Expands `#[in_netns(attr)] item`. Never panics: on any error it returns the item as written
/// (so the rest of the crate still type-checks) followed by one `compile_error!`.
pub(crate) fn in_netns(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let span = item
                .clone()
                .into_iter()
                .next()
                .map_or_else(Span::call_site, |t| t.span());
            let error = syn::Error::new(
                span,
                "`#[in_netns]` can only be applied to a function with a body",
            );
            return with_error(item, error);
        }
    };
    let args = match syn::parse2::<Args>(attr) {
        Ok(args) => args,
        Err(error) => return with_error(func.into_token_stream(), error),
    };
    if let Err(error) = validate::check(&func, ASYNC_SUPPORTED) {
        return with_error(func.into_token_stream(), error);
    }
    rewrite(args, func)
}

/// The item unchanged, followed by the error.
fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#item #error)
}

/// A name the user bound in a parameter, moved into the closure and bound again there.
struct Binding {
    ident: Ident,
    /// `mut x`: the mutability belongs on the rebinding inside the closure.
    mutable: bool,
    /// Where a failed `Send` check should point: the parameter's type.
    check_span: Span,
    /// The target expression names it, so the body may legitimately leave it unused.
    named_by_target: bool,
}

fn rewrite(args: Args, mut func: ItemFn) -> TokenStream {
    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| quote!(::in_netns), ToTokens::to_token_stream);
    let private = quote!(#krate::__private);
    let is_async = func.sig.asyncness.is_some();

    let (bindings, receiver) = collect_inputs(&mut func.sig, &args.target);
    if receiver.is_some() {
        rename_self(&mut func.block);
    }
    let target_var = Ident::new("netns_target", Span::mixed_site());
    let resolve = resolve_target(&args, &private);
    let options = options(&args, &krate);
    let (captures, rebindings) = moves(&bindings, receiver.as_ref(), is_async, &private);
    let returns = returns_check(&func.sig.output, is_async, &private);

    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &func;
    let run = if is_async {
        let fake_return = fake_return_edge(&sig.output);
        quote! {
            #private::run_async(#target_var, #options, #returns, move || async move {
                #(#rebindings)*
                #fake_return
                #block
            })
            .await
        }
    } else {
        quote! {
            #private::run(#target_var, #options, #returns, move || {
                #(#rebindings)*
                #block
            })
        }
    };
    let body = quote_spanned! {block.brace_token.span.join()=>
        let #target_var = #resolve;
        #(#captures)*
        #run
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

/// The names the parameters bind and the receiver, with by-value `mut` moved off the signature
/// (the outer function only moves the values; the rebindings inside are the mutable ones).
fn collect_inputs(
    sig: &mut syn::Signature,
    target: &Target,
) -> (Vec<Binding>, Option<ReceiverInfo>) {
    let target_idents = idents_in(target.expr().to_token_stream());
    let moved_by_target = moved_binding(target);
    let mut bindings = Vec::new();
    let mut receiver = None;
    for input in &mut sig.inputs {
        match input {
            FnArg::Receiver(recv) => {
                receiver = Some(ReceiverInfo::of(recv));
                if recv.reference.is_none() {
                    recv.mutability = None;
                }
            }
            FnArg::Typed(param) => {
                let mut collector = CollectBindings {
                    found: Vec::new(),
                    check_span: param.ty.span(),
                };
                collector.visit_pat_mut(&mut param.pat);
                for mut binding in collector.found {
                    binding.named_by_target = target_idents.contains(&binding.ident);
                    if moved_by_target.as_ref() != Some(&binding.ident) {
                        bindings.push(binding);
                    }
                }
            }
        }
    }
    (bindings, receiver)
}

/// `resolve(TARGET)`, evaluated on the caller's thread. With per-call options it also checks
/// that the target takes them, and reports a failure at the flag.
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
    let stack_size = args.stack_size.as_ref().map(|(span, _)| *span);
    let flag = [args.sysfs.span(), args.etc.span(), stack_size]
        .into_iter()
        .flatten()
        .next();
    let resolve = match flag {
        Some(flag) => respan(quote!(#private::resolve_with_options), flag),
        None => respan(quote!(#private::resolve), span),
    };
    quote!(#resolve(#target))
}

/// The call's `Options`.
fn options(args: &Args, krate: &TokenStream) -> TokenStream {
    let mut options = quote!(#krate::Options::DEFAULT);
    if args.sysfs.is_set() {
        options.extend(quote!(.sysfs(true)));
    }
    if args.etc.is_set() {
        options.extend(quote!(.etc(true)));
    }
    if let Some((_, bytes)) = &args.stack_size {
        options.extend(quote!(.stack_size(#bytes)));
    }
    options
}

/// How each argument and the receiver cross into the closure: checked and wrapped on the
/// caller's thread (the check reported at the parameter), and bound again inside under the
/// user's own name (`self` as `__self`). An async body moves to a thread that may outlive the
/// caller's future, so what it takes must also be `'static`. A sync body runs while the caller
/// waits, so it takes each value out of a slot in the caller's frame: a large argument is moved
/// once, into its slot, not again into the closure and into each call the closure goes through.
fn moves(
    bindings: &[Binding],
    receiver: Option<&ReceiverInfo>,
    is_async: bool,
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
        let sendable = respan(wrap.clone(), binding.check_span);
        captures.push(quote!(let #var = #borrow #sendable(#ident);));
        let mutability = binding.mutable.then(|| quote!(mut));
        let allow = binding
            .named_by_target
            .then(|| quote!(#[allow(unused_variables)]));
        rebindings.push(quote!(#allow let #mutability #ident = #var.#unwrap();));
    }
    if let Some(receiver) = receiver {
        let var = Ident::new("netns_self", Span::mixed_site());
        let self_token = &receiver.self_token;
        let sendable = respan(wrap, receiver.check_span);
        captures.push(quote!(let #var = #borrow #sendable(#self_token);));
        let renamed = Ident::new(RENAMED_SELF, self_token.span());
        let mutability = receiver.mutable.then(|| quote!(mut));
        rebindings.push(quote!(let #mutability #renamed = #var.#unwrap();));
    }
    (captures, rebindings)
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
    quote! {
        #[allow(
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::needless_return,
            clippy::unreachable
        )]
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

/// What the receiver contributes: how `self` is captured and bound again.
struct ReceiverInfo {
    self_token: syn::Token![self],
    mutable: bool,
    check_span: Span,
}

impl ReceiverInfo {
    fn of(recv: &Receiver) -> ReceiverInfo {
        ReceiverInfo {
            self_token: recv.self_token,
            mutable: recv.reference.is_none() && recv.mutability.is_some(),
            check_span: recv.span(),
        }
    }
}

/// Collects the names a parameter pattern binds, and removes by-value `mut` from the pattern
/// (the outer function only moves the value; the rebinding inside the closure is the mutable one).
struct CollectBindings {
    found: Vec<Binding>,
    check_span: Span,
}

impl VisitMut for CollectBindings {
    fn visit_pat_ident_mut(&mut self, pat: &mut PatIdent) {
        let mutable = pat.by_ref.is_none() && pat.mutability.is_some();
        if mutable {
            pat.mutability = None;
        }
        self.found.push(Binding {
            ident: pat.ident.clone(),
            mutable,
            check_span: self.check_span,
            named_by_target: false,
        });
        if let Some((_, subpat)) = &mut pat.subpat {
            self.visit_pat_mut(subpat);
        }
    }

    fn visit_pat_or_mut(&mut self, pat: &mut syn::PatOr) {
        // Every alternative binds the same names: collect them once.
        if let Some(first) = pat.cases.first_mut() {
            self.visit_pat_mut(first);
        }
    }
}

/// A binding the target takes by value (`#[in_netns(ns)]`): the target consumes it, so the
/// body cannot also have it.
fn moved_binding(target: &Target) -> Option<Ident> {
    match target.expr() {
        Expr::Path(path) if path.qself.is_none() => path.path.get_ident().cloned(),
        _ => None,
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

/// Every identifier in `tokens`, at any depth.
fn idents_in(tokens: TokenStream) -> Vec<Ident> {
    let mut idents = Vec::new();
    for tree in tokens {
        match tree {
            TokenTree::Ident(ident) => idents.push(ident),
            TokenTree::Group(group) => idents.extend(idents_in(group.stream())),
            _ => {}
        }
    }
    idents
}

#[cfg(test)]
mod tests {
    use super::in_netns;
    use quote::quote;

    fn expand(attr: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
        in_netns(attr, item).to_string()
    }

    #[test]
    fn moves_the_body_into_a_closure_run_by_the_runtime() {
        let out = expand(
            quote!("/run/netns/blue"),
            quote!(
                pub fn f(mut a: u32, (b, c): (u8, u8)) -> Result<u32, E> {
                    a += 1;
                    Ok(a)
                }
            ),
        );
        assert!(
            out.starts_with("pub fn f (a : u32 , (b , c) : (u8 , u8)) -> Result < u32 , E >"),
            "{out}"
        );
        assert!(
            out.contains(":: in_netns :: __private :: resolve (\"/run/netns/blue\")"),
            "{out}"
        );
        assert!(out.contains("let mut a = netns_arg0 . take ()"), "{out}");
        assert!(out.contains("let c = netns_arg2 . take ()"), "{out}");
        assert!(
            out.contains(
                "let netns_arg0 = & mut :: in_netns :: __private :: Sendable :: new (a) ;"
            ),
            "a sync body takes its arguments from slots in the caller's frame: {out}"
        );
        assert!(out.contains("move ||"), "{out}");
        assert!(
            out.contains("{ a += 1 ; Ok (a) }"),
            "the body is kept as its own block: {out}"
        );
    }

    #[test]
    fn uses_the_crate_option_for_every_runtime_path() {
        let out = expand(
            quote!(name = "x", crate = my::in_netns),
            quote!(
                fn f() -> R {
                    g()
                }
            ),
        );
        assert!(
            out.contains("my :: in_netns :: __private :: Name (\"x\")"),
            "{out}"
        );
        let runtime_paths = out.matches(":: in_netns ::").count();
        assert_eq!(
            runtime_paths,
            out.matches("my :: in_netns ::").count(),
            "{out}"
        );
    }

    #[test]
    fn renames_self_and_checks_the_receiver() {
        let out = expand(
            quote!(&self.ns),
            quote!(
                fn f(&self) -> R {
                    Ok(self.x)
                }
            ),
        );
        assert!(
            out.contains("resolve (& self . ns)"),
            "the target keeps its self: {out}"
        );
        assert!(out.contains("Sendable :: new (self)"), "{out}");
        assert!(out.contains("Ok (__self . x)"), "{out}");
    }

    #[test]
    fn a_target_that_moves_a_parameter_consumes_it() {
        let out = expand(
            quote!(ns),
            quote!(
                fn f(ns: NetNs, x: u8) -> R {
                    Ok(x)
                }
            ),
        );
        assert!(!out.contains("Sendable :: new (ns)"), "{out}");
        assert!(out.contains("Sendable :: new (x)"), "{out}");
    }

    #[test]
    fn flags_reach_the_options_and_check_the_target() {
        let out = expand(
            quote!("/x", sysfs),
            quote!(
                fn f() -> R {
                    g()
                }
            ),
        );
        assert!(out.contains("Options :: DEFAULT . sysfs (true) ,"), "{out}");
        assert!(out.contains("resolve_with_options (\"/x\")"), "{out}");
        let out = expand(
            quote!("/x", stack_size = 32 << 20),
            quote!(
                fn f() -> R {
                    g()
                }
            ),
        );
        assert!(
            out.contains("Options :: DEFAULT . stack_size (32 << 20) ,"),
            "{out}"
        );
        assert!(out.contains("resolve_with_options (\"/x\")"), "{out}");
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
}

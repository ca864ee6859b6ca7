//! What the parameters bind: the names that move into the closure and are bound again there,
//! with what each carries along (its `mut`, its attributes, where its checks point).

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Attribute, Expr, FnArg, Ident, PatIdent, Receiver, Signature, Token};

use crate::args::Target;

/// A name the user bound in a parameter, moved into the closure and bound again there.
pub(crate) struct Binding {
    pub(crate) ident: Ident,
    /// The user's `mut`, moved from the parameter to the rebinding (the outer function only
    /// moves the value), so rustc's "does not need to be mutable" still reaches the user.
    pub(crate) mutability: Option<Token![mut]>,
    /// The parameter's `#[cfg]`s and lint attributes, which the generated statements keep.
    pub(crate) attrs: ParamAttrs,
    /// Where a failed check should point: the parameter's type.
    pub(crate) check_span: Span,
    /// The target expression reads this variable, so the body may leave it unused.
    pub(crate) named_by_target: bool,
}

/// The receiver: how `self` is captured and bound again.
pub(crate) struct ReceiverInfo {
    pub(crate) self_token: Token![self],
    /// `mut self`: moved to the rebinding, as for a parameter.
    pub(crate) mutability: Option<Token![mut]>,
    /// Where a failed check should point: the whole receiver.
    pub(crate) check_span: Span,
}

/// A parameter's attributes that the statements generated for it must carry.
#[derive(Clone, Default)]
pub(crate) struct ParamAttrs {
    /// `#[cfg]` and `#[cfg_attr]`: a parameter configured out has no statements either.
    pub(crate) cfgs: Vec<Attribute>,
    /// `#[allow]`, `#[warn]`, `#[deny]`, `#[forbid]`, `#[expect]`: they apply to the rebinding,
    /// where rustc reports an unused or needlessly mutable parameter.
    pub(crate) lints: Vec<Attribute>,
}

impl ParamAttrs {
    fn of(attrs: &[Attribute]) -> ParamAttrs {
        let mut kept = ParamAttrs::default();
        for attr in attrs {
            let path = attr.path();
            if path.is_ident("cfg") || path.is_ident("cfg_attr") {
                kept.cfgs.push(attr.clone());
            } else if ["allow", "warn", "deny", "forbid", "expect"]
                .iter()
                .any(|lint| path.is_ident(lint))
            {
                kept.lints.push(attr.clone());
            }
        }
        kept
    }
}

/// The parameters' bindings and the receiver. By-value `mut` is taken off the signature (and
/// kept in the bindings); a binding the target consumes (`#[in_netns(ns)]`) is left out.
pub(crate) fn collect(
    sig: &mut Signature,
    target: &Target,
) -> (Vec<Binding>, Option<ReceiverInfo>) {
    let read_by_target = variables_in(target.expr());
    let moved_by_target = moved_binding(target);
    let mut bindings = Vec::new();
    let mut receiver = None;
    for input in &mut sig.inputs {
        match input {
            FnArg::Receiver(recv) => receiver = Some(ReceiverInfo::take(recv)),
            FnArg::Typed(param) => {
                let mut collector = CollectBindings {
                    found: Vec::new(),
                    attrs: ParamAttrs::of(&param.attrs),
                    check_span: param.ty.span(),
                };
                collector.visit_pat_mut(&mut param.pat);
                for mut binding in collector.found {
                    binding.named_by_target = read_by_target.contains(&binding.ident);
                    if moved_by_target.as_ref() != Some(&binding.ident) {
                        bindings.push(binding);
                    }
                }
            }
        }
    }
    (bindings, receiver)
}

impl ReceiverInfo {
    /// Describes `recv`, taking a by-value `mut` off it.
    fn take(recv: &mut Receiver) -> ReceiverInfo {
        let check_span = recv.span();
        // `mut self`, `mut self: Box<Self>`; not `&mut self`, whose `mut` is the borrow's.
        let mutability = if recv.reference.is_none() {
            recv.mutability.take()
        } else {
            None
        };
        ReceiverInfo {
            self_token: recv.self_token,
            mutability,
            check_span,
        }
    }
}

/// Collects the names a parameter pattern binds, taking by-value `mut` off the pattern.
struct CollectBindings {
    found: Vec<Binding>,
    attrs: ParamAttrs,
    check_span: Span,
}

impl VisitMut for CollectBindings {
    fn visit_pat_ident_mut(&mut self, pat: &mut PatIdent) {
        let mutability = if pat.by_ref.is_none() {
            pat.mutability.take()
        } else {
            None
        };
        self.found.push(Binding {
            ident: pat.ident.clone(),
            mutability,
            attrs: self.attrs.clone(),
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

/// The variables `expr` reads: single-name paths, and the identifiers in macro arguments (which
/// cannot be told apart). Field and method names are not variables.
fn variables_in(expr: &Expr) -> Vec<Ident> {
    struct Variables(Vec<Ident>);

    // `VisitMut` on a copy: syn's read-only `Visit` is one more feature to compile.
    impl VisitMut for Variables {
        fn visit_expr_path_mut(&mut self, path: &mut syn::ExprPath) {
            if let Some(ident) = path.path.get_ident() {
                self.0.push(ident.clone());
            }
        }

        fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
            idents_in(mac.tokens.clone(), &mut self.0);
        }
    }

    let mut variables = Variables(Vec::new());
    variables.visit_expr_mut(&mut expr.clone());
    variables.0
}

/// Every identifier in `tokens`, at any depth.
fn idents_in(tokens: TokenStream, out: &mut Vec<Ident>) {
    for tree in tokens {
        match tree {
            TokenTree::Ident(ident) => out.push(ident),
            TokenTree::Group(group) => idents_in(group.stream(), out),
            _ => {}
        }
    }
}

/// Every identifier in `node`, at any depth (macro arguments included).
pub(crate) fn all_idents(node: &impl ToTokens) -> Vec<Ident> {
    let mut idents = Vec::new();
    idents_in(node.to_token_stream(), &mut idents);
    idents
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn collected(
        target: TokenStream,
        sig: TokenStream,
    ) -> (Vec<Binding>, Option<ReceiverInfo>, String) {
        let args: crate::args::Args = syn::parse2(target).unwrap();
        let mut sig: Signature = syn::parse2(sig).unwrap();
        let (bindings, receiver) = collect(&mut sig, &args.target);
        (bindings, receiver, sig.to_token_stream().to_string())
    }

    #[test]
    fn mut_moves_from_the_signature_to_the_binding() {
        let (bindings, receiver, sig) = collected(
            quote!(&self.ns),
            quote!(fn f(mut self, mut a: u8, (b, ref mut c): (u8, u8))),
        );
        assert_eq!(sig, "fn f (self , a : u8 , (b , ref mut c) : (u8 , u8))");
        let muts: Vec<_> = bindings
            .iter()
            .map(|b| (b.ident.to_string(), b.mutability.is_some()))
            .collect();
        assert_eq!(
            muts,
            [("a".into(), true), ("b".into(), false), ("c".into(), false)]
        );
        assert!(receiver.unwrap().mutability.is_some());
    }

    #[test]
    fn only_variables_the_target_reads_are_exempt_from_unused_warnings() {
        let (bindings, _, _) = collected(quote!(&self.ns), quote!(fn f(&self, ns: u8, x: u8)));
        assert!(
            bindings.iter().all(|b| !b.named_by_target),
            "`ns` is a field here"
        );
        let (bindings, _, _) = collected(
            quote!(pick(&a, b.ns, format!("{}", c))),
            quote!(fn f(a: u8, b: u8, c: u8, ns: u8)),
        );
        let exempt: Vec<_> = bindings
            .iter()
            .filter(|b| b.named_by_target)
            .map(|b| b.ident.to_string())
            .collect();
        assert_eq!(exempt, ["a", "b", "c"]);
    }

    #[test]
    fn cfg_and_lint_attributes_are_kept_for_the_generated_statements() {
        let (bindings, _, _) = collected(
            quote!("/x"),
            quote!(fn f(#[cfg(debug)] #[allow(unused)] #[doc = "x"] a: u8)),
        );
        let attrs = &bindings[0].attrs;
        assert_eq!((attrs.cfgs.len(), attrs.lints.len()), (1, 1));
    }

    #[test]
    fn a_parameter_the_target_consumes_does_not_move_into_the_body() {
        let (bindings, _, _) = collected(quote!(ns), quote!(fn f(ns: NetNs, x: u8)));
        let names: Vec<_> = bindings.iter().map(|b| b.ident.to_string()).collect();
        assert_eq!(names, ["x"]);
    }
}

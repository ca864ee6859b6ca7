//! Renames `self` in a body that moves into a closure, where `self` cannot be bound again.
//!
//! The new name is an ordinary identifier spanned on each `self` the user wrote, so errors,
//! lints and rust-analyzer point at the user's `self`; it is chosen to appear nowhere in the
//! function, so it can neither capture nor be captured by a name the user wrote.

use proc_macro2::{Group, Ident, TokenStream, TokenTree};
use syn::visit_mut::VisitMut;
use syn::{Block, ExprPath, Item, ItemFn, Macro};

use crate::inputs::all_idents;

/// The name `self` takes inside the closure: `self_`, or `self_1`, `self_2`... when the
/// function already uses that name. No leading underscore, so that rustc's "does not need to
/// be mutable" still fires for `mut self`.
pub(crate) fn fresh_name(func: &ItemFn) -> String {
    let taken: Vec<String> = all_idents(func).iter().map(Ident::to_string).collect();
    let mut name = String::from("self_");
    let mut suffix = 0_u32;
    while taken.contains(&name) {
        suffix += 1;
        name = format!("self_{suffix}");
    }
    name
}

/// Renames every `self` value in `block` to `name`: in expressions, in macro arguments and in
/// `macro_rules!` defined in the body (which may refer to `self`), leaving other nested items,
/// whose `self` is their own, alone.
pub(crate) fn rename_self(block: &mut Block, name: &str) {
    RenameSelf { name }.visit_block_mut(block);
}

struct RenameSelf<'a> {
    name: &'a str,
}

impl VisitMut for RenameSelf<'_> {
    fn visit_expr_path_mut(&mut self, expr: &mut ExprPath) {
        let path = &mut expr.path;
        if expr.qself.is_none() && path.leading_colon.is_none() && path.segments.len() == 1 {
            let ident = &mut path.segments[0].ident;
            if ident == "self" {
                *ident = Ident::new(self.name, ident.span());
            }
        }
    }

    fn visit_item_mut(&mut self, item: &mut Item) {
        if let Item::Macro(item) = item {
            if item.mac.path.is_ident("macro_rules") {
                self.visit_macro_mut(&mut item.mac);
            }
        }
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        mac.tokens = rename_in_tokens(std::mem::take(&mut mac.tokens), self.name);
    }
}

/// Renames `self` tokens that are neither the start of a `self::` path nor a `$self`
/// metavariable.
fn rename_in_tokens(tokens: TokenStream, name: &str) -> TokenStream {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    for index in 0..trees.len() {
        let starts_path = matches!(
            trees.get(index + 1),
            Some(TokenTree::Punct(p)) if p.as_char() == ':'
        );
        let metavariable =
            index > 0 && matches!(&trees[index - 1], TokenTree::Punct(p) if p.as_char() == '$');
        match &mut trees[index] {
            TokenTree::Ident(ident) if ident == "self" && !starts_path && !metavariable => {
                *ident = Ident::new(name, ident.span());
            }
            TokenTree::Group(group) => {
                let mut renamed =
                    Group::new(group.delimiter(), rename_in_tokens(group.stream(), name));
                renamed.set_span(group.span());
                *group = renamed;
            }
            _ => {}
        }
    }
    trees.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn renamed(block: TokenStream) -> String {
        let mut block: Block = syn::parse2(block).unwrap();
        rename_self(&mut block, "self_");
        quote!(#block).to_string()
    }

    #[test]
    fn renames_values_macro_arguments_and_local_macros_only() {
        let out = renamed(quote!({
            let a = self.x + Self::K;
            println!("{}", self.y);
            self::helper();
            macro_rules! port {
                ($self:ident) => {
                    self.port
                };
            }
            fn nested(&self) -> u32 {
                self.z
            }
        }));
        assert!(out.contains("self_ . x"), "{out}");
        assert!(out.contains("Self :: K"), "{out}");
        assert!(out.contains("self_ . y"), "{out}");
        assert!(out.contains("self :: helper"), "{out}");
        assert!(out.contains("$ self : ident"), "{out}");
        assert!(out.contains("self_ . port"), "{out}");
        assert!(
            out.contains("{ self . z }"),
            "nested items keep their self: {out}"
        );
    }

    #[test]
    fn the_new_name_is_one_the_function_does_not_use() {
        let func = |item| syn::parse2::<ItemFn>(item).unwrap();
        assert_eq!(
            fresh_name(&func(quote!(
                fn f(&self) {}
            ))),
            "self_"
        );
        assert_eq!(
            fresh_name(&func(quote!(
                fn f(&self, self_: u8) {
                    let self_1 = 2;
                }
            ))),
            "self_2"
        );
    }
}

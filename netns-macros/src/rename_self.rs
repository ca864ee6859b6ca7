//! Renames `self` in a body that moves into a closure, where `self` cannot be rebound.

use proc_macro2::{Group, Ident, TokenStream, TokenTree};
use syn::visit_mut::VisitMut;
use syn::{Block, ExprPath, Item, Macro};

/// The name `self` takes inside the closure. It keeps the span of each `self` the user wrote.
pub(crate) const RENAMED_SELF: &str = "__self";

/// Renames every `self` value in `block` (also inside macro calls), leaving nested items, whose
/// `self` is their own, alone.
pub(crate) fn rename_self(block: &mut Block) {
    RenameSelf.visit_block_mut(block);
}

struct RenameSelf;

impl VisitMut for RenameSelf {
    fn visit_expr_path_mut(&mut self, expr: &mut ExprPath) {
        let path = &mut expr.path;
        if expr.qself.is_none() && path.leading_colon.is_none() && path.segments.len() == 1 {
            let ident = &mut path.segments[0].ident;
            if ident == "self" {
                *ident = Ident::new(RENAMED_SELF, ident.span());
            }
        }
    }

    fn visit_item_mut(&mut self, _item: &mut Item) {}

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        mac.tokens = rename_in_tokens(std::mem::take(&mut mac.tokens));
    }
}

/// Renames `self` tokens that are not the start of a `self::` path.
fn rename_in_tokens(tokens: TokenStream) -> TokenStream {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    for index in 0..trees.len() {
        let starts_path = matches!(
            trees.get(index + 1),
            Some(TokenTree::Punct(p)) if p.as_char() == ':'
        );
        match &mut trees[index] {
            TokenTree::Ident(ident) if ident == "self" && !starts_path => {
                *ident = Ident::new(RENAMED_SELF, ident.span());
            }
            TokenTree::Group(group) => {
                let mut renamed = Group::new(group.delimiter(), rename_in_tokens(group.stream()));
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
        rename_self(&mut block);
        quote!(#block).to_string()
    }

    #[test]
    fn renames_values_and_macro_arguments_only() {
        let out = renamed(quote!({
            let a = self.x + Self::K;
            println!("{}", self.y);
            self::helper();
            fn nested(&self) -> u32 {
                self.z
            }
        }));
        assert!(out.contains("__self . x"), "{out}");
        assert!(out.contains("Self :: K"), "{out}");
        assert!(out.contains("__self . y"), "{out}");
        assert!(out.contains("self :: helper"), "{out}");
        assert!(
            out.contains("{ self . z }"),
            "nested items keep their self: {out}"
        );
    }
}

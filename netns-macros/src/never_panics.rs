//! Property: the expansion never panics, whatever the attribute arguments and the item. Inputs
//! are random token sequences from a vocabulary of the tokens that matter here, and mutations
//! (deletions, duplications, insertions) of valid uses.

use proc_macro2::TokenStream;
use proptest::prelude::*;

use crate::expand::in_netns;
use crate::options::OPTIONS;

/// Tokens the parser and the rewrite care about, and some they must refuse; [`vocabulary`] adds
/// the options' keywords.
const VOCABULARY: &[&str] = &[
    "fn",
    "f",
    "self",
    "Self",
    "&",
    "&self",
    "mut",
    "async",
    "const",
    "unsafe",
    "pub",
    "crate",
    "name",
    "pid",
    "sysfs",
    "etc",
    "=",
    "==",
    ",",
    ":",
    "::",
    "->",
    ";",
    "Result",
    "<",
    ">",
    "T",
    "'a",
    "impl",
    "Send",
    "where",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "\"/run/netns/x\"",
    "42",
    "ns",
    "x",
    "_",
    "..",
    "#",
    "!",
    "?",
    "return",
    "Ok",
    "struct",
    "S",
    "trait",
    "dyn",
    "extern",
    "\"C\"",
    "...",
    "|",
    "move",
    "loop",
    "let",
    "r#type",
    "'static",
];

/// Attribute arguments that mutations start from, each combined with every item seed.
const ATTR_SEEDS: &[&str] = &[
    "\"/run/netns/x\"",
    "&self.ns, sysfs",
    "name = n, etc, crate = my::in_netns",
    "pid = p",
    "ns",
    "&self.w, etc",
    "p, sysfs, etc",
    "ns, fresh_thread, stack_size = 1 << 20",
];

/// Items that mutations start from: valid functions of every shape, and two the macro refuses.
const ITEM_SEEDS: &[&str] = &[
    "fn f(a: u32) -> Result<u32, E> { Ok(a) }",
    "pub fn g(&self, mut b: (u8, u8)) -> io::Result<()> { self.h(b) }",
    "fn h<T: Send>(n: &str, t: T) -> R where T: Clone { Ok(t) }",
    "unsafe fn k(p: u32, (x, y): (u8, u8), impl_arg: impl Fn()) -> R { return Ok(()); }",
    "fn m(mut self: Box<Self>, ns: NetNs) -> Result<impl Debug, E> { Ok(self) }",
    "fn a(self, x: &str) -> R { self.go(x) }",
    "fn b(&mut self, _: u8) -> R { println!(\"{}\", self.c); self::helper(); Ok(()) }",
    "fn c(p: &Path, ref r: u8, S { a, b: mut z }: S, [q, ..]: [u8; 2]) -> R { Ok(()) }",
    "async fn d(ns: NetNs) -> R { Ok(()) }",
    "const fn e() -> R { Ok(()) }",
];

fn lex(text: &str) -> Option<TokenStream> {
    text.parse().ok()
}

/// [`VOCABULARY`] and every option's keyword, so that a new row of the table is fuzzed too.
fn vocabulary() -> Vec<&'static str> {
    let mut words = VOCABULARY.to_vec();
    for spec in OPTIONS {
        if !words.contains(&spec.keyword) {
            words.push(spec.keyword);
        }
    }
    words
}

/// A sequence of vocabulary tokens, joined by spaces.
fn vocabulary_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vocabulary()), 0..max).prop_map(|t| t.join(" "))
}

/// What a mutation does at a position of a seed's words.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Duplicate(usize),
    Insert(usize, &'static str),
    Swap(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), prop::sample::select(vocabulary())).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Edit::Swap(i, j)),
    ]
}

/// `tokens` flattened into words: each ident, literal, operator (`->`, `::` kept whole) and
/// delimiter on its own.
fn words(tokens: TokenStream, out: &mut Vec<String>) {
    use proc_macro2::{Delimiter, Spacing, TokenTree};
    let mut operator = String::new();
    for tree in tokens {
        match tree {
            TokenTree::Punct(punct) => {
                operator.push(punct.as_char());
                if punct.spacing() == Spacing::Alone {
                    out.push(std::mem::take(&mut operator));
                }
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                out.push(open.to_owned());
                words(group.stream(), out);
                out.push(close.to_owned());
            }
            other => out.push(other.to_string()),
        }
    }
}

/// `text` split into token words, edited, and joined again.
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut owned = Vec::new();
    words(lex(text).expect("seeds lex"), &mut owned);
    let mut words: Vec<&str> = owned.iter().map(String::as_str).collect();
    for edit in edits {
        let len = words.len().max(1);
        match *edit {
            Edit::Delete(i) if !words.is_empty() => {
                words.remove(i % len);
            }
            Edit::Duplicate(i) if !words.is_empty() => words.insert(i % len, words[i % len]),
            Edit::Insert(i, token) => words.insert(i % (words.len() + 1), token),
            Edit::Swap(i, j) if !words.is_empty() => words.swap(i % len, j % len),
            _ => {}
        }
    }
    words.join(" ")
}

/// Expands, and checks what holds for every input: at most one error comes out (one mistake,
/// one message), and when the item parses as a function, its name survives (the item is always
/// emitted).
fn expands_without_panicking(attr: &str, item: &str) {
    let (Some(attr_tokens), Some(item_tokens)) = (lex(attr), lex(item)) else {
        return; // Not even tokens: rustc would never call the macro with it.
    };
    let out = in_netns(attr_tokens, item_tokens.clone()).to_string();
    assert!(
        out.matches("compile_error").count() <= 1,
        "{attr} / {item}: more than one error: {out}"
    );
    if let Ok(func) = syn::parse2::<syn::ItemFn>(item_tokens) {
        let name = func.sig.ident.to_string();
        assert!(out.contains(&name), "{attr} / {item}: lost `{name}`");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_tokens_never_panic(attr in vocabulary_text(8), item in vocabulary_text(24)) {
        expands_without_panicking(&attr, &item);
    }

    #[test]
    fn mutated_valid_uses_never_panic(
        attr in prop::sample::select(ATTR_SEEDS),
        item in prop::sample::select(ITEM_SEEDS),
        attr_edits in prop::collection::vec(edit(), 0..4),
        item_edits in prop::collection::vec(edit(), 0..6),
    ) {
        expands_without_panicking(&mutate(attr, &attr_edits), &mutate(item, &item_edits));
    }
}

#[test]
fn seeds_expand_cleanly_except_the_refused_ones() {
    for attr in ATTR_SEEDS {
        for item in ITEM_SEEDS {
            let out = in_netns(lex(attr).unwrap(), lex(item).unwrap()).to_string();
            let refused = item.starts_with("const")
                || item.starts_with("async") && !crate::expand::ASYNC_SUPPORTED;
            assert_eq!(
                out.contains("compile_error"),
                refused,
                "{attr} / {item}: {out}"
            );
        }
    }
}

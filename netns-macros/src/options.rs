//! The per-call options of `#[in_netns(TARGET, OPTION, ...)]`, as one table: the parser, its
//! error messages, the check that the arguments do not start with an option, and the expansion
//! all read [`OPTIONS`], so that adding an option is adding a row (and documenting it in
//! `in-netns`, which a test below holds to the table).
//!
//! `crate = PATH` is not a row: it does not configure the call but says where the runtime is,
//! and every path of the expansion depends on it.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::buffer::Cursor;
use syn::parse::ParseStream;
use syn::{Expr, Ident};

/// How an option is written.
pub(crate) enum Kind {
    /// The keyword alone; its builder method is given `true`.
    Flag,
    /// `KEYWORD = EXPR`; its builder method is given the expression.
    Value {
        /// What stands for the expression in messages: `BYTES` in `stack_size = BYTES`.
        placeholder: &'static str,
    },
}

/// One per-call option: a row of [`OPTIONS`].
pub(crate) struct OptionSpec {
    /// What the user writes, an identifier.
    pub(crate) keyword: &'static str,
    /// A flag or `= EXPR`.
    pub(crate) kind: Kind,
    /// The `Options` builder method it becomes: `Options::DEFAULT.METHOD(true)` for a flag,
    /// `.METHOD(EXPR)` for a value.
    pub(crate) method: &'static str,
    /// What it does: the first words of its entry under "Options" in `in-netns`'s docs of the
    /// macro, which go on with the details.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "read by the test that holds `in-netns`'s docs to the table"
        )
    )]
    pub(crate) doc: &'static str,
}

/// Every per-call option, in the order messages list them and the expansion calls their
/// builder methods (so reordering rows changes messages that `tests/ui` pins).
///
/// Each sets a field of the `Options` a call runs with, which a worker or a runtime fixes when it
/// is made: so with any of them the expansion makes the target prove `AcceptsOptions` (in
/// `in-netns`'s `src/private.rs`, whose message names them all, as a test below checks).
pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        keyword: "sysfs",
        kind: Kind::Flag,
        method: "sysfs",
        doc: "the body sees a `/sys` of the namespace (`/sys/class/net` lists its links)",
    },
    OptionSpec {
        keyword: "etc",
        kind: Kind::Flag,
        method: "etc",
        doc: "the files of `/etc/netns/NAME/` are bound over `/etc/` for the body, as \
              `ip netns exec` does",
    },
    OptionSpec {
        keyword: "fresh_thread",
        kind: Kind::Flag,
        method: "fresh_thread",
        doc: "a thread of its own for each call, with fresh thread-locals, instead of a warm \
              thread",
    },
    OptionSpec {
        keyword: "stack_size",
        kind: Kind::Value {
            placeholder: "BYTES",
        },
        method: "stack_size",
        doc: "the stack of the body's thread",
    },
];

/// How messages show `crate = PATH`, after the rows.
const CRATE_USAGE: &str = "`crate = path`";

impl OptionSpec {
    /// The option as messages show it: `` `sysfs` ``, `` `stack_size = BYTES` ``.
    fn usage(&self) -> String {
        match self.kind {
            Kind::Flag => format!("`{}`", self.keyword),
            Kind::Value { placeholder } => format!("`{} = {placeholder}`", self.keyword),
        }
    }

    /// The cursor after this option's keyword, if `cursor` is at it. A raw identifier
    /// (`r#sysfs`) is not the keyword, as with `syn::custom_keyword!`.
    fn after_keyword<'a>(&self, cursor: Cursor<'a>) -> Option<Cursor<'a>> {
        let (ident, rest) = cursor.ident()?;
        (ident == self.keyword).then_some(rest)
    }

    /// Whether `input` starts with this option as it is written: a flag followed by `,` or the
    /// end, a value's keyword followed by `=`. Anything else (`sysfs.x`, `stack_size + 1`) is
    /// an expression that happens to start with the keyword: a target.
    fn starts(&self, input: ParseStream<'_>) -> bool {
        let Some(rest) = self.after_keyword(input.cursor()) else {
            return false;
        };
        match self.kind {
            Kind::Flag => rest.eof() || is_punct(rest, ','),
            Kind::Value { .. } => is_punct(rest, '='),
        }
    }
}

/// Whether `cursor` is at `ch` (as `syn`'s `peek` of a one-character token: `=` also matches the
/// start of `==`).
fn is_punct(cursor: Cursor<'_>, ch: char) -> bool {
    cursor
        .punct()
        .is_some_and(|(punct, _)| punct.as_char() == ch)
}

/// The index in [`OPTIONS`] of the option whose keyword is next in `input`.
pub(crate) fn peek(input: ParseStream<'_>) -> Option<usize> {
    OPTIONS
        .iter()
        .position(|spec| spec.after_keyword(input.cursor()).is_some())
}

/// Whether `input` starts with an option rather than a target (`crate = PATH` aside).
pub(crate) fn starts_with_option(input: ParseStream<'_>) -> bool {
    OPTIONS.iter().any(|spec| spec.starts(input))
}

/// What follows an unknown option's name: every option as it is written.
pub(crate) fn expected_options() -> String {
    let usages: Vec<String> = OPTIONS.iter().map(OptionSpec::usage).collect();
    format!("expected one of: {}, {CRATE_USAGE}", usages.join(", "))
}

/// The message for an argument that starts with no name (a literal, a punctuation, a keyword of
/// Rust): every keyword an argument can start with, worded as `syn`'s `Lookahead1::error`
/// words it.
pub(crate) fn expected_keywords() -> String {
    let keywords: Vec<String> = OPTIONS
        .iter()
        .map(|spec| spec.keyword)
        .chain(["crate"])
        .map(|keyword| format!("`{keyword}`"))
        .collect();
    match keywords.as_slice() {
        [only] => format!("expected {only}"),
        [first, second] => format!("expected {first} or {second}"),
        all => format!("expected one of: {}", all.join(", ")),
    }
}

/// One option as written.
pub(crate) struct Given {
    /// Its row.
    pub(crate) spec: &'static OptionSpec,
    /// Where its keyword is, so that errors about it point there.
    pub(crate) span: Span,
    /// The expression after `=`; `None` for a flag.
    pub(crate) value: Option<Expr>,
}

impl Given {
    /// Its builder call on `Options`: `.sysfs(true)`, `.stack_size(EXPR)`.
    pub(crate) fn builder_call(&self) -> TokenStream {
        let method = Ident::new(self.spec.method, Span::call_site());
        match &self.value {
            None => quote!(.#method(true)),
            Some(value) => quote!(.#method(#value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;

    /// The table is a constant, so its mistakes would otherwise show only as a panic in
    /// `Ident::new` or as an option that can never be written.
    #[test]
    fn every_row_can_be_written_and_expanded() {
        for (index, spec) in OPTIONS.iter().enumerate() {
            for word in [spec.keyword, spec.method] {
                let ident: Ident = syn::parse_str(word).unwrap_or_else(|_| {
                    panic!("`{word}` is not an identifier (a keyword of Rust cannot be one)")
                });
                assert_eq!(ident, word);
            }
            assert!(
                !["crate", "name", "pid"].contains(&spec.keyword),
                "`{}` already means something else in `#[in_netns]`",
                spec.keyword
            );
            assert!(
                OPTIONS[..index].iter().all(|o| o.keyword != spec.keyword),
                "`{}` is in the table twice",
                spec.keyword
            );
        }
    }

    #[test]
    fn messages_list_every_option() {
        assert_eq!(
            expected_options(),
            "expected one of: `sysfs`, `etc`, `fresh_thread`, `stack_size = BYTES`, `crate = path`"
        );
        assert_eq!(
            expected_keywords(),
            "expected one of: `sysfs`, `etc`, `fresh_thread`, `stack_size`, `crate`"
        );
    }

    /// The `(usage, text)` of each item of the list under `heading` in the doc comments of
    /// `source`, each item's continuation lines joined to it.
    fn doc_list(source: &str, heading: &str) -> Vec<(String, String)> {
        let lines = source
            .lines()
            .map(str::trim_start)
            .skip_while(|line| *line != heading)
            .skip(1)
            .skip_while(|line| *line == "///");
        let mut items: Vec<String> = Vec::new();
        for line in lines {
            if let Some(item) = line.strip_prefix("/// - ") {
                items.push(item.to_owned());
            } else if let (Some(more), Some(item)) = (line.strip_prefix("///   "), items.last_mut())
            {
                item.push(' ');
                item.push_str(more);
            } else {
                break;
            }
        }
        items
            .iter()
            .map(|item| {
                let (usage, text) = item.split_once(": ").unwrap_or((item, ""));
                (usage.to_owned(), text.to_owned())
            })
            .collect()
    }

    /// `in-netns` documents the options in prose and names them in a diagnostic's string
    /// literal, which cannot be generated from the table; this holds both to it.
    #[test]
    fn in_netns_documents_and_names_every_option() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let lib = fs::read_to_string(root.join("src/lib.rs")).expect("in-netns's src/lib.rs");
        let documented = doc_list(&lib, "/// # Options");
        let usages: Vec<String> = documented.iter().map(|(usage, _)| usage.clone()).collect();
        let mut expected: Vec<String> = OPTIONS.iter().map(OptionSpec::usage).collect();
        expected.push(CRATE_USAGE.to_owned());
        assert_eq!(usages, expected, "the options `in-netns` documents");
        for (spec, (usage, text)) in OPTIONS.iter().zip(&documented) {
            assert!(
                text.starts_with(spec.doc),
                "{usage} is documented as\n  {text}\nwhich should start with the table's\n  {}",
                spec.doc
            );
        }

        let private =
            fs::read_to_string(root.join("src/private.rs")).expect("in-netns's src/private.rs");
        let keywords: Vec<String> = OPTIONS
            .iter()
            .map(|spec| format!("`{}`", spec.keyword))
            .collect();
        let (last, rest) = keywords.split_last().expect("options");
        let named = if rest.is_empty() {
            last.clone()
        } else {
            format!("{} and {last}", rest.join(", "))
        };
        let message = format!("message = \"{named} cannot be set per call on `{{Self}}`\"");
        assert!(
            private.contains(&message),
            "`AcceptsOptions`'s diagnostic in src/private.rs should read\n  {message}"
        );
    }
}

//! What `#[in_netns(...)]` accepts: a target, then options.
//!
//! ```text
//! #[in_netns(TARGET [, ARG]... [,])]
//! TARGET := EXPR | name = EXPR | pid = EXPR
//! ARG    := OPTION | crate = PATH      each at most once, in any order
//! OPTION := KEYWORD | KEYWORD = EXPR   a row of `options::OPTIONS` (`sysfs`, `stack_size = EXPR`)
//! ```

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Token};

use crate::options::{self, Given, Kind, OPTIONS};

/// The target forms' keywords; the options' are in [`OPTIONS`].
mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(pid);
}

const MISSING_TARGET: &str = "`#[in_netns]` needs a namespace to run in: write \
     #[in_netns(\"/run/netns/NAME\")], #[in_netns(name = \"NAME\")], #[in_netns(pid = PID)] \
     or #[in_netns(&handle)]";

/// The namespace the body runs in.
pub(crate) enum Target {
    /// Any expression: a path (`&str`, `String`, `&Path`, `PathBuf`), `NetNs` or `&NetNs`, or a
    /// worker; its type decides.
    Expr(Expr),
    /// `name = EXPR`: a name under `/run/netns`.
    Name(Expr),
    /// `pid = EXPR`: a process's namespace.
    Pid(Expr),
}

impl Target {
    /// The expression the user wrote.
    pub(crate) fn expr(&self) -> &Expr {
        match self {
            Target::Expr(expr) | Target::Name(expr) | Target::Pid(expr) => expr,
        }
    }
}

/// The parsed attribute arguments.
pub(crate) struct Args {
    pub(crate) target: Target,
    /// The options given, each at its row's index in [`OPTIONS`]: read in table order,
    /// whatever order they were written in.
    given: Vec<Option<Given>>,
    /// `crate = path`, for code that re-exports `in-netns`.
    pub(crate) krate: Option<syn::Path>,
}

impl Args {
    /// The options given, in table order.
    pub(crate) fn options(&self) -> impl Iterator<Item = &Given> {
        self.given.iter().flatten()
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Args> {
        let target = parse_target(input)?;
        let mut args = Args {
            target,
            given: OPTIONS.iter().map(|_| None).collect(),
            krate: None,
        };
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            args.parse_option(input)?;
        }
        Ok(args)
    }
}

impl Args {
    fn parse_option(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        if let Some(index) = options::peek(input) {
            self.parse_row(index, input)
        } else if input.peek(Token![crate]) {
            let keyword: Token![crate] = input.parse()?;
            if self.krate.is_some() {
                return Err(syn::Error::new(keyword.span, "duplicate option `crate`"));
            }
            input.parse::<Token![=]>()?;
            self.krate = Some(input.call(syn::Path::parse_mod_style)?);
            Ok(())
        } else if input.peek(kw::name) || input.peek(kw::pid) {
            Err(input.error(
                "the target is already given: `#[in_netns]` takes exactly one target, first",
            ))
        } else if input.peek(syn::Ident) {
            let ident: syn::Ident = input.parse()?;
            Err(syn::Error::new(
                ident.span(),
                format!("unknown option `{ident}`; {}", options::expected_options()),
            ))
        } else {
            // Worded and placed as `syn`'s lookahead words and places it, as when each keyword
            // had a type of its own to peek.
            Err(input.error(options::expected_keywords()))
        }
    }

    /// Parses the option of row `index` of [`OPTIONS`], whose keyword is next.
    fn parse_row(&mut self, index: usize, input: ParseStream<'_>) -> syn::Result<()> {
        let spec = &OPTIONS[index];
        let span = input.call(syn::Ident::parse_any)?.span();
        let name = spec.keyword;
        let duplicate = || syn::Error::new(span, format!("duplicate option `{name}`"));
        let value = match spec.kind {
            Kind::Flag => {
                if input.peek(Token![=]) {
                    return Err(input.error(format!(
                        "`{name}` is a flag: write `{name}` alone, without a value"
                    )));
                }
                if self.given[index].is_some() {
                    return Err(duplicate());
                }
                None
            }
            Kind::Value { .. } => {
                if self.given[index].is_some() {
                    return Err(duplicate());
                }
                input.parse::<Token![=]>()?;
                Some(input.parse()?)
            }
        };
        self.given[index] = Some(Given { spec, span, value });
        Ok(())
    }
}

fn parse_target(input: ParseStream<'_>) -> syn::Result<Target> {
    let starts_with_option =
        options::starts_with_option(input) || input.peek(Token![crate]) && input.peek2(Token![=]);
    if input.is_empty() {
        return Err(syn::Error::new(Span::call_site(), MISSING_TARGET));
    }
    if starts_with_option {
        return Err(syn::Error::new(input.span(), MISSING_TARGET));
    }
    if input.peek(kw::name) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
        input.parse::<kw::name>()?;
        input.parse::<Token![=]>()?;
        return Ok(Target::Name(input.parse()?));
    }
    if input.peek(kw::pid) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
        input.parse::<kw::pid>()?;
        input.parse::<Token![=]>()?;
        return Ok(Target::Pid(input.parse()?));
    }
    let expr: Expr = input.parse()?;
    if let Expr::Assign(assign) = &expr {
        return Err(syn::Error::new(
            assign.left.span(),
            "unknown target kind; expected `name = EXPR`, `pid = EXPR` or an expression (a path or a handle)",
        ));
    }
    Ok(Target::Expr(expr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Args> {
        syn::parse2(tokens)
    }

    /// The option `keyword` as parsed, if it was given.
    fn given<'a>(args: &'a Args, keyword: &str) -> Option<&'a Given> {
        args.options().find(|given| given.spec.keyword == keyword)
    }

    fn error(tokens: proc_macro2::TokenStream) -> String {
        match parse(tokens) {
            Ok(_) => panic!("expected an error"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn parses_every_target_form() {
        assert!(matches!(
            parse(quote!("/run/netns/a")).unwrap().target,
            Target::Expr(_)
        ));
        assert!(matches!(
            parse(quote!(&self.ns)).unwrap().target,
            Target::Expr(_)
        ));
        assert!(matches!(
            parse(quote!(name = "a")).unwrap().target,
            Target::Name(_)
        ));
        assert!(matches!(
            parse(quote!(pid = child.id())).unwrap().target,
            Target::Pid(_)
        ));
        // `name == x` is a comparison, not the name form.
        assert!(matches!(
            parse(quote!(name == x)).unwrap().target,
            Target::Expr(_)
        ));
    }

    #[test]
    fn parses_options_in_any_order() {
        let args = parse(quote!(
            &ns,
            etc,
            crate = ::my::in_netns,
            stack_size = 16 << 20,
            sysfs,
        ))
        .unwrap();
        assert!(given(&args, "sysfs").is_some() && given(&args, "etc").is_some());
        assert!(given(&args, "fresh_thread").is_none());
        let bytes = given(&args, "stack_size").unwrap().value.as_ref().unwrap();
        assert_eq!(quote!(#bytes).to_string(), "16 << 20");
        // Table order, not the order written: the expansion's builder calls are stable.
        let keywords: Vec<&str> = args.options().map(|given| given.spec.keyword).collect();
        assert_eq!(keywords, ["sysfs", "etc", "stack_size"]);
        let krate = args.krate.unwrap();
        assert_eq!(quote!(#krate).to_string(), ":: my :: in_netns");
    }

    #[test]
    fn refuses_bad_arguments_with_a_message_each() {
        assert!(error(quote!()).contains("needs a namespace to run in"));
        assert!(error(quote!(sysfs)).contains("needs a namespace to run in"));
        assert!(error(quote!(crate = netns)).contains("needs a namespace to run in"));
        assert!(error(quote!(stack_size = 1)).contains("needs a namespace to run in"));
        assert!(
            error(quote!("/x", stack_size = 1, stack_size = 2))
                .contains("duplicate option `stack_size`")
        );
        assert!(error(quote!("/x", bogus)).contains("unknown option `bogus`"));
        assert!(error(quote!("/x", sysfs, sysfs)).contains("duplicate option `sysfs`"));
        assert!(error(quote!("/x", crate = a, crate = b)).contains("duplicate option `crate`"));
        assert!(error(quote!("/x", name = "y")).contains("exactly one target"));
        assert!(error(quote!(netns = "y")).contains("unknown target kind"));
        assert!(error(quote!("/x", etc = true)).contains("is a flag"));
        assert_eq!(
            error(quote!("/x", 42)),
            "expected one of: `sysfs`, `etc`, `fresh_thread`, `stack_size`, `crate`"
        );
    }
}

//! What `#[in_netns(...)]` accepts: a target, then options.
//!
//! ```text
//! #[in_netns(TARGET [, sysfs] [, etc] [, fresh_thread] [, stack_size = EXPR] [, crate = PATH])]
//! TARGET := EXPR | name = EXPR | pid = EXPR
//! ```

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Token};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(pid);
    syn::custom_keyword!(sysfs);
    syn::custom_keyword!(etc);
    syn::custom_keyword!(fresh_thread);
    syn::custom_keyword!(stack_size);
}

const MISSING_TARGET: &str = "`#[in_netns]` needs a namespace to run in: write \
     #[in_netns(\"/run/netns/NAME\")], #[in_netns(name = \"NAME\")], #[in_netns(pid = PID)] \
     or #[in_netns(&handle)]";

const EXPECTED_OPTIONS: &str =
    "expected one of: `sysfs`, `etc`, `fresh_thread`, `stack_size = BYTES`, `crate = path`";

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

/// A flag option, remembered with where it was written so errors can point at it.
#[derive(Default)]
pub(crate) struct Flag(Option<Span>);

impl Flag {
    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }

    pub(crate) fn span(&self) -> Option<Span> {
        self.0
    }
}

/// The parsed attribute arguments.
pub(crate) struct Args {
    pub(crate) target: Target,
    pub(crate) sysfs: Flag,
    pub(crate) etc: Flag,
    /// `fresh_thread`: a thread of its own for each call, instead of a warm one.
    pub(crate) fresh_thread: Flag,
    /// `stack_size = EXPR`: the body's thread's stack in bytes, with where the keyword was.
    pub(crate) stack_size: Option<(Span, Expr)>,
    /// `crate = path`, for code that re-exports `in-netns`.
    pub(crate) krate: Option<syn::Path>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Args> {
        let target = parse_target(input)?;
        let mut args = Args {
            target,
            sysfs: Flag::default(),
            etc: Flag::default(),
            fresh_thread: Flag::default(),
            stack_size: None,
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
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::sysfs) {
            let keyword: kw::sysfs = input.parse()?;
            set_flag(&mut self.sysfs, keyword.span, "sysfs", input)
        } else if lookahead.peek(kw::etc) {
            let keyword: kw::etc = input.parse()?;
            set_flag(&mut self.etc, keyword.span, "etc", input)
        } else if lookahead.peek(kw::fresh_thread) {
            let keyword: kw::fresh_thread = input.parse()?;
            set_flag(&mut self.fresh_thread, keyword.span, "fresh_thread", input)
        } else if lookahead.peek(kw::stack_size) {
            let keyword: kw::stack_size = input.parse()?;
            if self.stack_size.is_some() {
                return Err(syn::Error::new(
                    keyword.span,
                    "duplicate option `stack_size`",
                ));
            }
            input.parse::<Token![=]>()?;
            self.stack_size = Some((keyword.span, input.parse()?));
            Ok(())
        } else if lookahead.peek(Token![crate]) {
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
                format!("unknown option `{ident}`; {EXPECTED_OPTIONS}"),
            ))
        } else {
            Err(lookahead.error())
        }
    }
}

fn set_flag(flag: &mut Flag, span: Span, name: &str, input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(Token![=]) {
        return Err(input.error(format!(
            "`{name}` is a flag: write `{name}` alone, without a value"
        )));
    }
    if flag.is_set() {
        return Err(syn::Error::new(span, format!("duplicate option `{name}`")));
    }
    flag.0 = Some(span);
    Ok(())
}

fn parse_target(input: ParseStream<'_>) -> syn::Result<Target> {
    let starts_with_option =
        (input.peek(kw::sysfs) || input.peek(kw::etc) || input.peek(kw::fresh_thread))
            && (input.peek2(Token![,]) || input.peek2(syn::parse::End))
            || (input.peek(Token![crate]) || input.peek(kw::stack_size)) && input.peek2(Token![=]);
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
        assert!(args.sysfs.is_set() && args.etc.is_set());
        let (_, bytes) = args.stack_size.unwrap();
        assert_eq!(quote!(#bytes).to_string(), "16 << 20");
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
    }
}

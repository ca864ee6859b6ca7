//! The expansion under strict lints: `cargo clippy --all-targets -- -D warnings` (as CI runs it)
//! compiles these shapes with all of clippy's default and pedantic lints and the restriction
//! lints that look at generated code (`shadow_unrelated`, `implicit_return`) denied, and
//! `cargo test` compiles them under `#![deny(warnings)]` and runs them.
#![deny(warnings)]

mod common;

#[deny(clippy::all, clippy::pedantic)]
#[deny(clippy::shadow_unrelated, clippy::implicit_return)]
#[allow(
    clippy::needless_return,
    reason = "`implicit_return` wants every return explicit"
)]
mod shapes {
    use std::io;

    use in_netns::{NetNs, in_netns};

    pub struct Pod {
        ns: NetNs,
        port: u64,
    }

    impl Pod {
        #[rustfmt::skip] // the one-line body is the case under test
    #[in_netns(&self.ns)]
        fn one_line(&self) -> io::Result<u64> { return Ok(self.port); }

        #[in_netns(&self.ns)]
        fn dunder(&self, __self: u64) -> io::Result<u64> {
            return Ok(__self + self.port);
        }

        #[in_netns(&self.ns)]
        fn local_macro(&self) -> io::Result<u64> {
            macro_rules! port {
                () => {
                    self.port
                };
            }
            return Ok(port!());
        }

        #[expect(clippy::needless_arbitrary_self_type, reason = "the case under test")]
        #[in_netns(&self.ns)]
        fn typed(self: &Self, offset: u64) -> io::Result<u64> {
            return Ok(self.port + offset);
        }
    }

    #[in_netns(ns)]
    fn configured(ns: &NetNs, #[cfg(any())] debug: bool, mut count: u8) -> in_netns::Result<u8> {
        #[cfg(any())]
        let _ = debug;
        count += 1;
        return Ok(count);
    }

    #[cfg(feature = "tokio")]
    #[in_netns(ns)]
    async fn static_borrow(ns: std::sync::Arc<NetNs>, label: &'static str) -> io::Result<usize> {
        return Ok(label.len());
    }

    #[in_netns::test]
    fn strictly_linted_shapes_run_inside() {
        crate::common::require_privilege();
        let pod = Pod {
            ns: NetNs::current().unwrap(),
            port: 1,
        };
        assert_eq!(pod.one_line().unwrap(), 1);
        assert_eq!(pod.dunder(2).unwrap(), 3);
        assert_eq!(pod.local_macro().unwrap(), 1);
        assert_eq!(pod.typed(1).unwrap(), 2);
        assert_eq!(configured(&pod.ns, 1).unwrap(), 2);
        #[cfg(feature = "tokio")]
        {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let ns = std::sync::Arc::new(pod.ns);
            assert_eq!(runtime.block_on(static_borrow(ns, "abc")).unwrap(), 3);
        }
    }
}

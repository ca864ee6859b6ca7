//! Async forms that compile (with the "tokio" feature, which `tests/ui.rs` only runs this
//! directory with): owned arguments, `Arc` targets and receivers, `?` and `return` in the body,
//! and `impl Trait` in the result.
#![deny(warnings)]

mod with_tokio {
    use std::sync::Arc;
    use in_netns::{NetNs, Worker};

    pub struct Pod {
        pub ns: NetNs,
    }

    impl Pod {
        #[in_netns::in_netns(&self.ns)]
        pub async fn probe(self: Arc<Self>, port: u16) -> std::io::Result<u16> {
            if port == 0 {
                return Ok(1);
            }
            let parsed: u16 = "7".parse().map_err(std::io::Error::other)?;
            Ok(port + parsed)
        }
    }

    #[in_netns::in_netns(worker)]
    pub async fn on_worker(worker: Arc<Worker>, name: String) -> in_netns::Result<impl std::fmt::Debug> {
        Ok(name)
    }

    #[in_netns::in_netns(ns)]
    pub async fn by_handle(ns: Arc<NetNs>) -> in_netns::Result<()> {
        Ok(())
    }

    /// Parameters only the target reads draw no "unused variable".
    #[in_netns::in_netns(&ns)]
    pub async fn read_only_by_target(ns: Arc<NetNs>) -> in_netns::Result<()> {
        Ok(())
    }

    #[in_netns::in_netns(ns.clone())]
    pub async fn cloned_by_target(ns: Arc<NetNs>) -> in_netns::Result<()> {
        Ok(())
    }

    pub fn futures_are_send(pod: Arc<Pod>, worker: Arc<Worker>, ns: Arc<NetNs>) {
        fn assert_send<T: Send>(_: T) {}
        assert_send(pod.probe(1));
        assert_send(on_worker(worker, String::new()));
        assert_send(by_handle(ns));
    }
}

fn main() {}

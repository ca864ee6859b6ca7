//! `#[async_trait]` on the impl expands first and hands `#[in_netns]` a function returning a
//! boxed future (written out here as `async-trait` 0.1 writes it): one error, at the method's
//! name, saying what to do instead.
use std::future::Future;
use std::pin::Pin;

pub struct Pod {
    ns: std::sync::Arc<in_netns::NetNs>,
}

impl Pod {
    #[in_netns::in_netns(self.ns.clone())]
    fn probe<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = in_netns::Result<()>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { Ok(()) })
    }
}

fn main() {}

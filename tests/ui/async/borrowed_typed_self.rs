//! `self: &Self` in an async fn is refused like `&self`: one error, at the receiver.
pub struct Pod {
    ns: std::sync::Arc<in_netns::NetNs>,
}

impl Pod {
    #[allow(clippy::needless_arbitrary_self_type)]
    #[in_netns::in_netns(self.ns.clone())]
    pub async fn probe(self: &Self) -> in_netns::Result<()> {
        Ok(())
    }
}

fn main() {}

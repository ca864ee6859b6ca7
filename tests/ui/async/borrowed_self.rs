struct Pod {
    ns: in_netns::NetNs,
}

impl Pod {
    #[in_netns::in_netns(&self.ns)]
    async fn probe(&self) -> in_netns::Result<()> {
        Ok(())
    }
}

fn main() {}

struct Pod {
    ns: netns::NetNs,
}

impl Pod {
    #[netns::in_netns(&self.ns)]
    async fn probe(&self) -> netns::Result<()> {
        Ok(())
    }
}

fn main() {}

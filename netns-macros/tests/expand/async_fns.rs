// Async functions (feature `tokio`): arguments are wrapped with `new_owned` (`Send + 'static`,
// checked at each), and an unreachable `return` tells `?` the body's type.

#[in_netns(ns)]
async fn probe(ns: Arc<NetNs>, label: &'static str) -> io::Result<impl Debug> {
    let n: u16 = label.parse().map_err(io::Error::other)?;
    Ok(n)
}

impl Pod {
    #[in_netns(&self.ns)]
    async fn on_arc(self: Arc<Self>) -> io::Result<u16> { Ok(self.port) }
}

//! A generic argument of an async fn must be `'static`: the error names the bound to add.
use std::sync::Arc;

#[in_netns::in_netns(ns)]
async fn keep<T: Send>(ns: Arc<in_netns::NetNs>, value: T) -> in_netns::Result<()> {
    drop(value);
    Ok(())
}

fn main() {}

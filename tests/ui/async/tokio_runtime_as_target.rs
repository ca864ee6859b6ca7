//! A plain tokio runtime runs its tasks wherever its threads are: not a target.
use std::sync::Arc;

#[in_netns::in_netns(runtime)]
async fn inside(runtime: Arc<tokio::runtime::Runtime>) -> in_netns::Result<()> {
    Ok(())
}

fn main() {}

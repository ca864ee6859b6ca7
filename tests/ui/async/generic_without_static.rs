//! A generic argument of an async fn must be `'static`: the error, at the argument, names the
//! bound to add. (rustc reports it twice there: for the argument's check, and for the body's
//! future awaited with it.)
use std::sync::Arc;

#[in_netns::in_netns(ns)]
async fn keep<T: Send>(ns: Arc<in_netns::NetNs>, value: T) -> in_netns::Result<()> {
    drop(value);
    Ok(())
}

fn main() {}

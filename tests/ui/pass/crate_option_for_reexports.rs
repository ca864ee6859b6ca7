//! `crate = path` lets code that re-exports `in-netns` under another name use the macro.
mod vendored {
    pub use in_netns as inner;
}

use vendored::inner::in_netns;

#[in_netns("/proc/self/ns/net", crate = vendored::inner)]
fn inside() -> vendored::inner::Result<u32> {
    Ok(7)
}

fn main() {
    assert_eq!(inside().unwrap(), 7);
}

//! A project that renames the dependency (`netns = { package = "in-netns", version = "0.1" }`)
//! tells the macro with `crate = netns`, since the expansion's default path, `::in_netns`, is not
//! in its extern prelude. (`extern crate ... as` gives this test the same prelude name.)
extern crate in_netns as netns;

use netns::in_netns;

#[in_netns("/proc/self/ns/net", crate = netns)]
fn inside() -> netns::Result<u32> {
    Ok(7)
}

fn main() {
    assert_eq!(inside().unwrap(), 7);
}

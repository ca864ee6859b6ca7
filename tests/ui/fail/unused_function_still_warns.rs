#![deny(dead_code)]

#[netns::in_netns("/run/netns/blue")]
fn never_called() -> netns::Result<()> {
    Ok(())
}

fn main() {}

#![deny(dead_code)]

#[in_netns::in_netns("/run/netns/blue")]
fn never_called() -> in_netns::Result<()> {
    Ok(())
}

fn main() {}

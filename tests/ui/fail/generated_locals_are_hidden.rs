#[in_netns::in_netns("/run/netns/blue")]
fn peek(value: u32) -> in_netns::Result<u32> {
    drop(netns_target);
    Ok(netns_arg0.into_inner() + value)
}

fn main() {}

#[netns::in_netns("/run/netns/blue")]
const fn answer() -> netns::Result<u32> {
    Ok(42)
}

fn main() {}

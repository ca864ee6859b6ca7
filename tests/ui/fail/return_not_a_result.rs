#[in_netns::in_netns("/run/netns/blue")]
fn answer() -> u32 {
    42
}

fn main() {}

#[netns::in_netns("/run/netns/blue", etc, etc)]
fn answer() -> netns::Result<u32> {
    Ok(42)
}

fn main() {}

#[in_netns::in_netns("/run/netns/blue", etc, etc)]
fn answer() -> in_netns::Result<u32> {
    Ok(42)
}

fn main() {}

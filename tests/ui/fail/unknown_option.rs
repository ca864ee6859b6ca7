#[netns::in_netns("/run/netns/blue", sysfss)]
fn answer() -> netns::Result<u32> {
    Ok(42)
}

fn main() {}

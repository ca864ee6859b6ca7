#[netns::in_netns()]
fn answer() -> netns::Result<u32> {
    Ok(42)
}

fn main() {}

#[netns::in_netns(42)]
fn answer() -> netns::Result<u32> {
    Ok(42)
}

fn main() {}

#[in_netns::in_netns(42)]
fn answer() -> in_netns::Result<u32> {
    Ok(42)
}

fn main() {}

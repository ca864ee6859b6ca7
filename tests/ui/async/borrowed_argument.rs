#[in_netns::in_netns(name = "blue")]
async fn send(payload: &[u8]) -> in_netns::Result<usize> {
    Ok(payload.len())
}

fn main() {}

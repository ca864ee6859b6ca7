#[netns::in_netns(name = "blue")]
async fn send(payload: &[u8]) -> netns::Result<usize> {
    Ok(payload.len())
}

fn main() {}

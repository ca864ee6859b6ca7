#[in_netns::in_netns("/run/netns/blue")]
async fn fetch() -> in_netns::Result<u32> {
    Ok(1)
}

fn main() {}

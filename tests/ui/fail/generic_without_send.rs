#[in_netns::in_netns("/run/netns/blue")]
fn keep<T>(value: T) -> in_netns::Result<T> {
    Ok(value)
}

fn main() {}

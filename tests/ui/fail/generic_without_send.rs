#[netns::in_netns("/run/netns/blue")]
fn keep<T>(value: T) -> netns::Result<T> {
    Ok(value)
}

fn main() {}

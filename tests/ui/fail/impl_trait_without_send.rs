#[in_netns::in_netns("/run/netns/blue")]
fn show(value: impl std::fmt::Display) -> in_netns::Result<String> {
    Ok(value.to_string())
}

fn main() {}

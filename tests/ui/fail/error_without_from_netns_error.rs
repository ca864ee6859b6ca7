#[derive(Debug)]
struct MyError;

#[in_netns::in_netns("/run/netns/blue")]
fn answer() -> Result<u32, MyError> {
    Ok(42)
}

fn main() {}

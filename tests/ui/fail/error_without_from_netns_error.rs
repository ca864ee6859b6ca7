#[derive(Debug)]
struct MyError;

#[netns::in_netns("/run/netns/blue")]
fn answer() -> Result<u32, MyError> {
    Ok(42)
}

fn main() {}

#[in_netns::in_netns("/run/netns/blue")]
fn setup() {
    println!("inside");
}

fn main() {}

use std::cell::Cell;

#[in_netns::in_netns("/run/netns/blue")]
fn bump(counter: &Cell<u32>) -> in_netns::Result<()> {
    counter.set(counter.get() + 1);
    Ok(())
}

fn main() {}

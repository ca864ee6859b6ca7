use std::cell::Cell;

#[netns::in_netns("/run/netns/blue")]
fn bump(counter: &Cell<u32>) -> netns::Result<()> {
    counter.set(counter.get() + 1);
    Ok(())
}

fn main() {}

use std::rc::Rc;

#[netns::in_netns("/run/netns/blue")]
fn count(items: Rc<Vec<u32>>) -> netns::Result<usize> {
    Ok(items.len())
}

fn main() {}

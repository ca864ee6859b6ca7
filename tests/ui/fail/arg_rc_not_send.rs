use std::rc::Rc;

#[in_netns::in_netns("/run/netns/blue")]
fn count(items: Rc<Vec<u32>>) -> in_netns::Result<usize> {
    Ok(items.len())
}

fn main() {}

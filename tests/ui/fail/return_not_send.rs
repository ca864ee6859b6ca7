use std::rc::Rc;

#[in_netns::in_netns("/run/netns/blue")]
fn make() -> in_netns::Result<Rc<u32>> {
    Ok(Rc::new(1))
}

fn main() {}

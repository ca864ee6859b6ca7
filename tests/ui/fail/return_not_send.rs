use std::rc::Rc;

#[netns::in_netns("/run/netns/blue")]
fn make() -> netns::Result<Rc<u32>> {
    Ok(Rc::new(1))
}

fn main() {}

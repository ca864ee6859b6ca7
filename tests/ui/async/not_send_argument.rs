use std::rc::Rc;

#[netns::in_netns(name = "blue")]
async fn count(items: Rc<Vec<u8>>) -> netns::Result<usize> {
    Ok(items.len())
}

fn main() {}

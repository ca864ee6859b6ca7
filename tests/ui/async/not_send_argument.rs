use std::rc::Rc;

#[in_netns::in_netns(name = "blue")]
async fn count(items: Rc<Vec<u8>>) -> in_netns::Result<usize> {
    Ok(items.len())
}

fn main() {}

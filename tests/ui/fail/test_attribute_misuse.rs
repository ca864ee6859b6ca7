#[in_netns::test]
mod not_a_function {}

#[in_netns::test(own_process, own_process)]
fn twice() {}

#[in_netns::test]
#[test]
fn registered_twice() {}

fn main() {}

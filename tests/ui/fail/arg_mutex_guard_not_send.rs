use std::sync::MutexGuard;

#[netns::in_netns("/run/netns/blue")]
fn bump(guard: MutexGuard<'_, u32>) -> netns::Result<u32> {
    Ok(*guard + 1)
}

fn main() {}

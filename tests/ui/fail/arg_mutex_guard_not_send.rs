use std::sync::MutexGuard;

#[in_netns::in_netns("/run/netns/blue")]
fn bump(guard: MutexGuard<'_, u32>) -> in_netns::Result<u32> {
    Ok(*guard + 1)
}

fn main() {}

#[in_netns::in_netns(worker, sysfs)]
fn links(worker: &in_netns::Worker) -> in_netns::Result<usize> {
    Ok(std::fs::read_dir("/sys/class/net").map(|d| d.count()).unwrap_or(0))
}

fn main() {}

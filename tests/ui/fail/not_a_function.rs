#[in_netns::in_netns("/run/netns/blue")]
struct Config {
    port: u16,
}

fn main() {
    let _ = Config { port: 1 }.port;
}

//! A syntax error in the body is reported once, by rustc, at its line; the macro adds nothing.
#[in_netns::in_netns("/run/netns/blue")]
fn broken() -> in_netns::Result<u8> {
    let x = 1 +;
    Ok(x)
}

fn main() {}

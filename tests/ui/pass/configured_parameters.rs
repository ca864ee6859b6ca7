//! A parameter's `#[cfg]` and lint attributes carry over to what the expansion makes of it: a
//! parameter configured out is not moved, and its `#[allow]` still applies where rustc looks.
#![deny(warnings)]

use in_netns::in_netns;

#[in_netns("/proc/self/ns/net")]
fn configured(
    #[cfg(any())] debug: bool,
    #[cfg(all())] kept: u8,
    #[allow(unused_variables)] spare: u8,
) -> in_netns::Result<u8> {
    #[cfg(any())]
    let _ = debug;
    Ok(kept)
}

fn main() {
    let _ = configured(1, 2);
}

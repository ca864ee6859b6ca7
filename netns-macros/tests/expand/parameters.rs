// Parameters: patterns and `mut` (moved to the rebinding), `#[cfg]`d and linted parameters,
// a one-line body, a parameter the target reads, and one it consumes.

#[in_netns("/run/netns/blue")]
pub fn patterns(mut a: u32, (b, c): (u8, u8), ref d: String) -> Result<u32, E> {
    a += 1;
    Ok(a + u32::from(b + c))
}

#[in_netns("/run/netns/blue")]
fn configured(#[cfg(feature = "debug")] debug: bool, #[allow(unused_variables)] spare: u8) -> io::Result<()> {
    #[cfg(feature = "debug")]
    eprintln!("{debug}");
    Ok(())
}

#[in_netns(&ns)]
fn read_by_target(ns: &NetNs, x: u8) -> io::Result<u8> { Ok(x) }

#[in_netns(ns)]
fn consumed_by_target(ns: NetNs, x: u8) -> io::Result<u8> { Ok(x) }

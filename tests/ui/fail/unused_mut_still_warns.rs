//! `mut` moves from the signature to the expansion's rebinding, with the user's token, so rustc's
//! "variable does not need to be mutable" still points at the parameter.
#![deny(unused_mut)]

pub struct Pod {
    ns: in_netns::NetNs,
}

impl Pod {
    #[in_netns::in_netns(&self.ns)]
    pub fn never_mutated(mut self, mut x: u8) -> in_netns::Result<u8> {
        Ok(x)
    }
}

fn main() {}

//! Only variables the target reads are exempt from "unused variable": `ns` here is a field of
//! `self` in the target, so an unused parameter `ns` is still reported.
#![deny(unused_variables)]

pub struct Pod {
    ns: in_netns::NetNs,
}

impl Pod {
    #[in_netns::in_netns(&self.ns)]
    pub fn probe(&self, ns: u8) -> in_netns::Result<()> {
        Ok(())
    }
}

fn main() {}

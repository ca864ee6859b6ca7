//! `self` in the body, however written: a parameter named `__self` or `self_` (the receiver's
//! new name avoids both), `self` inside a `macro_rules!` defined in the body, `self: &Self`, and
//! `mut self`.
#![deny(warnings)]
#![allow(clippy::needless_arbitrary_self_type)] // `self: &Self` is the case under test

use in_netns::{NetNs, in_netns};

pub struct Pod {
    ns: NetNs,
    port: u64,
}

impl Pod {
    #[in_netns(&self.ns)]
    pub fn dunder(&self, __self: u64) -> in_netns::Result<u64> {
        Ok(__self + self.port)
    }

    #[in_netns(&self.ns)]
    pub fn underscore(&self, self_: u64) -> in_netns::Result<u64> {
        Ok(self_ + self.port)
    }

    #[in_netns(&self.ns)]
    pub fn local_macro(&self) -> in_netns::Result<u64> {
        macro_rules! port {
            () => {
                self.port
            };
        }
        Ok(port!() + 1)
    }

    #[in_netns(&self.ns)]
    pub fn typed(self: &Self) -> in_netns::Result<u64> {
        Ok(self.port)
    }

    #[in_netns(&self.ns)]
    pub fn by_value(mut self) -> in_netns::Result<Self> {
        self.port += 1;
        Ok(self)
    }
}

fn main() {
    let pod = Pod { ns: NetNs::current().unwrap(), port: 1 };
    assert_eq!(pod.dunder(2).unwrap(), 3);
    assert_eq!(pod.underscore(2).unwrap(), 3);
    assert_eq!(pod.local_macro().unwrap(), 2);
    assert_eq!(pod.typed().unwrap(), 1);
    assert_eq!(pod.by_value().unwrap().port, 2);
}

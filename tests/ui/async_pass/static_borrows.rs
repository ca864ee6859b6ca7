//! An async body may take what lives for `'static`, borrowed or not: the `Send + 'static` bound
//! decides, not the syntax (`&'static str`, `&'static Self`, a generic `T: 'static`).
#![deny(warnings)]

use std::sync::Arc;

use in_netns::{NetNs, in_netns};

pub struct Pod {
    pub ns: Arc<NetNs>,
}

impl Pod {
    #[in_netns(self.ns.clone())]
    pub async fn label(self: &'static Self, label: &'static str) -> in_netns::Result<usize> {
        Ok(label.len() + usize::from(self.ns.name().is_some()))
    }
}

#[in_netns(ns)]
pub async fn keep<T: Send + 'static>(ns: Arc<NetNs>, value: T) -> in_netns::Result<T> {
    Ok(value)
}

fn main() {}

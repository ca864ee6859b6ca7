//! The identity of a namespace: the device and inode of its nsfs file.

use std::fmt;

/// Identifies a network namespace: two handles refer to the same namespace exactly when their
/// ids are equal. Displays like the kernel's `readlink /proc/self/ns/net`: `net:[4026531840]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NsId {
    /// The device of the nsfs file (`st_dev`).
    pub dev: u64,
    /// The inode of the nsfs file (`st_ino`), the number the kernel prints.
    pub ino: u64,
}

impl fmt::Display for NsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "net:[{}]", self.ino)
    }
}

#[cfg(test)]
mod tests {
    use super::NsId;

    #[test]
    fn displays_like_the_kernel() {
        let id = NsId {
            dev: 4,
            ino: 4026531840,
        };
        assert_eq!(id.to_string(), "net:[4026531840]");
    }
}

//! The identity of a namespace: the device and inode of its nsfs file.

use std::fmt;

/// Identifies a network namespace: two handles refer to the same namespace exactly when their
/// ids are equal. Displays like the kernel's `readlink /proc/self/ns/net`: `net:[4026531840]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NsId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl NsId {
    /// The device of the nsfs file (`st_dev`).
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// The inode of the nsfs file (`st_ino`), the number the kernel prints.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The identity of the namespace file `metadata` describes (of a path followed through its
    /// bind mount or `/proc` link, as `ip netns identify` and `ip netns pids` compare them):
    /// `fs::metadata("/proc/1234/task/1234/ns/net")` gives that thread's namespace without
    /// opening it. The metadata of a file that is no namespace gives an id no namespace has.
    pub fn from_metadata(metadata: &std::fs::Metadata) -> NsId {
        use std::os::unix::fs::MetadataExt;
        NsId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }
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

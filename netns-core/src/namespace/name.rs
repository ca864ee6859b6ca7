//! Namespace names as `ip netns` uses them, and where they live.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The directory where `ip netns` keeps named network namespaces.
pub const RUN_DIR: &str = "/run/netns";

/// The directory whose `NAME/` subdirectory holds files that `ip netns exec NAME` binds over `/etc`.
pub const ETC_DIR: &str = "/etc/netns";

/// Checks `name` against the rules `ip netns` applies, before the filesystem is touched, so a
/// name can never reach outside the run dir.
pub(crate) fn validate(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > 255 {
        "it is longer than 255 bytes"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else if name == "." || name == ".." {
        "'.' and '..' are not names"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// The path of a valid `name` in the run dir `dir`.
pub(crate) fn path_in(dir: &Path, name: &str) -> Result<PathBuf> {
    validate(name)?;
    Ok(dir.join(name))
}

/// The name of a namespace file, when it lives directly in the run dir `dir`.
pub(crate) fn name_in<'a>(dir: &Path, path: &'a Path) -> Option<&'a str> {
    if path.parent()? != dir {
        return None;
    }
    path.file_name()?.to_str()
}

/// The run-dir entry that a relative `path` names, when `path` is a valid name and the entry
/// exists: a name written where a path goes.
pub(crate) fn run_dir_entry_named_by(path: &Path) -> Option<&str> {
    let name = path.to_str().filter(|_| path.is_relative())?;
    validate(name).ok()?;
    Path::new(RUN_DIR)
        .join(name)
        .symlink_metadata()
        .is_ok()
        .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_ip_netns_accepts() {
        for name in ["blue", "a", "pod-1.2_x", "..a", ".hidden", &"x".repeat(255)] {
            assert!(validate(name).is_ok(), "{name:?} should be valid");
        }
    }

    #[test]
    fn rejects_each_bad_name_with_its_reason() {
        let cases = [
            ("", "it is empty"),
            ("a/b", "it contains '/'"),
            ("../../etc/x", "it contains '/'"),
            ("a\0b", "it contains a NUL byte"),
            (".", "'.' and '..' are not names"),
            ("..", "'.' and '..' are not names"),
        ];
        for (name, expected) in cases {
            match validate(name) {
                Err(Error::InvalidName { name: got, reason }) => {
                    assert_eq!((got.as_str(), reason), (name, expected));
                }
                other => panic!("{name:?}: expected InvalidName, got {other:?}"),
            }
        }
        assert!(matches!(
            validate(&"x".repeat(256)),
            Err(Error::InvalidName {
                reason: "it is longer than 255 bytes",
                ..
            })
        ));
    }

    #[test]
    fn names_only_direct_children_of_the_run_dir() {
        let run = Path::new(RUN_DIR);
        assert_eq!(name_in(run, Path::new("/run/netns/blue")), Some("blue"));
        assert_eq!(name_in(run, Path::new("/run/netns/a/b")), None);
        assert_eq!(name_in(run, Path::new("/proc/1/ns/net")), None);
        let elsewhere = Path::new("/var/run/pods");
        assert_eq!(name_in(elsewhere, Path::new("/var/run/pods/a")), Some("a"));
        assert_eq!(name_in(elsewhere, Path::new("/run/netns/a")), None);
    }
}

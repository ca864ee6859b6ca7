//! Whether this process may create and enter namespaces; shared by the tests and the examples
//! (`examples/support` includes this file).

/// `CAP_SYS_ADMIN` from `<linux/capability.h>`.
const CAP_SYS_ADMIN: u32 = 21;

/// Whether `CAP_SYS_ADMIN` is in this process's effective set (`CapEff` in
/// `/proc/self/status`).
pub fn has_cap_sys_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    effective & (1 << CAP_SYS_ADMIN) != 0
}

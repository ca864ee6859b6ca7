//! What the `in-netns` facade's expansions, its test attribute and the repository's tests reach
//! for. Not API: hidden from the docs, with no stability promise; use the `in-netns` crate.

use std::os::fd::AsFd;

use crate::error::Result;
use crate::namespace::NetNs;

/// For `#[in_netns::test]`, which runs a test again in a child: makes `command`'s child die with
/// the thread that spawned it and, unless this process is privileged, rootless between `fork`
/// and `exec`.
pub fn rootless_in_child(command: &mut std::process::Command) -> Result<()> {
    crate::rootless::in_child(command)
}

/// For `#[in_netns(runtime)] async fn`: spawns `future` on `handle`, which must be the handle
/// of a namespace [`NetnsRuntime`](crate::NetnsRuntime) (the only runtimes whose tasks run inside);
/// `namespace` names it in errors.
#[cfg(feature = "tokio")]
pub fn spawn_on_runtime<T, F>(
    handle: &tokio::runtime::Handle,
    namespace: String,
    future: F,
) -> crate::inside::RunAsync<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    crate::inside::RunAsync::on_handle(handle, namespace, future)
}

/// For tests: [`NetNs::of_pidfd`] as kernels before 6.11 run it (procfs, then the liveness
/// check), so that tests on newer kernels can show it refuses a reused pid.
pub fn of_pidfd_through_procfs(pidfd: impl AsFd) -> Result<NetNs> {
    NetNs::of_pidfd_through_procfs(pidfd)
}

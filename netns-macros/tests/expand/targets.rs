// Target forms and options: each resolves on the caller's thread; flags reach the options and
// make the target prove it takes them; `crate = path` moves every runtime path.

#[in_netns(name = "blue", sysfs, etc)]
fn by_name() -> io::Result<()> { Ok(()) }

#[in_netns(pid = child.id())]
fn by_pid(child: &Child) -> io::Result<()> { Ok(()) }

#[in_netns(worker)]
fn by_worker(worker: &Worker) -> io::Result<()> { Ok(()) }

#[in_netns("/run/netns/blue", crate = my::in_netns)]
fn renamed_crate() -> my::in_netns::Result<()> { Ok(()) }

use std::cell::Cell;

struct Counter {
    ns: netns::NetNs,
    hits: Cell<u32>,
}

impl Counter {
    #[netns::in_netns(&self.ns)]
    fn hit(&self) -> netns::Result<u32> {
        self.hits.set(self.hits.get() + 1);
        Ok(self.hits.get())
    }
}

fn main() {}

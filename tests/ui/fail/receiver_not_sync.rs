use std::cell::Cell;

struct Counter {
    ns: in_netns::NetNs,
    hits: Cell<u32>,
}

impl Counter {
    #[in_netns::in_netns(&self.ns)]
    fn hit(&self) -> in_netns::Result<u32> {
        self.hits.set(self.hits.get() + 1);
        Ok(self.hits.get())
    }
}

fn main() {}

// Receivers: `self` is renamed in the body (and in local macros) to a name the function does
// not use, and checked at the receiver.

impl Pod {
    #[in_netns(&self.ns)]
    fn port(&self) -> io::Result<u16> { Ok(self.port) }

    #[in_netns(&self.ns)]
    fn by_value(mut self, self_: u16) -> io::Result<Self> {
        self.port = self_;
        Ok(self)
    }

    #[in_netns(&self.ns)]
    fn local_macro(self: &Self, __self: u16) -> io::Result<u16> {
        macro_rules! port {
            () => {
                self.port
            };
        }
        Ok(port!() + __self)
    }
}

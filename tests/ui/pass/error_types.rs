//! Every error type with `From<in_netns::Error>` works: netns's own, io, and a user enum.
use std::io;

#[derive(Debug)]
enum AppError {
    #[allow(dead_code)]
    Netns(in_netns::Error),
}

impl From<in_netns::Error> for AppError {
    fn from(err: in_netns::Error) -> Self {
        AppError::Netns(err)
    }
}

#[in_netns::in_netns("/proc/self/ns/net")]
fn with_netns_error() -> in_netns::Result<u8> {
    Ok(1)
}

#[in_netns::in_netns("/proc/self/ns/net")]
fn with_io_error() -> io::Result<u8> {
    Ok(2)
}

#[in_netns::in_netns("/proc/self/ns/net")]
fn with_app_error() -> Result<u8, AppError> {
    Ok(3)
}

fn main() {
    let _ = (with_netns_error(), with_io_error(), with_app_error());
}

//! The crate's records: debug events when namespaces are made, removed or named, when a process
//! goes rootless, and when a namespace thread is retired; warnings for views that could only
//! partly be set up. With the `tracing` feature they are `tracing` events (which reach `log`
//! as records while no tracing subscriber is set); without it, `log` records. Either way their
//! target is [`TARGET`].

/// The target of every record of the crate.
pub(crate) const TARGET: &str = "in_netns";

/// A debug record: `tracing::debug!` with the `tracing` feature, `log::debug!` without.
macro_rules! debug {
    ($($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        tracing::debug!(target: $crate::report::TARGET, $($arg)+);
        #[cfg(not(feature = "tracing"))]
        log::debug!(target: $crate::report::TARGET, $($arg)+);
    }};
}

/// A warning: `tracing::warn!` with the `tracing` feature, `log::warn!` without.
macro_rules! warning {
    ($($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        tracing::warn!(target: $crate::report::TARGET, $($arg)+);
        #[cfg(not(feature = "tracing"))]
        log::warn!(target: $crate::report::TARGET, $($arg)+);
    }};
}

pub(crate) use {debug, warning};

//! Scheduler settings chosen with the `Builder`.

use std::fmt;
use std::sync::Arc;

/// A callback run on runtime threads (start/stop hooks).
pub(crate) type Callback = Arc<dyn Fn() + Send + Sync>;

/// Settings shared by both scheduler flavors.
#[derive(Clone)]
pub(crate) struct Config {
    /// Check the shared queue first every this many ticks.
    pub(crate) global_queue_interval: u32,
    /// Poll the driver (zero timeout) every this many ticks.
    pub(crate) event_interval: u32,
    /// Multi-thread only: turn the LIFO slot off.
    pub(crate) disable_lifo_slot: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("global_queue_interval", &self.global_queue_interval)
            .field("event_interval", &self.event_interval)
            .field("disable_lifo_slot", &self.disable_lifo_slot)
            .finish_non_exhaustive()
    }
}

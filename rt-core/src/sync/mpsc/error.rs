//! Errors returned by the [`mpsc`](super) channels.
//!
//! The error types that give a value back ([`SendError`], [`TrySendError`])
//! implement `Debug` without requiring `T: Debug`, so `Result::unwrap` works
//! for any message type.

use std::fmt;

/// The receiver is gone (dropped or [closed](super::Receiver::close)): the
/// value could not be sent and is given back in the field.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why [`Sender::try_send`](super::Sender::try_send) failed; the value is
/// given back in either variant.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is full (or senders are already waiting for a slot): the
    /// send would have had to wait.
    Full(T),
    /// The receiver is gone (dropped or closed): no send can succeed any more.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// Takes the value back out of the error.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(value) | TrySendError::Closed(value) => value,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("no available capacity"),
            TrySendError::Closed(_) => f.write_str("channel closed"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(err: SendError<T>) -> TrySendError<T> {
        TrySendError::Closed(err.0)
    }
}

/// Why [`Receiver::try_recv`](super::Receiver::try_recv) returned no value.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing is buffered now, but a value may still arrive.
    Empty,
    /// Nothing is buffered and nothing ever will be: every sender is gone, or
    /// the receiver closed the channel.
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Disconnected => f.write_str("receiving on a closed channel"),
        }
    }
}

impl std::error::Error for TryRecvError {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Not `Debug`: the error types must not need it.
    struct Opaque;

    #[test]
    fn errors_format_without_debug_values() {
        assert_eq!(format!("{:?}", SendError(Opaque)), "SendError { .. }");
        assert_eq!(SendError(Opaque).to_string(), "channel closed");
        assert_eq!(format!("{:?}", TrySendError::Full(Opaque)), "Full(..)");
        assert_eq!(format!("{:?}", TrySendError::Closed(Opaque)), "Closed(..)");
        assert_eq!(
            TrySendError::Full(Opaque).to_string(),
            "no available capacity"
        );
        assert_eq!(
            TryRecvError::Empty.to_string(),
            "receiving on an empty channel"
        );
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(SendError(1u8));
        assert_eq!(boxed.to_string(), "channel closed");
    }

    #[test]
    fn try_send_error_gives_value_back() {
        assert_eq!(TrySendError::Full(3).into_inner(), 3);
        assert_eq!(TrySendError::from(SendError(4)), TrySendError::Closed(4));
    }
}

//! Small data structures shared by the runtime and its embedders.

mod chunked;

pub use chunked::Chunked;

//! Unix stream halves: borrowed (`split`) and owned (`into_split`), from the
//! implementation shared with `TcpStream` (`net/split.rs`).

use super::UnixStream;

crate::net::split::stream_halves!(UnixStream);

//! Stream halves: borrowed (`split`) and owned (`into_split`), from the
//! implementation shared with `UnixStream` (`net/split.rs`).

use super::TcpStream;

crate::net::split::stream_halves!(TcpStream);

//! Connecting to a member: address normalization and a bounded connect.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::error::{NetError, NetErrorKind};

/// Expands `:PORT` to `127.0.0.1:PORT`; any other address is returned unchanged.
pub fn normalize_addr(addr: &str) -> String {
    if addr.starts_with(':') {
        format!("127.0.0.1{addr}")
    } else {
        addr.to_string()
    }
}

/// Resolves `addr` (`HOST:PORT` or `:PORT`) and connects within `timeout`, trying each
/// resolved address in turn. The stream gets `TCP_NODELAY` and read and write timeouts
/// of `timeout` (callers may shorten them per call).
pub fn connect_with_timeout(addr: &str, timeout: Duration) -> Result<TcpStream, NetError> {
    crate::sync::assert_no_io_free_lock("connecting to a peer");
    assert!(!timeout.is_zero(), "connect timeout must be positive");
    let normalized = normalize_addr(addr);
    let resolved: Vec<SocketAddr> = normalized
        .to_socket_addrs()
        .map_err(NetError::io)?
        .collect();
    let mut last = NetError::new(NetErrorKind::Io(std::io::ErrorKind::NotFound));
    for socket_addr in resolved {
        match TcpStream::connect_timeout(&socket_addr, timeout) {
            Ok(stream) => return configure(stream, timeout),
            Err(e) => last = NetError::io(e),
        }
    }
    Err(last)
}

fn configure(stream: TcpStream, timeout: Duration) -> Result<TcpStream, NetError> {
    stream.set_nodelay(true).map_err(NetError::io)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(NetError::io)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(NetError::io)?;
    Ok(stream)
}

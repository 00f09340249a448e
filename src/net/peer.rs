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

/// Checks that `addr` has the shape of an address, `HOST:PORT` or `:PORT`, without
/// resolving it: a numeric port (0 to 65535) and, for IPv6, brackets (`[::1]:8001`). The error says what is wrong and,
/// for a bare number, suggests `:PORT`.
pub fn check_addr(addr: &str) -> Result<(), String> {
    let hint = "expected HOST:PORT or :PORT, e.g. :8001 or 10.0.0.5:8001";
    if addr.parse::<u16>().is_ok() {
        return Err(format!(
            "{addr:?} is a bare port number; write :{addr} (that is 127.0.0.1:{addr})"
        ));
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("{addr:?} has no port; {hint}"));
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("{addr:?} has no valid port (0 to 65535); {hint}"));
    }
    let bad_host = host.chars().any(|c| c.is_whitespace() || c == ',')
        || (host.contains(':') && !(host.starts_with('[') && host.ends_with(']')));
    if bad_host {
        return Err(format!("{addr:?} has an invalid host; {hint}"));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::{check_addr, normalize_addr};

    #[test]
    fn addresses_are_checked_for_shape() {
        for good in [":8001", "127.0.0.1:8001", "db-1.example:8001", "[::1]:8001"] {
            assert_eq!(check_addr(good), Ok(()), "{good}");
        }
        let bare = check_addr("8002").expect_err("a bare port");
        assert!(bare.contains(":8002"), "{bare}");
        for bad in [
            "",
            "host",
            "host:",
            "host:http",
            ":70000",
            "a b:1",
            "::1:8001",
        ] {
            assert!(check_addr(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_short_address_means_loopback() {
        assert_eq!(normalize_addr(":8001"), "127.0.0.1:8001");
        assert_eq!(normalize_addr("10.0.0.5:8001"), "10.0.0.5:8001");
    }
}

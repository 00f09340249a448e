//! Address flags checked at parse time, so a malformed one is a usage error (exit 2)
//! that names its flag, before any connection is tried.

use raftkv::net::{check_addr, normalize_addr};

use super::split_addrs;

/// clap value parser for one address (`--addr` of `node`): `HOST:PORT` or `:PORT`.
pub fn one(value: &str) -> Result<String, String> {
    check_addr(value.trim())?;
    Ok(value.trim().to_string())
}

/// clap value parser for a comma list of addresses (`--peers`, `client --addr`).
pub fn list(value: &str) -> Result<String, String> {
    let addrs = split_addrs(value);
    if addrs.is_empty() {
        return Err("lists no address".to_string());
    }
    for addr in &addrs {
        check_addr(addr)?;
    }
    Ok(value.to_string())
}

/// The first address that appears twice in `addrs` once `:PORT` is read as
/// `127.0.0.1:PORT`, if any.
pub fn first_duplicate(addrs: &[String]) -> Option<&str> {
    let normalized: Vec<String> = addrs.iter().map(|a| normalize_addr(a)).collect();
    (1..addrs.len())
        .find(|&i| normalized[..i].contains(&normalized[i]))
        .map(|i| addrs[i].as_str())
}

#[cfg(test)]
mod tests {
    use super::{first_duplicate, list, one};

    #[test]
    fn lists_and_single_addresses_are_checked() {
        assert!(list(":8001, :8002,127.0.0.1:8003").is_ok());
        assert!(list("8001,8002").is_err());
        assert!(list(",").is_err());
        assert!(one("8001").is_err());
        assert_eq!(one(" :8001"), Ok(":8001".to_string()));
    }

    #[test]
    fn duplicates_are_found_after_normalization() {
        let addrs = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(first_duplicate(&addrs(&[":1", ":2", ":3"])), None);
        assert_eq!(
            first_duplicate(&addrs(&[":1", "127.0.0.1:2", ":2"])),
            Some(":2")
        );
    }
}

//! `raftkv keygen`, and loading the secret files the other subcommands are given.

use std::net::ToSocketAddrs;
use std::path::Path;

use raftkv::net::{generate_secret, normalize_addr, Secret};

use super::EXIT_OK;

/// Prints a new secret and a newline on stdout; returns the exit code.
pub fn run() -> u8 {
    println!("{}", generate_secret());
    EXIT_OK
}

/// Loads the secret file `path`, if one was given. `Err` names the file and the fix.
pub fn load_secret(path: Option<&Path>) -> Result<Option<Secret>, String> {
    path.map(Secret::load).transpose()
}

/// True if every address `addr` (`HOST:PORT` or `:PORT`) resolves to is a loopback
/// address; an address that does not resolve counts as not loopback.
pub fn is_loopback(addr: &str) -> bool {
    match normalize_addr(addr).to_socket_addrs() {
        Ok(resolved) => {
            let ips: Vec<_> = resolved.map(|a| a.ip()).collect();
            !ips.is_empty() && ips.iter().all(|ip| ip.is_loopback())
        }
        Err(_) => false,
    }
}

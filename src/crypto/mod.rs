//! SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), written here because the runtime
//! crates include no crypto library. A leaf module: it uses nothing else of this crate.
//!
//! Used only to authenticate connections (`net`'s handshake); nothing here encrypts.
//! Checked against the NIST and RFC 4231 vectors and, by a property test, against the
//! `sha2` and `hmac` crates (dev-dependencies only).

mod hmac;
mod sha256;

pub use hmac::{hmac_sha256, macs_equal, HmacSha256};
pub use sha256::{sha256, Sha256};

/// Bytes in a SHA-256 digest and in an HMAC-SHA256 tag.
pub const DIGEST_LEN: usize = 32;

#[cfg(test)]
mod tests;

//! Shared secrets and the proofs of the handshake.
//!
//! A secret file holds one or two secrets, one per line, each the hex form of at least
//! [`MIN_SECRET_BYTES`] random bytes (`raftkv keygen` prints one). The first line is the
//! secret this side proves itself with; a second line is an older secret still
//! accepted from others, so that a secret can be rotated one node at a time. Blank
//! lines and lines starting with `#` are ignored. The file must not be readable by
//! group or others.
//!
//! A proof is HMAC-SHA256 under the secret over a transcript binding both sides' fresh
//! nonces, the protocol version, the cluster name, who connects (a peer id, or the
//! client marker) and the answering node's id, with a label saying which side proves:
//! a recorded proof fits no later handshake, a proof for one id fits no other, and
//! one side's proof is never valid as the other's.

use std::fs;
use std::path::Path;

use rand::rngs::OsRng;
use rand::RngCore;

use crate::crypto::{macs_equal, HmacSha256, DIGEST_LEN};
use crate::raft::NodeId;

/// Fewest random bytes a secret may hold.
pub const MIN_SECRET_BYTES: usize = 32;

/// Bytes in a handshake nonce.
pub const NONCE_LEN: usize = 32;

/// A fresh random value each side contributes to a handshake.
pub type Nonce = [u8; NONCE_LEN];

/// An HMAC-SHA256 tag.
pub type Mac = [u8; DIGEST_LEN];

/// Most secrets one file may hold: the current one and an older one.
const MAX_SECRETS: usize = 2;

/// The secrets for one kind of connection (peers, or clients): the first proves this
/// side, all are accepted from the other side.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret itself.
        write!(f, "Secret({} key(s))", self.keys.len())
    }
}

impl Secret {
    /// Parses the text of a secret file (see the module doc). `Err` says what is wrong,
    /// without quoting the file's contents.
    pub fn parse(text: &str) -> Result<Secret, String> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = decode_hex(line).ok_or_else(|| {
                format!(
                    "line {} is not hex (0-9, a-f, an even number of digits)",
                    n + 1
                )
            })?;
            if key.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "line {} holds {} bytes; a secret needs at least {MIN_SECRET_BYTES} \
                     ({} hex digits)",
                    n + 1,
                    key.len(),
                    2 * MIN_SECRET_BYTES
                ));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err("it holds no secret".to_string());
        }
        if keys.len() > MAX_SECRETS {
            return Err(format!(
                "it holds {} secrets; at most {MAX_SECRETS} (the current one, then the old one \
                 during a rotation)",
                keys.len()
            ));
        }
        Ok(Secret { keys })
    }

    /// Reads and parses a secret file, refusing one that group or others may read.
    /// `Err` names the file and the fix.
    pub fn load(path: &Path) -> Result<Secret, String> {
        let shown = path.display();
        let meta = fs::metadata(path).map_err(|e| format!("secret file {shown}: {e}"))?;
        check_private(&meta).map_err(|why| {
            format!("secret file {shown} {why}; make it private with `chmod 600 {shown}`")
        })?;
        let text = fs::read_to_string(path).map_err(|e| format!("secret file {shown}: {e}"))?;
        Secret::parse(&text).map_err(|why| {
            format!("secret file {shown}: {why}; make a new one with `raftkv keygen > {shown}`")
        })
    }

    /// Builds a secret from raw keys (tests and benchmarks), the first proving this side.
    pub fn from_keys(keys: Vec<Vec<u8>>) -> Secret {
        assert!(!keys.is_empty(), "a secret needs a key");
        Secret { keys }
    }

    /// True if the two hold a key in common (a peer and a client secret must not: a
    /// client could then act as a member).
    pub fn shares_a_key_with(&self, other: &Secret) -> bool {
        self.keys.iter().any(|key| other.keys.contains(key))
    }

    /// The key this side proves itself with.
    pub(crate) fn current(&self) -> &[u8] {
        &self.keys[0]
    }

    /// The first accepted key under which `mac` is the proof of `transcript`.
    pub(crate) fn verify(&self, transcript: &Transcript, side: Side, mac: &Mac) -> Option<&[u8]> {
        self.keys
            .iter()
            .map(Vec::as_slice)
            .find(|key| macs_equal(&transcript.prove(key, side), mac))
    }
}

#[cfg(unix)]
fn check_private(meta: &fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "is accessible by group or others (mode {mode:03o})"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_meta: &fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// A new secret in the form a secret file holds: 32 bytes from the operating system's
/// random source, as 64 hex digits.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; MIN_SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    encode_hex(&bytes)
}

/// A fresh nonce from the operating system's random source.
pub(crate) fn fresh_nonce() -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    nonce
}

/// Which side of a handshake a proof comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The side that connected and sent the hello.
    Connector,
    /// The node that accepted the connection.
    Acceptor,
}

/// What a member's hello claims; every field is bound by the proofs, so no one on the
/// link can change its id, incarnation or address without the secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PeerClaim<'a> {
    /// The member's id.
    pub id: NodeId,
    /// The incarnation of its data directory.
    pub incarnation: u64,
    /// The address it says it listens on.
    pub addr: &'a str,
}

/// Everything a handshake's proofs bind.
pub(crate) struct Transcript<'a> {
    /// The protocol version of the hello.
    pub version: u32,
    /// The cluster name of the hello.
    pub cluster: &'a str,
    /// What a connecting member claims in its hello (its id, the incarnation of its
    /// data directory and its address), or `None` for a client.
    pub peer: Option<PeerClaim<'a>>,
    /// The accepting node's id.
    pub node_id: NodeId,
    /// The acceptor's nonce (sent in its challenge).
    pub acceptor_nonce: &'a Nonce,
    /// The connector's nonce (sent with its proof).
    pub connector_nonce: &'a Nonce,
}

impl Transcript<'_> {
    /// The proof of `side` under `key`. Every field has a fixed length or a length
    /// prefix, so two different transcripts never hash the same bytes.
    pub(crate) fn prove(&self, key: &[u8], side: Side) -> Mac {
        let mut mac = HmacSha256::new(key);
        mac.update(b"raftkv-hello-v2\0");
        mac.update(match side {
            Side::Connector => b"connector",
            Side::Acceptor => b"acceptor\0",
        });
        mac.update(&self.version.to_be_bytes());
        mac.update(&(self.cluster.len() as u64).to_be_bytes());
        mac.update(self.cluster.as_bytes());
        match self.peer {
            Some(claim) => {
                mac.update(b"P");
                mac.update(&claim.id.to_be_bytes());
                mac.update(&claim.incarnation.to_be_bytes());
                mac.update(&(claim.addr.len() as u64).to_be_bytes());
                mac.update(claim.addr.as_bytes());
            }
            None => mac.update(b"C\0\0\0\0\0\0\0\0"),
        }
        mac.update(&self.node_id.to_be_bytes());
        mac.update(self.acceptor_nonce);
        mac.update(self.connector_nonce);
        mac.finish()
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_parses_and_differs_each_time() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_eq!(a.len(), 2 * MIN_SECRET_BYTES);
        assert_ne!(a, b);
        let secret = Secret::parse(&format!("{a}\n")).expect("keygen output parses");
        assert_eq!(secret.current(), decode_hex(&a).expect("hex").as_slice());
    }

    #[test]
    fn bad_secret_files_are_refused_with_a_reason() {
        let short = "ab".repeat(MIN_SECRET_BYTES - 1);
        let cases = [
            ("", "no secret"),
            ("# only a comment\n", "no secret"),
            (short.as_str(), "at least 32"),
            ("zz", "not hex"),
            ("abc", "not hex"),
        ];
        for (text, why) in cases {
            let err = Secret::parse(text).expect_err(text);
            assert!(err.contains(why), "{text:?}: {err}");
        }
        let three = format!("{0}\n{0}\n{0}\n", generate_secret());
        assert!(Secret::parse(&three)
            .expect_err("three")
            .contains("at most 2"));
    }

    #[test]
    fn a_proof_binds_every_field_and_the_side() {
        let (n1, n2) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        let claim = PeerClaim {
            id: 2,
            incarnation: 77,
            addr: "127.0.0.1:8002",
        };
        let base = Transcript {
            version: 1,
            cluster: "raftkv",
            peer: Some(claim),
            node_id: 1,
            acceptor_nonce: &n1,
            connector_nonce: &n2,
        };
        let key = [7u8; 32];
        let proof = base.prove(&key, Side::Connector);
        let variants = [
            Transcript { version: 2, ..base },
            Transcript {
                cluster: "raftkw",
                ..base
            },
            Transcript {
                peer: Some(PeerClaim { id: 3, ..claim }),
                ..base
            },
            Transcript {
                peer: Some(PeerClaim {
                    incarnation: 78,
                    ..claim
                }),
                ..base
            },
            Transcript {
                peer: Some(PeerClaim {
                    addr: "127.0.0.1:9002",
                    ..claim
                }),
                ..base
            },
            Transcript { peer: None, ..base },
            Transcript { node_id: 3, ..base },
            Transcript {
                acceptor_nonce: &n2,
                ..base
            },
            Transcript {
                connector_nonce: &n1,
                ..base
            },
        ];
        for (i, other) in variants.iter().enumerate() {
            assert_ne!(other.prove(&key, Side::Connector), proof, "variant {i}");
        }
        assert_ne!(base.prove(&key, Side::Acceptor), proof);
        assert_ne!(base.prove(&[8u8; 32], Side::Connector), proof);
        let rotated = Secret::from_keys(vec![vec![9u8; 32], key.to_vec()]);
        assert!(rotated.verify(&base, Side::Connector, &proof).is_some());
        let other = Secret::from_keys(vec![vec![9u8; 32]]);
        assert!(other.verify(&base, Side::Connector, &proof).is_none());
    }
}

//! CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven.
//!
//! The same checksum as zlib, gzip and PNG, so a record can be checked by hand with
//! standard tools. The table is built at compile time.

/// The 256-entry lookup table for one byte at a time.
const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

/// An incremental CRC-32: feed it pieces with [`Crc32::update`], read it with
/// [`Crc32::finish`]. Feeding `a` then `b` equals feeding `a ++ b`.
#[derive(Clone, Copy, Debug)]
pub struct Crc32 {
    /// The running register, already inverted (the standard initial value ~0).
    state: u32,
}

impl Crc32 {
    /// A checksum of nothing yet.
    pub fn new() -> Crc32 {
        Crc32 { state: !0 }
    }

    /// Adds `bytes` to the checksum.
    pub fn update(mut self, bytes: &[u8]) -> Crc32 {
        for &b in bytes {
            let i = ((self.state ^ u32::from(b)) & 0xFF) as usize;
            self.state = TABLE[i] ^ (self.state >> 8);
        }
        self
    }

    /// The checksum of everything fed so far.
    pub fn finish(self) -> u32 {
        !self.state
    }
}

impl Default for Crc32 {
    fn default() -> Crc32 {
        Crc32::new()
    }
}

/// The CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    Crc32::new().update(bytes).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"a"), 0xE8B7_BE43);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn incremental_equals_whole() {
        let whole = crc32(b"123456789");
        let parts = Crc32::new()
            .update(b"1234")
            .update(b"")
            .update(b"56789")
            .finish();
        assert_eq!(parts, whole);
    }
}

//! The NIST SHA-256 and RFC 4231 HMAC-SHA256 vectors, and a property test against the
//! `sha2` and `hmac` crates.

use proptest::prelude::*;

use super::{hmac_sha256, macs_equal, sha256, HmacSha256, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sha256_matches_the_nist_vectors() {
    let cases: [(&[u8], &str); 3] = [
        (
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            b"abc",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
    ];
    for (message, want) in cases {
        assert_eq!(
            hex(&sha256(message)),
            want,
            "{:?}",
            String::from_utf8_lossy(message)
        );
    }
    let mut million = Sha256::new();
    for _ in 0..1000 {
        million.update(&[b'a'; 1000]);
    }
    assert_eq!(
        hex(&million.finish()),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    );
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    let key4: Vec<u8> = (1..=25).collect();
    let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
        (
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            vec![0xaa; 20],
            vec![0xdd; 50],
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        ),
        (
            key4,
            vec![0xcd; 50],
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        ),
        (
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
        (
            vec![0xaa; 131],
            b"This is a test using a larger than block-size key and a larger than \
              block-size data. The key needs to be hashed before being used by the HMAC \
              algorithm."
                .to_vec(),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        ),
    ];
    for (i, (key, data, want)) in cases.iter().enumerate() {
        assert_eq!(
            hex(&hmac_sha256(key, data)),
            *want,
            "RFC 4231 case {}",
            i + 1
        );
    }
    // Case 5 is truncated to 128 bits.
    let tag = hmac_sha256(&[0x0c; 20], b"Test With Truncation");
    assert_eq!(hex(&tag[..16]), "a3b6167473100ee06e0c796c2955552b");
}

#[test]
fn macs_equal_compares_every_byte() {
    let a = hmac_sha256(b"k", b"m");
    assert!(macs_equal(&a, &a));
    for i in [0, 15, 31] {
        let mut b = a;
        b[i] ^= 1;
        assert!(!macs_equal(&a, &b), "difference at byte {i} missed");
    }
}

proptest! {
    #[test]
    fn sha256_agrees_with_the_sha2_crate(
        data in proptest::collection::vec(any::<u8>(), 0..300),
        split in any::<prop::sample::Index>(),
    ) {
        use sha2::Digest;
        let want: [u8; 32] = sha2::Sha256::digest(&data).into();
        prop_assert_eq!(sha256(&data), want);
        // Fed in two pieces, split anywhere.
        let at = split.index(data.len() + 1);
        let mut hasher = Sha256::new();
        hasher.update(&data[..at]);
        hasher.update(&data[at..]);
        prop_assert_eq!(hasher.finish(), want);
    }

    #[test]
    fn hmac_agrees_with_the_hmac_crate(
        key in proptest::collection::vec(any::<u8>(), 0..200),
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        use hmac::Mac;
        let mut reference = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key");
        reference.update(&data);
        let want: [u8; 32] = reference.finalize().into_bytes().into();
        prop_assert_eq!(hmac_sha256(&key, &data), want);
        let mut ours = HmacSha256::new(&key);
        ours.update(&data);
        prop_assert_eq!(ours.finish(), want);
    }
}

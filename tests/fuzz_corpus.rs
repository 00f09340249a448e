//! Replays the fuzz corpus (`fuzz/corpus/TARGET/*`) through the same entry points the
//! cargo-fuzz targets call, on stable: every saved input, including those that once
//! crashed a decoder, must decode to a value or an error without panicking.

use std::path::Path;

/// The targets and their entry points; a corpus directory not listed here fails.
/// A decoder entry point.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("frames", raftkv::fuzzing::frames),
    ("messages", raftkv::fuzzing::messages),
    ("snapshot", raftkv::fuzzing::snapshot),
    ("wal", raftkv::fuzzing::wal),
    ("wal_records", raftkv::fuzzing::wal_records),
    ("resp", raftkv::fuzzing::resp),
];

#[test]
fn every_corpus_input_decodes_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut seen = Vec::new();
    for dir in std::fs::read_dir(&root).expect("fuzz/corpus exists") {
        let dir = dir.expect("corpus entry").path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let Some((_, run)) = TARGETS.iter().find(|(t, _)| *t == name) else {
            panic!("corpus directory {name:?} has no target here");
        };
        let mut inputs = 0;
        for file in std::fs::read_dir(&dir).expect("read corpus dir") {
            let path = file.expect("corpus file").path();
            let bytes = std::fs::read(&path).expect("read corpus file");
            run(&bytes);
            inputs += 1;
        }
        assert!(inputs > 0, "corpus {name} is empty");
        seen.push(name);
    }
    seen.sort();
    let mut expected: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    expected.sort();
    assert_eq!(seen, expected, "a target has no corpus");
}

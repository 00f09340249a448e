//! Random sequences of append, overwrite, snapshot + compact and reopen agree with an
//! in-memory model of the log.

mod storage_support;

use std::path::Path;

use proptest::prelude::*;
use raftkv::raft::{Entry, LogPosition};
use raftkv::storage::{SnapshotFile, Storage};
use storage_support::*;

/// Segments roll after a few records, so every run crosses many of them.
const SEGMENT_BYTES: u64 = 150;

#[derive(Clone, Debug)]
enum Op {
    /// Append `count` entries after the last one, at the last term (+1 if `new_term`).
    Append { count: u64, new_term: bool },
    /// A leader of a newer term overwrites from `back` entries before the end.
    Overwrite { back: u64, count: u64 },
    /// Snapshot at `back` entries before the end (clamped to the base), then compact.
    SnapshotAndCompact { back: u64 },
    /// A leader's snapshot at `ahead` past our last index (negative: behind it),
    /// agreeing with our entry there if `same_term`, else of a newer term.
    Install { ahead: i64, same_term: bool },
    /// Close and open again.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..6u64, any::<bool>()).prop_map(|(count, new_term)| Op::Append { count, new_term }),
        2 => (0..8u64, 1..4u64).prop_map(|(back, count)| Op::Overwrite { back, count }),
        1 => (0..6u64).prop_map(|back| Op::SnapshotAndCompact { back }),
        1 => (-6..6i64, any::<bool>()).prop_map(|(ahead, same_term)| Op::Install { ahead, same_term }),
        1 => Just(Op::Reopen),
    ]
}

/// The log as it should be: the base, and the entries after it.
struct Model {
    base: LogPosition,
    log: Vec<Entry>,
}

impl Model {
    fn last(&self) -> LogPosition {
        self.log.last().map_or(self.base, |e| LogPosition {
            index: e.index,
            term: e.term,
        })
    }

    /// The entries `op` appends, and the model after them.
    fn append_op(&mut self, from: u64, count: u64, term: u64) -> Vec<Entry> {
        let batch = entries(from, from + count - 1, term);
        self.log.retain(|e| e.index < from);
        self.log.extend(batch.iter().cloned());
        batch
    }
}

fn apply(op: &Op, storage: &mut Storage, model: &mut Model) {
    let last = model.last();
    match *op {
        Op::Append { count, new_term } => {
            let batch = model.append_op(
                last.index + 1,
                count,
                last.term.max(1) + u64::from(new_term),
            );
            storage.append(&batch).expect("append");
        }
        Op::Overwrite { back, count } => {
            let from = last.index.saturating_sub(back).max(model.base.index + 1);
            let batch = model.append_op(from, count, last.term + 1);
            storage.append(&batch).expect("overwrite");
        }
        Op::SnapshotAndCompact { back } => {
            let at = last.index.saturating_sub(back).max(model.base.index);
            let term = model
                .log
                .iter()
                .find(|e| e.index == at)
                .map_or(model.base.term, |e| e.term);
            let snap = SnapshotFile {
                membership: None,
                last: LogPosition { index: at, term },
                data: vec![at as u8],
            };
            storage.save_snapshot(&snap).expect("snapshot");
            storage.compact(at).expect("compact");
            model.base = snap.last;
            model.log.retain(|e| e.index > at);
        }
        Op::Install { ahead, same_term } => {
            let at = (last.index as i64 + ahead).max(model.base.index as i64 + 1) as u64;
            let ours = model.log.iter().find(|e| e.index == at).map(|e| e.term);
            let term = ours.filter(|_| same_term).unwrap_or(last.term + 1);
            let snap = SnapshotFile {
                membership: None,
                last: LogPosition { index: at, term },
                data: vec![],
            };
            storage.save_snapshot(&snap).expect("install snapshot");
            model.base = snap.last;
            if ours == Some(term) {
                model.log.retain(|e| e.index > at);
            } else {
                model.log.clear();
            }
        }
        Op::Reopen => unreachable!("the test loop reopens"),
    }
}

fn check_reopen(dir: &Path, model: &Model) -> Storage {
    let (storage, rec) = open_ok(dir, SEGMENT_BYTES);
    assert!(rec.warnings.is_empty(), "{:?}", rec.warnings);
    assert_eq!(rec.log_base, model.base);
    assert_eq!(rec.entries, model.log);
    storage
}

/// Number of cases: `PROPTEST_CASES` if set, else 32.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

proptest! {
    // 32 cases keep the suite fast on a shared disk; PROPTEST_CASES=1000 for a long run.
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn storage_agrees_with_a_model(ops in proptest::collection::vec(op(), 1..40)) {
        let (_tmp, dir) = data_dir();
        let (mut storage, _) = open_ok(&dir, SEGMENT_BYTES);
        let mut model = Model { base: LogPosition::default(), log: Vec::new() };
        for op in &ops {
            if let Op::Reopen = op {
                drop(storage);
                storage = check_reopen(&dir, &model);
            } else {
                apply(op, &mut storage, &mut model);
            }
            prop_assert_eq!(storage.last_index(), model.last().index, "after {:?}", op);
            prop_assert_eq!(storage.log_base(), model.base);
        }
        drop(storage);
        check_reopen(&dir, &model);
    }
}

//! A writer process is killed with SIGKILL under load; every append it acknowledged
//! must be there after recovery (sled-style crash test, process crashes only: the page
//! cache survives, so this checks our ordering and recovery, not the disk's).

mod storage_support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use raftkv::raft::LogPosition;
use raftkv::storage::SnapshotFile;
use storage_support::*;

const CHILD_ENV: &str = "RAFTKV_STORAGE_CRASH_CHILD";
const TEST_NAME: &str = "acknowledged_appends_survive_sigkill";
const SEGMENT_BYTES: u64 = 4096;
/// The writer stops by itself after this many batches, should nobody kill it.
const MAX_BATCHES: u64 = 20_000;

/// The term of entry `index` in the writer's log.
fn term_of(index: u64) -> u64 {
    1 + index / 100
}

/// The child: appends batches of 1..=8 entries, snapshots and compacts now and then,
/// and prints `ack LAST` after each append returns.
fn run_writer(dir: &Path) {
    let (mut storage, rec) = open_ok(dir, SEGMENT_BYTES);
    let mut next = rec.entries.last().map_or(rec.log_base.index, |e| e.index) + 1;
    for batch in 0..MAX_BATCHES {
        let count = 1 + batch % 8;
        let batch_entries: Vec<_> = (next..next + count).map(|i| entry(i, term_of(i))).collect();
        storage.append(&batch_entries).expect("append");
        next += count;
        println!("ack {}", next - 1);
        if batch % 64 == 63 {
            let at = next - 20;
            let last = LogPosition {
                index: at,
                term: term_of(at),
            };
            storage
                .save_snapshot(&SnapshotFile {
                    last,
                    membership: None,
                    data: vec![],
                })
                .expect("snapshot");
            storage.compact(at).expect("compact");
        }
    }
}

/// The last acknowledged index in the child's output, once it has reached `target`.
fn wait_for_acks(out: &Path, target: u64, deadline: Instant) -> Option<u64> {
    loop {
        let text = fs::read_to_string(out).unwrap_or_default();
        let last = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("ack ")?.parse::<u64>().ok());
        if last.is_some_and(|l| l >= target) || Instant::now() > deadline {
            return last;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        run_writer(Path::new(&dir));
        return;
    }
    let (tmp, dir) = data_dir();
    let mut acked = 0;
    for (round, target) in [3u64, 40, 150, 400, 900].into_iter().enumerate() {
        let out = tmp.path().join(format!("child-{round}.out"));
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("child stdout file"))
            .stderr(fs::File::create(tmp.path().join(format!("child-{round}.err"))).expect("file"))
            .spawn()
            .expect("spawn writer");
        let deadline = Instant::now() + Duration::from_secs(20);
        let seen = wait_for_acks(&out, acked + target, deadline);
        child.kill().expect("SIGKILL the writer");
        child.wait().expect("reap the writer");
        // Acks printed after our last read are acknowledged too: read again.
        let last_ack = wait_for_acks(&out, 0, Instant::now()).or(seen);
        let err =
            fs::read_to_string(tmp.path().join(format!("child-{round}.err"))).unwrap_or_default();
        let last_ack = last_ack
            .unwrap_or_else(|| panic!("round {round}: writer acked nothing; stderr:\n{err}"));
        assert!(
            last_ack >= acked,
            "round {round}: acks went back from {acked} to {last_ack}"
        );
        acked = last_ack;
        eprintln!("round {round}: killed the writer after ack {acked}");

        let (storage, rec) = open_ok(&dir, SEGMENT_BYTES);
        assert!(
            storage.last_index() >= acked,
            "round {round}: acked {acked}, recovered up to {}",
            storage.last_index()
        );
        let expected: Vec<_> = (rec.log_base.index + 1..=storage.last_index())
            .map(|i| entry(i, term_of(i)))
            .collect();
        assert_eq!(
            rec.entries, expected,
            "round {round}: warnings {:?}",
            rec.warnings
        );
    }
}

//! WAL throughput: appends/s and MB/s for batches of 1, 16, 64 and 256 entries of 100
//! payload bytes, beside the raw cost of one small `write` + `fdatasync` on the same
//! file system, measured the same way (a fresh file, appended to and synced in a loop).
//!
//! ```text
//! cargo run --release --example wal_bench [DIR] [SECONDS_PER_CASE]
//! ```
//!
//! DIR defaults to a temporary directory (on the file system of `$TMPDIR`); use a
//! directory on the disk the node will use. Not a test: it asserts nothing.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use raftkv::raft::{Entry, Payload};
use raftkv::storage::{Meta, Storage};

const PAYLOAD_BYTES: usize = 100;
const BATCH_SIZES: [usize; 4] = [1, 16, 64, 256];
const MAX_ROUNDS: usize = 20_000;
/// One small record, as the WAL writes for a batch of one.
const SMALL_BYTES: usize = PAYLOAD_BYTES + 16;

/// Latencies of one case, in seconds.
struct Sample {
    rounds: Vec<f64>,
    bytes: u64,
    entries: u64,
}

impl Sample {
    fn total_s(&self) -> f64 {
        self.rounds.iter().sum()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let mut sorted = self.rounds.clone();
        sorted.sort_by(f64::total_cmp);
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i] * 1e3
    }

    fn mean_ms(&self) -> f64 {
        self.total_s() / self.rounds.len() as f64 * 1e3
    }

    fn summary(&self) -> String {
        let (p50, mean, p99) = (
            self.percentile_ms(0.5),
            self.mean_ms(),
            self.percentile_ms(0.99),
        );
        format!("{p50:>6.3} {mean:>6.3} {p99:>6.3}")
    }

    fn new() -> Sample {
        Sample {
            rounds: Vec::new(),
            bytes: 0,
            entries: 0,
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tmp = tempfile::tempdir()?;
    // An empty DIR ("") also means the temporary directory.
    let root = args
        .first()
        .filter(|a| !a.is_empty())
        .map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let seconds: f64 = args.get(1).map_or(Ok(2.0), |s| s.parse())?;
    let budget = Duration::from_secs_f64(seconds);
    std::fs::create_dir_all(&root)?;
    println!(
        "dir {}  payload {PAYLOAD_BYTES} B  {seconds} s per case",
        root.display()
    );
    println!("Each round, in turn: a raw write+fdatasync of {SMALL_BYTES} B on a plain file");
    println!("(\"small\"), a raw write+fdatasync of as many bytes as the batch's records");
    println!("(\"same\"), and one Storage::append of the batch: all see the same disk conditions.");
    println!("Times are p50 / mean / p99 in ms; the ratios compare means.");
    println!("batch  appends/s   MB/s | append p50/mean/p99  | small fdatasync      | same-size fdatasync  | /small /same");
    for batch in BATCH_SIZES {
        let [wal, small, same] = interleaved_case(&root, batch, budget)?;
        println!(
            "{batch:>5}  {:>9.0}  {:>5.2} | {} | {} | {} | {:>5.2}  {:>5.2}",
            wal.entries as f64 / wal.total_s(),
            wal.bytes as f64 / wal.total_s() / 1e6,
            wal.summary(),
            small.summary(),
            same.summary(),
            wal.mean_ms() / small.mean_ms(),
            wal.mean_ms() / same.mean_ms(),
        );
    }
    Ok(())
}

/// Alternates raw `write` + `fdatasync` rounds on plain files with `Storage::append`
/// of `batch` entries, in fresh files, until `budget` is spent. Returns the samples of
/// the appends, the small raw writes and the same-size raw writes.
fn interleaved_case(
    root: &Path,
    batch: usize,
    budget: Duration,
) -> Result<[Sample; 3], Box<dyn std::error::Error>> {
    let dir = root.join(format!("wal-{batch}"));
    let meta = Meta {
        node_id: 1,
        cluster: "bench".into(),
        peers: vec!["127.0.0.1:1".into()],
        incarnation: 1,
        join: false,
    };
    let (mut storage, _) = Storage::open(&dir, &meta)?;
    let mut next = 1u64;
    let make_batch = |next: u64| -> Vec<Entry> {
        let payload = || Payload::Command(vec![0xA5; PAYLOAD_BYTES]);
        (next..next + batch as u64)
            .map(|index| Entry {
                term: 1,
                index,
                payload: payload(),
            })
            .collect()
    };
    // Records are 12 B of header plus the bincode entry (~4 B of term/index/tag + payload).
    let same_bytes = batch * (PAYLOAD_BYTES + 16);
    let mut small = RawProbe::create(&root.join(format!("probe-small-{batch}")), SMALL_BYTES)?;
    let mut same = RawProbe::create(&root.join(format!("probe-same-{batch}")), same_bytes)?;
    let mut samples = [Sample::new(), Sample::new(), Sample::new()];
    let start = Instant::now();
    while start.elapsed() < budget && samples[0].rounds.len() < MAX_ROUNDS {
        small.round(&mut samples[1])?;
        same.round(&mut samples[2])?;
        let entries = make_batch(next);
        let t = Instant::now();
        storage.append(&entries)?;
        samples[0].rounds.push(t.elapsed().as_secs_f64());
        samples[0].bytes += (batch * PAYLOAD_BYTES) as u64;
        samples[0].entries += batch as u64;
        next += batch as u64;
    }
    drop(storage);
    std::fs::remove_dir_all(&dir)?;
    small.remove()?;
    same.remove()?;
    Ok(samples)
}

/// A plain file appended to with `write` + `fdatasync`, like the WAL does.
struct RawProbe {
    path: PathBuf,
    file: std::fs::File,
    record: Vec<u8>,
}

impl RawProbe {
    fn create(path: &Path, record_bytes: usize) -> std::io::Result<RawProbe> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        Ok(RawProbe {
            path: path.to_path_buf(),
            file,
            record: vec![0x5A; record_bytes],
        })
    }

    fn round(&mut self, sample: &mut Sample) -> std::io::Result<()> {
        let t = Instant::now();
        self.file.write_all(&self.record)?;
        self.file.sync_data()?;
        sample.rounds.push(t.elapsed().as_secs_f64());
        sample.bytes += self.record.len() as u64;
        Ok(())
    }

    fn remove(self) -> std::io::Result<()> {
        drop(self.file);
        std::fs::remove_file(&self.path)
    }
}

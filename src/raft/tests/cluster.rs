//! A small randomized cluster, as a self-check of the core before the real simulator
//! (tests/sim) takes over: loss, duplication, reordering, delayed fsyncs and
//! crash-restarts in a safety phase, then a healed liveness phase. Checks election
//! safety (one leader per term) and state machine safety (every member applies the
//! same entry at each index), and `check_invariants` after every input.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

/// What one member's disk holds.
#[derive(Default)]
struct Disk {
    hard_state: HardState,
    entries: Vec<Entry>,
}

impl Disk {
    fn write(&mut self, batch: &PersistBatch) {
        if let Some(hs) = batch.hard_state {
            self.hard_state = hs;
        }
        if let Some(first) = batch.entries.first() {
            self.entries.truncate(first.index as usize - 1);
            self.entries.extend(batch.entries.iter().cloned());
        }
    }
}

struct Cluster {
    rng: SmallRng,
    now_ms: u64,
    nodes: Vec<Raft>,
    disks: Vec<Disk>,
    /// Batches taken but not yet written, per member (the writer thread's queue).
    writing: Vec<Vec<PersistBatch>>,
    /// (delivery time, message).
    network: Vec<(u64, Message)>,
    faults: bool,
    leaders: BTreeMap<Term, NodeId>,
    applied: BTreeMap<Index, Entry>,
    /// Reads asked for and not yet answered: (member, read id) -> the highest index
    /// applied anywhere when the read was issued (every write acknowledged by then).
    reads: BTreeMap<(usize, u64), Index>,
    next_read: u64,
    /// Reads answered with an index by followers.
    served_by_followers: usize,
}

impl Cluster {
    fn new(n: u64, seed: u64) -> Cluster {
        let nodes = (1..=n)
            .map(|id| Raft::new(config(id, n), InitialState::default(), seed * 31 + id, 0))
            .collect();
        Cluster {
            rng: SmallRng::seed_from_u64(seed),
            now_ms: 0,
            nodes,
            disks: (0..n).map(|_| Disk::default()).collect(),
            writing: (0..n).map(|_| Vec::new()).collect(),
            network: Vec::new(),
            faults: true,
            leaders: BTreeMap::new(),
            applied: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_read: 0,
            served_by_followers: 0,
        }
    }

    fn send(&mut self, messages: Vec<Message>) {
        for m in messages {
            if self.faults && self.rng.gen_bool(0.1) {
                continue; // lost
            }
            let copies = if self.faults && self.rng.gen_bool(0.05) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let delay = self.rng.gen_range(1..if self.faults { 40 } else { 5 });
                self.network.push((self.now_ms + delay, m.clone()));
            }
        }
    }

    /// Collects every output of member `k` and checks what it says.
    fn drain(&mut self, k: usize) {
        while let Some(batch) = self.nodes[k].take_persist_batch() {
            self.writing[k].push(batch);
        }
        let messages = self.nodes[k].take_messages();
        self.send(messages);
        let r = &mut self.nodes[k];
        for e in r.take_committed(usize::MAX) {
            let prior = self.applied.entry(e.index).or_insert_with(|| e.clone());
            assert_eq!(
                *prior,
                e,
                "member {} applies a different entry at {}",
                k + 1,
                e.index
            );
        }
        for state in r.take_read_states() {
            let Some(issued_after) = self.reads.remove(&(k, state.read_id)) else {
                panic!(
                    "member {} answers read {} it never took",
                    k + 1,
                    state.read_id
                );
            };
            if let Ok(index) = state.result {
                // Linearizable reads: serving at `index` shows every acknowledged write.
                assert!(
                    index >= issued_after,
                    "member {} serves read {} at {index}, before {issued_after} applied",
                    k + 1,
                    state.read_id
                );
                if r.role() != Role::Leader {
                    self.served_by_followers += 1;
                }
            }
        }
        if r.role() == Role::Leader {
            if !self.leaders.contains_key(&r.term()) {
                // Leader completeness (§5.4): a new leader holds every applied entry.
                for (&index, e) in &self.applied {
                    let held = r.entries_from(index).first();
                    assert_eq!(
                        held,
                        Some(e),
                        "new leader {} of term {} lacks entry {index}",
                        r.id(),
                        r.term()
                    );
                }
            }
            let prior = *self.leaders.entry(r.term()).or_insert(r.id());
            assert_eq!(prior, r.id(), "two leaders in term {}", r.term());
        }
        r.check_invariants();
    }

    fn step(&mut self) {
        self.now_ms += self.rng.gen_range(1..5);
        let now = self.now_ms;
        let (due, later): (Vec<_>, Vec<_>) = self.network.drain(..).partition(|(t, _)| *t <= now);
        self.network = later;
        for (_, m) in due {
            let k = m.to as usize - 1;
            self.nodes[k].step(m, now);
            self.drain(k);
        }
        for k in 0..self.nodes.len() {
            self.nodes[k].tick(now);
            if self.rng.gen_bool(0.5) && !self.writing[k].is_empty() {
                let batch = self.writing[k].remove(0);
                self.disks[k].write(&batch);
                self.nodes[k].on_persisted(batch.token, now);
                self.send(batch.messages);
            }
            if self.nodes[k].role() == Role::Leader && self.rng.gen_bool(0.3) {
                let data = self.rng.gen::<u32>().to_le_bytes().to_vec();
                let _ = self.nodes[k].propose(data, now);
                self.read(k);
            }
            if self.rng.gen_bool(0.1) {
                self.read(k);
            }
            if self.faults && self.rng.gen_bool(0.002) {
                self.crash(k);
            }
            self.drain(k);
        }
    }

    /// Asks member `k` (leader or follower) for a linearizable read.
    fn read(&mut self, k: usize) {
        let read_id = self.next_read;
        self.next_read += 1;
        let issued_after = self.applied.keys().next_back().copied().unwrap_or(0);
        if self.nodes[k].read_index(read_id, self.now_ms).is_ok() {
            self.reads.insert((k, read_id), issued_after);
        }
    }

    /// Prints every member's state, to explain a failed liveness check.
    fn dump(&self) {
        for r in &self.nodes {
            eprintln!(
                "{:?} durable {} voted {:?}",
                r.status(),
                r.durable_index(),
                r.voted_for()
            );
            for (id, pr) in &r.progress {
                eprintln!("  {id}: {pr:?}");
            }
        }
        eprintln!(
            "unwritten batches {:?}",
            self.writing.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    /// Kill member `k`: unwritten batches are lost; restart from its disk.
    fn crash(&mut self, k: usize) {
        self.writing[k].clear();
        self.reads.retain(|&(member, _), _| member != k);
        let disk = &self.disks[k];
        let initial = InitialState {
            hard_state: disk.hard_state,
            log_base: LogPosition::default(),
            entries: disk.entries.clone(),
            membership: None,
        };
        let n = self.nodes.len() as u64;
        self.nodes[k] = Raft::new(
            config(k as u64 + 1, n),
            initial,
            self.rng.gen(),
            self.now_ms,
        );
    }
}

#[test]
fn randomized_clusters_stay_safe_under_faults_and_make_progress_when_healed() {
    for seed in 0..150 {
        let n = [1, 3, 5][seed as usize % 3];
        let mut c = Cluster::new(n, seed);
        for _ in 0..3000 {
            c.step();
        }
        c.faults = false;
        let before = c.applied.len();
        let served_before = c.served_by_followers;
        for _ in 0..2000 {
            c.step();
        }
        if c.applied.len() <= before + 10 {
            c.dump();
        }
        assert!(
            c.applied.len() > before + 10,
            "seed {seed}: no progress once healed ({before} -> {})",
            c.applied.len()
        );
        if n > 1 {
            assert!(
                c.served_by_followers > served_before + 10,
                "seed {seed}: followers served no reads once healed"
            );
        }
    }
}

//! A linearizability checker for histories of a key-value register, per key.
//!
//! The search is Wing & Gong's, with Lowe's memoization (as in Porcupine): repeatedly
//! pick an operation that may go next — one invoked before every pending operation's
//! response — apply it to the model, and backtrack on a contradiction. A set of
//! (linearized operations, model state) pairs already explored cuts the search.
//! Keys are independent registers, so each key's sub-history is checked alone
//! (P-compositionality, Herlihy & Wing), which keeps the bitsets small.
//!
//! Operations whose outcome is unknown (the client gave up, the node said "outcome
//! unknown") have an infinite response time and may be linearized anywhere after their
//! invocation, or never. Operations that failed definitely had no effect and are
//! skipped.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Set the value.
    Put(String),
    /// Read the value.
    Get,
    /// Remove the value.
    Delete,
    /// Replace the value by `new` if it is `expected` (`None`: if absent).
    Cas {
        /// The value required.
        expected: Option<String>,
        /// The replacement.
        new: String,
    },
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A put or delete was acknowledged.
    Ok,
    /// A read returned this.
    Value(Option<String>),
    /// A cas matched and swapped.
    Swapped,
    /// A cas found this value instead and changed nothing.
    Mismatch(Option<String>),
    /// A definite failure: the operation had no effect.
    Failed,
    /// No definite answer: it may have taken effect at any point after its
    /// invocation, or never.
    Unknown,
}

/// One operation of a history. Times are from one monotonic clock, in any unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Which client (for printing).
    pub client: usize,
    /// The key.
    pub key: String,
    /// When it was invoked.
    pub call: u64,
    /// When its answer arrived (ignored for `Unknown`, whose response is at infinity).
    pub ret: u64,
    /// The request.
    pub input: Input,
    /// The answer.
    pub output: Output,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ret = match self.output {
            Output::Unknown => "inf".to_string(),
            _ => format!("{:.3}", self.ret as f64 / 1e6),
        };
        let input = match &self.input {
            Input::Put(v) => format!("put {v}"),
            Input::Get => "get".to_string(),
            Input::Delete => "delete".to_string(),
            Input::Cas { expected, new } => format!("cas {expected:?} -> {new}"),
        };
        write!(
            f,
            "[{:>9.3} .. {:>9}] c{:<2} {:<32} => {:?}",
            self.call as f64 / 1e6,
            ret,
            self.client,
            input,
            self.output
        )
    }
}

/// Why a key's history is not linearizable.
#[derive(Debug)]
pub struct Violation {
    /// The key.
    pub key: String,
    /// Its operations, by invocation time.
    pub history: Vec<Operation>,
    /// The longest sequence of operations (indexes into `history`) the search could
    /// linearize before every continuation contradicted the model.
    pub longest_prefix: Vec<usize>,
    /// True if the search gave up after [`MAX_STEPS`] rather than exhausting every
    /// order: the history is then not proven wrong, only too hard to check.
    pub gave_up: bool,
}

/// Most search steps per key. A valid history mostly goes straight through; an
/// invalid one with many unknown-outcome writes can take exponentially long to
/// refute, and a test should report rather than hang.
pub const MAX_STEPS: u64 = 20_000_000;

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {:?} is not linearizable ({} operations; times in s){}",
            self.key,
            self.history.len(),
            if self.gave_up {
                " — or too hard to decide: the search gave up"
            } else {
                ""
            }
        )?;
        // The interesting part is where the search got stuck: the first operation it
        // could not place, with some context before it.
        let mut placed = vec![false; self.history.len()];
        for &i in &self.longest_prefix {
            placed[i] = true;
        }
        let stuck = placed.iter().position(|&p| !p).unwrap_or(0);
        let (from, to) = (
            stuck.saturating_sub(20),
            (stuck + 40).min(self.history.len()),
        );
        writeln!(
            f,
            "operations #{from}..#{to} (* = in the longest linearizable prefix):"
        )?;
        for (i, op) in self.history.iter().enumerate().take(to).skip(from) {
            let mark = if placed[i] { '*' } else { ' ' };
            writeln!(f, " {mark}#{i:<5} {op}")?;
        }
        write!(f, "longest prefix, last 20 steps:")?;
        let mut state: Option<&str> = None;
        let skip = self.longest_prefix.len().saturating_sub(20);
        for (n, &i) in self.longest_prefix.iter().enumerate() {
            let op = &self.history[i];
            state = match &op.input {
                Input::Put(v) => Some(v),
                Input::Delete => None,
                Input::Cas { expected, new } if expected.as_deref() == state => Some(new),
                _ => state,
            };
            if n >= skip {
                write!(f, "\n  #{i:<5} then value = {state:?}")?;
            }
        }
        writeln!(f)
    }
}

/// Checks every key's sub-history; returns the first violation found.
pub fn check(history: &[Operation]) -> Result<(), Box<Violation>> {
    let mut by_key: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op.clone());
    }
    for (key, mut ops) in by_key {
        ops.sort_by_key(|op| op.call);
        if let Err((longest_prefix, gave_up)) = check_key(&ops) {
            return Err(Box::new(Violation {
                key: key.to_string(),
                history: ops,
                longest_prefix,
                gave_up,
            }));
        }
    }
    Ok(())
}

/// An operation in the search's terms: values interned, unknown responses infinite.
struct Op {
    call: u64,
    ret: u64,
    kind: Kind,
    /// Must be linearized (a definite answer) rather than may.
    definite: bool,
}

/// The model transition of one operation; `None` for values: absent.
#[derive(Clone, Copy)]
enum Kind {
    Write(Option<u32>),
    Read(Option<u32>),
    Cas {
        expected: Option<u32>,
        new: u32,
        /// `None`: unknown outcome; `Some(true)`: swapped; `Some(false)`: mismatch.
        swapped: Option<bool>,
        /// On a mismatch, the value the cas reported.
        current: Option<u32>,
    },
    /// A definite failure or an unknown read: no effect, nothing to check.
    Nothing,
}

/// The model state after `kind` from `state`, or `None` if `kind`'s answer
/// contradicts `state`.
fn step(state: Option<u32>, kind: Kind) -> Option<Option<u32>> {
    match kind {
        Kind::Write(v) => Some(v),
        Kind::Read(v) => (v == state).then_some(state),
        Kind::Cas {
            expected,
            new,
            swapped,
            current,
        } => match (expected == state, swapped) {
            (true, Some(true) | None) => Some(Some(new)),
            (false, Some(false)) => (current == state).then_some(state),
            // Linearizing an unknown cas as a mismatch equals leaving it out.
            _ => None,
        },
        Kind::Nothing => None,
    }
}

/// Interns the values of `ops` and converts them; drops operations without effect.
fn prepare(ops: &[Operation]) -> (Vec<Op>, Vec<usize>) {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut id = |v: &Option<String>| -> Option<u32> {
        v.as_ref().map(|s| {
            let next = ids.len() as u32;
            *ids.entry(s.clone()).or_insert(next)
        })
    };
    let mut out = Vec::new();
    let mut origin = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let unknown = op.output == Output::Unknown;
        let kind = match (&op.input, &op.output) {
            (_, Output::Failed) | (Input::Get, Output::Unknown) => Kind::Nothing,
            (Input::Put(v), _) => Kind::Write(id(&Some(v.clone()))),
            (Input::Delete, _) => Kind::Write(None),
            (Input::Get, Output::Value(v)) => Kind::Read(id(v)),
            (Input::Cas { expected, new }, out) => Kind::Cas {
                expected: id(expected),
                new: id(&Some(new.clone())).unwrap_or(0),
                swapped: match out {
                    Output::Swapped => Some(true),
                    Output::Mismatch(_) => Some(false),
                    _ => None,
                },
                current: match out {
                    Output::Mismatch(c) => id(c),
                    _ => None,
                },
            },
            // A get answered Ok/Swapped/...: an impossible answer, so no state fits.
            (Input::Get, _) => Kind::Read(Some(u32::MAX)),
        };
        if matches!(kind, Kind::Nothing) {
            continue;
        }
        out.push(Op {
            call: op.call,
            ret: if unknown { u64::MAX } else { op.ret },
            kind,
            definite: !unknown,
        });
        origin.push(i);
    }
    drop_unobserved_unknown_writes(out, origin)
}

/// Drops unknown-outcome writes of a value no operation ever observes (read, found by
/// a cas, or expected by a cas). Leaving such a write out is always at least as good
/// as placing it: every check of the model compares the state with an observed value,
/// so until the next write nothing can depend on the unobserved one. Without this,
/// each unknown write doubles the orders a refuted branch has to try.
fn drop_unobserved_unknown_writes(ops: Vec<Op>, origin: Vec<usize>) -> (Vec<Op>, Vec<usize>) {
    let mut observed: HashSet<u32> = HashSet::new();
    for op in &ops {
        match op.kind {
            Kind::Read(Some(v)) => {
                observed.insert(v);
            }
            Kind::Cas {
                expected, current, ..
            } => {
                observed.extend(expected);
                observed.extend(current);
            }
            _ => {}
        }
    }
    let useful = |op: &Op| match op.kind {
        _ if op.definite => true,
        Kind::Write(Some(v)) | Kind::Cas { new: v, .. } => observed.contains(&v),
        _ => true,
    };
    ops.into_iter()
        .zip(origin)
        .filter(|(op, _)| useful(op))
        .unzip()
}

/// A fixed-size set of operation indexes, with a Zobrist hash of its members (the
/// XOR of one random 128-bit key per member), so the memo stores 16 bytes per state
/// instead of the whole set and updates it in O(1). Two different sets collide with
/// probability about 2^-128 per pair.
struct Bits {
    words: Vec<u64>,
    keys: Vec<u128>,
    hash: u128,
}

impl Bits {
    fn new(n: usize) -> Bits {
        // A fixed seed: the check is deterministic.
        let mut rng = SmallRng::seed_from_u64(0x5eed);
        Bits {
            words: vec![0; n.div_ceil(64)],
            keys: (0..n).map(|_| rng.gen()).collect(),
            hash: 0,
        }
    }
    fn has(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }
    fn flip(&mut self, i: usize) {
        self.words[i / 64] ^= 1 << (i % 64);
        self.hash ^= self.keys[i];
    }
}

/// One level of the depth-first search.
struct Frame {
    /// Operations that may go next here, most promising first.
    candidates: Vec<usize>,
    /// The next candidate to try.
    next: usize,
    /// The operation linearized to reach this level, and the state before it.
    via: Option<(usize, Option<u32>)>,
    /// Every operation before this index was linearized at this level.
    first_undone: usize,
}

/// Where the next level's scan may start.
fn frame_from(stack: &[Frame]) -> usize {
    stack.last().map_or(0, |f| f.first_undone)
}

/// Searches for a linearization of one key's operations (sorted by call). On failure
/// returns the longest prefix found, as indexes into `ops`, and whether the search
/// gave up.
fn check_key(ops: &[Operation]) -> Result<(), (Vec<usize>, bool)> {
    let (ops, origin) = prepare(ops);
    let mut done = Bits::new(ops.len());
    let mut state: Option<u32> = None;
    let mut definite_left = ops.iter().filter(|o| o.definite).count();
    let mut seen: HashSet<(u128, Option<u32>)> = HashSet::new();
    let mut path: Vec<usize> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let (list, first_undone) = candidates(&ops, &done, state, 0);
    let mut stack = vec![Frame {
        candidates: list,
        next: 0,
        via: None,
        first_undone,
    }];
    let mut steps = 0u64;
    while definite_left > 0 {
        steps += 1;
        let gave_up = steps > MAX_STEPS;
        let Some(frame) = stack.last_mut().filter(|_| !gave_up) else {
            let longest = longest.iter().map(|&i| origin[i]).collect();
            return Err((longest, gave_up));
        };
        let mut chosen = None;
        while frame.next < frame.candidates.len() {
            let c = frame.candidates[frame.next];
            frame.next += 1;
            if let Some(after) = step(state, ops[c].kind) {
                done.flip(c);
                if seen.insert((done.hash, after)) {
                    chosen = Some((c, after));
                    break;
                }
                done.flip(c);
            }
        }
        match chosen {
            Some((c, after)) => {
                let before = state;
                state = after;
                definite_left -= ops[c].definite as usize;
                path.push(c);
                // Everything before the parent's first undone operation stays done.
                let (list, first_undone) = candidates(&ops, &done, state, frame_from(&stack));
                stack.push(Frame {
                    candidates: list,
                    next: 0,
                    via: Some((c, before)),
                    first_undone,
                });
            }
            None => {
                if path.len() > longest.len() {
                    longest = path.clone();
                }
                let frame = stack.pop().expect("the stack is not empty here");
                if let Some((c, before)) = frame.via {
                    done.flip(c);
                    state = before;
                    definite_left += ops[c].definite as usize;
                    path.pop();
                }
            }
        }
    }
    Ok(())
}

/// The operations that may be linearized next: not yet linearized and invoked no
/// later than the earliest response among those not yet linearized (ties count as
/// concurrent). A read-only operation that fits `state` goes alone: linearizing it
/// now changes nothing and only relaxes what is left.
/// Also returns the first operation at or after `from` not yet linearized.
fn candidates(ops: &[Op], done: &Bits, state: Option<u32>, from: usize) -> (Vec<usize>, usize) {
    // Ops are sorted by call and ret >= call, so once a call passes the running
    // minimum response no later op can lower it: one pass finds both.
    let first_undone = (from..ops.len())
        .find(|&i| !done.has(i))
        .unwrap_or(ops.len());
    let mut horizon = u64::MAX;
    let mut out: Vec<usize> = Vec::new();
    for (i, op) in ops.iter().enumerate().skip(first_undone) {
        if done.has(i) {
            continue;
        }
        if op.call > horizon {
            break;
        }
        horizon = horizon.min(op.ret);
        out.push(i);
    }
    out.retain(|&i| ops[i].call <= horizon);
    let harmless = out.iter().copied().find(|&i| {
        ops[i].definite && is_read_only(ops[i].kind) && step(state, ops[i].kind).is_some()
    });
    if let Some(i) = harmless {
        return (vec![i], first_undone);
    }
    // Definite operations first: they must be placed, unknown ones only may.
    out.sort_by_key(|&i| (!ops[i].definite, ops[i].ret));
    (out, first_undone)
}

fn is_read_only(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Read(_)
            | Kind::Cas {
                swapped: Some(false),
                ..
            }
    )
}

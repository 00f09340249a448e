//! The search: depth-first over the operations that may go next, backtracking on a
//! contradiction, with a memo of (linearized set, model state) already explored.

use std::collections::HashSet;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::model::{is_read_only, prepare, step, Op};
use super::{Operation, MAX_STEPS};

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
pub(super) fn check_key(ops: &[Operation]) -> Result<(), (Vec<usize>, bool)> {
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

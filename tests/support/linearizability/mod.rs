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

//!
//! Files: this one (histories, the entry point, reports), `model.rs` (the register and
//! the history in the search's terms), `search.rs` (the memoized depth-first search).

mod model;
mod search;

use std::collections::BTreeMap;
use std::fmt;

use search::check_key;

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

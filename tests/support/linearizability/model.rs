//! The register model and the history in the search's terms: values interned to
//! numbers, unknown responses at infinity, operations without effect dropped.

use std::collections::{HashMap, HashSet};

use super::{Input, Operation, Output};

/// An operation in the search's terms: values interned, unknown responses infinite.
pub(super) struct Op {
    pub(super) call: u64,
    pub(super) ret: u64,
    pub(super) kind: Kind,
    /// Must be linearized (a definite answer) rather than may.
    pub(super) definite: bool,
}

/// The model transition of one operation; `None` for values: absent.
#[derive(Clone, Copy)]
pub(super) enum Kind {
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
pub(super) fn step(state: Option<u32>, kind: Kind) -> Option<Option<u32>> {
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
pub(super) fn prepare(ops: &[Operation]) -> (Vec<Op>, Vec<usize>) {
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

pub(super) fn is_read_only(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Read(_)
            | Kind::Cas {
                swapped: Some(false),
                ..
            }
    )
}

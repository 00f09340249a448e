//! The linearizability checker's own tests: hand-made valid and invalid histories of
//! one register per key, and random valid histories built from a real linearization.

mod support;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::linearizability::{check, Input, Operation, Output};

/// An operation on key "k" by client 0 over [call, ret].
fn op(call: u64, ret: u64, input: Input, output: Output) -> Operation {
    Operation {
        client: 0,
        key: "k".to_string(),
        call,
        ret,
        input,
        output,
    }
}

fn put(call: u64, ret: u64, v: &str) -> Operation {
    op(call, ret, Input::Put(v.into()), Output::Ok)
}

fn put_unknown(call: u64, v: &str) -> Operation {
    op(call, 0, Input::Put(v.into()), Output::Unknown)
}

fn get(call: u64, ret: u64, v: Option<&str>) -> Operation {
    op(call, ret, Input::Get, Output::Value(v.map(str::to_string)))
}

fn cas(call: u64, ret: u64, expected: Option<&str>, new: &str, output: Output) -> Operation {
    let input = Input::Cas {
        expected: expected.map(str::to_string),
        new: new.into(),
    };
    op(call, ret, input, output)
}

fn mismatch(v: Option<&str>) -> Output {
    Output::Mismatch(v.map(str::to_string))
}

fn valid(history: &[Operation]) {
    if let Err(v) = check(history) {
        panic!("a valid history was rejected:\n{v}");
    }
}

fn invalid(history: &[Operation]) {
    assert!(
        check(history).is_err(),
        "an invalid history was accepted: {history:#?}"
    );
}

#[test]
fn a_sequential_history_of_every_operation_is_valid() {
    valid(&[
        get(0, 1, None),
        put(2, 3, "a"),
        get(4, 5, Some("a")),
        op(6, 7, Input::Delete, Output::Ok),
        get(8, 9, None),
        cas(10, 11, None, "b", Output::Swapped),
        cas(12, 13, Some("a"), "c", mismatch(Some("b"))),
        cas(14, 15, Some("b"), "c", Output::Swapped),
        get(16, 17, Some("c")),
    ]);
}

#[test]
fn a_stale_read_is_rejected() {
    invalid(&[put(0, 1, "a"), put(2, 3, "b"), get(4, 5, Some("a"))]);
}

#[test]
fn a_lost_write_is_rejected() {
    invalid(&[put(0, 1, "a"), get(2, 3, None)]);
    // Also after a restart: the final read comes last and must see the write.
    invalid(&[put(0, 1, "a"), put(2, 3, "b"), get(100, 101, Some("a"))]);
}

#[test]
fn a_value_that_was_never_written_is_rejected() {
    invalid(&[put(0, 1, "a"), get(2, 3, Some("z"))]);
}

#[test]
fn an_unknown_write_may_appear_later_or_never() {
    valid(&[put_unknown(0, "a"), get(5, 6, Some("a"))]);
    valid(&[put_unknown(0, "a"), get(5, 6, None)]);
    valid(&[put_unknown(0, "a"), get(2, 3, None), get(5, 6, Some("a"))]);
    // Long after the client gave up, it may still take effect.
    valid(&[
        put_unknown(0, "a"),
        put(2, 3, "b"),
        get(1000, 1001, Some("a")),
    ]);
}

#[test]
fn an_unknown_write_takes_effect_at_most_once_and_never_before_its_call() {
    invalid(&[
        put_unknown(0, "a"),
        get(2, 3, Some("a")),
        put(4, 5, "b"),
        get(6, 7, Some("a")),
    ]);
    invalid(&[get(0, 1, Some("a")), put_unknown(2, "a")]);
}

#[test]
fn a_definitely_failed_write_has_no_effect() {
    invalid(&[
        op(0, 1, Input::Put("a".into()), Output::Failed),
        get(2, 3, Some("a")),
    ]);
    valid(&[
        op(0, 1, Input::Put("a".into()), Output::Failed),
        get(2, 3, None),
    ]);
}

#[test]
fn concurrent_operations_may_take_effect_in_either_order() {
    // put b and put a overlap each other and both reads.
    valid(&[
        put(0, 10, "a"),
        put(1, 9, "b"),
        get(2, 3, Some("b")),
        get(4, 5, Some("a")),
    ]);
    // A read concurrent with a write may see either the old or the new value...
    valid(&[put(0, 1, "a"), put(2, 6, "b"), get(3, 4, Some("a"))]);
    valid(&[put(0, 1, "a"), put(2, 6, "b"), get(3, 4, Some("b"))]);
    // ...but once a later read saw the new one, no read after it sees the old one.
    invalid(&[
        put(0, 1, "a"),
        put(2, 10, "b"),
        get(3, 4, Some("b")),
        get(5, 6, Some("a")),
    ]);
    invalid(&[
        put(0, 10, "a"),
        put(1, 9, "b"),
        get(2, 3, Some("b")),
        get(4, 5, Some("a")),
        get(6, 7, Some("b")),
    ]);
}

#[test]
fn cas_semantics() {
    // Two swaps from absent cannot both succeed without a delete between.
    invalid(&[
        cas(0, 5, None, "x", Output::Swapped),
        cas(1, 6, None, "y", Output::Swapped),
    ]);
    valid(&[
        cas(0, 5, None, "x", Output::Swapped),
        cas(1, 6, None, "y", mismatch(Some("x"))),
    ]);
    // A mismatch must report the value it found.
    invalid(&[
        put(0, 1, "a"),
        cas(2, 3, Some("b"), "c", mismatch(Some("z"))),
    ]);
    // A mismatch when the value matched is wrong.
    invalid(&[
        put(0, 1, "a"),
        cas(2, 3, Some("a"), "c", mismatch(Some("a"))),
    ]);
    // An unknown cas takes effect only if its expectation held at that point.
    valid(&[
        put(0, 1, "a"),
        cas(2, 0, Some("a"), "b", Output::Unknown),
        get(5, 6, Some("b")),
    ]);
    invalid(&[
        put(0, 1, "a"),
        cas(2, 0, Some("q"), "b", Output::Unknown),
        get(5, 6, Some("b")),
    ]);
}

#[test]
fn keys_are_independent_registers() {
    let mut other = put(0, 1, "a");
    other.key = "other".into();
    valid(&[other.clone(), get(2, 3, None)]);
    let mut read_other = get(2, 3, Some("a"));
    read_other.key = "other".into();
    valid(&[other, read_other, get(4, 5, None)]);
}

/// A random history of `len` operations built around a real sequential run: each
/// operation's interval surrounds its linearization point and overlaps neighbours.
fn random_history(seed: u64, len: u64) -> Vec<Operation> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut state: Option<String> = None;
    let mut history = Vec::new();
    for n in 0..len {
        let point = n * 10 + 5;
        let call = point - rng.gen_range(0..=40).min(point);
        let ret = point + rng.gen_range(0..=40);
        let v = format!("v{}", rng.gen_range(0..4));
        let (input, output) = match rng.gen_range(0..6) {
            0 | 1 => {
                state = Some(v.clone());
                (Input::Put(v), Output::Ok)
            }
            2 => (Input::Get, Output::Value(state.clone())),
            3 => {
                state = None;
                (Input::Delete, Output::Ok)
            }
            4 if rng.gen_bool(0.3) => {
                // The client never learned the outcome; half of them took effect.
                let v = format!("u{n}");
                if rng.gen_bool(0.5) {
                    state = Some(v.clone());
                }
                (Input::Put(v), Output::Unknown)
            }
            _ => {
                let expected = rng
                    .gen_bool(0.5)
                    .then(|| format!("v{}", rng.gen_range(0..4)));
                let input = Input::Cas {
                    expected: expected.clone(),
                    new: v.clone(),
                };
                if expected == state {
                    state = Some(v);
                    (input, Output::Swapped)
                } else {
                    (input, Output::Mismatch(state.clone()))
                }
            }
        };
        history.push(op(call, ret, input, output));
    }
    history
}

/// Random valid histories are accepted; a read of a never-written value at the end
/// makes them invalid.
#[test]
fn random_histories_built_from_a_linearization_are_accepted() {
    for seed in 0..200u64 {
        let mut history = random_history(seed, 60);
        valid(&history);
        history.push(get(10_000, 10_001, Some("never written")));
        invalid(&history);
    }
}

/// The memo and the scan stay cheap on one long key history (a long nemesis run).
#[test]
fn a_long_history_of_one_key_is_checked() {
    let mut history = random_history(7, 50_000);
    valid(&history);
    // Refuting it means trying the unknown writes that were observed in every order
    // the real-time constraints allow.
    history.push(get(10_000_000, 10_000_001, Some("never written")));
    invalid(&history);
}

//! Unit tests of the state machine: command semantics, exactly-once, sessions,
//! snapshots.

use super::*;

fn put(key: &str, value: &str) -> Command {
    Command::Put {
        key: key.to_string(),
        value: value.to_string(),
    }
}

fn del(key: &str) -> Command {
    Command::Delete {
        key: key.to_string(),
    }
}

fn cas(key: &str, expected: Option<&str>, new: &str) -> Command {
    Command::Cas {
        key: key.to_string(),
        expected: expected.map(str::to_string),
        new: new.to_string(),
    }
}

fn payload(client_id: u64, seq: u64, command: Command) -> Vec<u8> {
    encode_request(&Request {
        client_id,
        seq,
        command,
    })
}

/// Applies `command` at the next index for `client_id`/`seq`.
fn apply(kv: &mut KvStore, client_id: u64, seq: u64, command: Command) -> CommandResult {
    let index = kv.applied_index() + 1;
    match kv.apply(index, &payload(client_id, seq, command)) {
        Ok(result) => result,
        Err(e) => panic!("apply at {index} failed: {e}"),
    }
}

#[test]
fn request_round_trips_through_encoding() {
    let request = Request {
        client_id: 7,
        seq: 3,
        command: cas("k", None, "v"),
    };
    assert_eq!(decode_request(&encode_request(&request)), Ok(request));
}

#[test]
fn put_get_delete() {
    let mut kv = KvStore::new();
    assert_eq!(apply(&mut kv, 1, 1, put("a", "1")), CommandResult::Put);
    assert_eq!(kv.get("a"), Some("1"));
    assert_eq!(apply(&mut kv, 1, 2, put("a", "2")), CommandResult::Put);
    assert_eq!(kv.get("a"), Some("2"));
    assert_eq!(kv.len(), 1);
    let deleted = apply(&mut kv, 1, 3, del("a"));
    assert_eq!(deleted, CommandResult::Deleted { existed: true });
    assert_eq!(kv.get("a"), None);
    let deleted = apply(&mut kv, 1, 4, del("a"));
    assert_eq!(deleted, CommandResult::Deleted { existed: false });
    assert!(kv.is_empty());
    assert_eq!(kv.applied_index(), 4);
}

#[test]
fn cas_swaps_only_on_match() {
    let mut kv = KvStore::new();
    assert_eq!(
        apply(&mut kv, 1, 1, cas("k", None, "a")),
        CommandResult::CasOk
    );
    assert_eq!(kv.get("k"), Some("a"));
    let absent_only = apply(&mut kv, 1, 2, cas("k", None, "b"));
    let found_a = CommandResult::CasMismatch {
        current: Some("a".to_string()),
    };
    assert_eq!(absent_only, found_a);
    assert_eq!(apply(&mut kv, 1, 3, cas("k", Some("x"), "b")), found_a);
    assert_eq!(kv.get("k"), Some("a"));
    assert_eq!(
        apply(&mut kv, 1, 4, cas("k", Some("a"), "b")),
        CommandResult::CasOk
    );
    assert_eq!(kv.get("k"), Some("b"));
    let on_missing = apply(&mut kv, 1, 5, cas("gone", Some("b"), "c"));
    assert_eq!(on_missing, CommandResult::CasMismatch { current: None });
    assert_eq!(kv.get("gone"), None);
}

#[test]
fn duplicate_seq_returns_saved_result_without_applying() {
    let mut kv = KvStore::new();
    assert_eq!(
        apply(&mut kv, 9, 1, cas("k", None, "first")),
        CommandResult::CasOk
    );
    apply(&mut kv, 2, 1, put("k", "other"));
    // A retry of client 9's seq 1 must not run the CAS again (it would now mismatch)
    // and must not touch the map.
    assert_eq!(
        apply(&mut kv, 9, 1, cas("k", None, "first")),
        CommandResult::CasOk
    );
    assert_eq!(kv.get("k"), Some("other"));
    assert_eq!(kv.applied_index(), 3);
}

#[test]
fn older_seq_is_refused_as_stale() {
    let mut kv = KvStore::new();
    apply(&mut kv, 5, 1, put("k", "1"));
    apply(&mut kv, 5, 4, put("k", "4")); // gaps are allowed
    let err = kv.apply(3, &payload(5, 2, put("k", "2")));
    let stale = KvErrorKind::StaleRequest {
        client_id: 5,
        seq: 2,
        last_seq: 4,
    };
    assert_eq!(err.map_err(|e| e.kind().clone()), Err(stale));
    assert_eq!(kv.get("k"), Some("4"));
    assert_eq!(kv.applied_index(), 3);
}

#[test]
fn undecodable_payload_changes_only_applied_index() {
    let mut kv = KvStore::new();
    apply(&mut kv, 1, 1, put("k", "v"));
    let before = kv.snapshot();
    let err = kv.apply(2, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        err.as_ref().map_err(KvError::kind),
        Err(KvErrorKind::BadRequest(_))
    ));
    assert_eq!(kv.applied_index(), 2);
    let mut expected = KvStore::restore(&before).expect("own snapshot restores");
    expected.apply_noop(2);
    assert_eq!(kv, expected);
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = payload(1, 1, put("k", "v"));
    bytes.push(0);
    assert!(decode_request(&bytes).is_err());
}

#[test]
fn noop_only_advances_applied_index() {
    let mut kv = KvStore::new();
    kv.apply_noop(1);
    assert_eq!(kv.applied_index(), 1);
    assert!(kv.is_empty());
    assert_eq!(kv.session_count(), 0);
}

#[test]
#[should_panic(expected = "applying index 3 after applied index 1")]
fn applying_out_of_order_panics() {
    let mut kv = KvStore::new();
    kv.apply_noop(1);
    kv.apply_noop(3);
}

#[test]
fn session_cap_evicts_least_recently_used() {
    let mut kv = KvStore::with_max_sessions(2);
    apply(&mut kv, 1, 1, put("a", "1")); // index 1
    apply(&mut kv, 2, 1, put("b", "1")); // index 2
    apply(&mut kv, 1, 1, put("a", "1")); // index 3: a retry counts as a use of client 1
    apply(&mut kv, 3, 1, put("c", "1")); // index 4: evicts client 2 (last use 2)
    assert_eq!(kv.session_count(), 2);
    // Client 1 is still remembered: its retry is answered, not applied.
    assert_eq!(
        apply(&mut kv, 1, 1, put("a", "changed")),
        CommandResult::Put
    );
    assert_eq!(kv.get("a"), Some("1"));
    // Client 2 was evicted, so its old seq is applied afresh (the documented cost).
    apply(&mut kv, 2, 1, put("b", "2"));
    assert_eq!(kv.get("b"), Some("2"));
    assert_eq!(kv.session_count(), 2);
}

#[test]
fn delayed_request_of_an_evicted_session_is_refused_as_expired() {
    let mut kv = KvStore::with_max_sessions(1);
    apply(&mut kv, 1, 1, put("k", "1")); // index 1
    let delayed = payload(1, 2, put("k", "2")); // sent, then held up in the network
    apply(&mut kv, 1, 3, put("k", "3")); // index 2: the client moved on
    apply(&mut kv, 2, 1, put("other", "x")); // index 3: evicts client 1
                                             // The delayed seq 2 must not be applied over seq 3 (out of order): client 1 has
                                             // no session now, and a seq above 1 cannot open one.
    let got = kv.apply(4, &delayed).map_err(|e| e.kind().clone());
    let expired = KvErrorKind::SessionExpired {
        client_id: 1,
        seq: 2,
    };
    assert_eq!(got, Err(expired));
    assert_eq!(kv.get("k"), Some("3"));
    assert_eq!(kv.applied_index(), 4);
    assert_eq!(kv.session_count(), 1);
}

#[test]
fn first_request_of_an_unknown_client_opens_a_session() {
    let mut kv = KvStore::new();
    assert_eq!(apply(&mut kv, 7, 1, put("k", "v")), CommandResult::Put);
    assert_eq!(kv.session_count(), 1);
}

#[test]
fn saved_results_are_bounded_by_bytes() {
    // Forty clients each save a CAS mismatch that holds a 1 MiB current value: 40 MiB
    // of saved results, over the default byte bound, so the oldest are evicted.
    let mut kv = KvStore::new();
    let big = "v".repeat(1 << 20);
    apply(&mut kv, 1, 1, put("k", &big));
    for client in 2..42 {
        let result = apply(&mut kv, client, 1, cas("k", Some("other"), "x"));
        assert!(matches!(result, CommandResult::CasMismatch { .. }));
    }
    let bound = DEFAULT_MAX_SESSION_BYTES as usize;
    assert!(kv.session_bytes() <= DEFAULT_MAX_SESSION_BYTES);
    assert!(
        kv.session_count() < 41,
        "{} sessions kept",
        kv.session_count()
    );
    let snapshot = kv.snapshot().len();
    assert!(
        snapshot < bound + (2 << 20),
        "snapshot of {snapshot} bytes holds more than the {bound} byte session bound"
    );
    // The newest sessions are the ones kept: the last client's retry is answered.
    let retried = apply(&mut kv, 41, 1, cas("k", Some("other"), "x"));
    assert!(matches!(retried, CommandResult::CasMismatch { .. }));
    assert_eq!(kv.get("k").map(str::len), Some(1 << 20));
}

#[test]
fn a_session_larger_than_the_byte_bound_alone_is_still_kept() {
    let mut kv = KvStore::with_limits(10, 100);
    apply(&mut kv, 1, 1, put("k", &"v".repeat(500)));
    apply(&mut kv, 2, 1, cas("k", None, "x")); // saves 500 bytes: evicts client 1
    assert_eq!(kv.session_count(), 1);
    let retried = apply(&mut kv, 2, 1, cas("k", None, "x"));
    assert!(matches!(retried, CommandResult::CasMismatch { .. }));
    let restored = KvStore::restore(&kv.snapshot()).expect("own snapshot restores");
    assert_eq!(restored, kv);
}

#[test]
fn snapshot_restore_round_trip() {
    let mut kv = KvStore::with_max_sessions(3);
    apply(&mut kv, 1, 1, put("a", "1"));
    apply(&mut kv, 2, 1, cas("b", None, "2"));
    apply(&mut kv, 1, 2, del("a"));
    kv.apply_noop(4);
    let bytes = kv.snapshot();
    let mut restored = KvStore::restore(&bytes).expect("snapshot restores");
    assert_eq!(restored, kv);
    assert_eq!(
        restored.snapshot(),
        bytes,
        "snapshot encoding is not canonical"
    );
    // Sessions survived: a retry after restore returns the saved result.
    let retried = apply(&mut restored, 2, 1, cas("b", None, "other"));
    assert_eq!(retried, CommandResult::CasOk);
    assert_eq!(restored.get("b"), Some("2"));
}

#[test]
fn corrupt_snapshots_are_refused() {
    let mut kv = KvStore::new();
    apply(&mut kv, 1, 1, put("a", "1"));
    let bytes = kv.snapshot();
    for cut in 0..bytes.len() {
        assert!(
            KvStore::restore(&bytes[..cut]).is_err(),
            "prefix {cut} accepted"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(KvStore::restore(&longer).is_err());
    for format in [1, 4] {
        // 1: before the session byte bound; 4: not yet defined.
        let mut wrong_format = bytes.clone();
        wrong_format[0] = format;
        let err = KvStore::restore(&wrong_format).expect_err("unknown format accepted");
        assert!(err.to_string().contains("unknown format"), "{err}");
    }
}

mod model {
    //! The store against a straightforward model of the session policy, over random
    //! histories of retries, stale duplicates, garbage and snapshot/restore.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// One log entry of a random history.
    #[derive(Clone, Debug)]
    enum Op {
        /// Client `client` sends its next write.
        Fresh(u64, Command),
        /// Client `client` retries its last write (or an older one if `back` > 0).
        Again(u64, u64),
        Noop,
        Garbage(Vec<u8>),
        /// Replace the store by its snapshot's restoration.
        Restore,
    }

    fn command() -> impl Strategy<Value = Command> {
        let key = "[ab]";
        let value = proptest::option::of("[xy]");
        prop_oneof![
            (key, "[xy]").prop_map(|(k, v)| put(&k, &v)),
            key.prop_map(|k| del(&k)),
            (key, value, "[xy]").prop_map(|(k, e, n)| cas(&k, e.as_deref(), &n)),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3u64, command()).prop_map(|(c, cmd)| Op::Fresh(c, cmd)),
            2 => (0..3u64, 0..3u64).prop_map(|(c, back)| Op::Again(c, back)),
            1 => Just(Op::Noop),
            1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Op::Garbage),
            1 => Just(Op::Restore),
        ]
    }

    /// The model: the map, and per client every (seq, command, result) it sent.
    #[derive(Default)]
    struct Model {
        map: BTreeMap<String, String>,
        sent: BTreeMap<u64, Vec<(Command, CommandResult)>>,
    }

    impl Model {
        fn execute(&mut self, command: &Command) -> CommandResult {
            match command.clone() {
                Command::Put { key, value } => {
                    self.map.insert(key, value);
                    CommandResult::Put
                }
                Command::Delete { key } => CommandResult::Deleted {
                    existed: self.map.remove(&key).is_some(),
                },
                Command::Cas { key, expected, new } => {
                    if self.map.get(&key) == expected.as_ref() {
                        self.map.insert(key, new);
                        CommandResult::CasOk
                    } else {
                        let current = self.map.get(&key).cloned();
                        CommandResult::CasMismatch { current }
                    }
                }
                Command::Check => unreachable!("the model's histories hold no checks"),
            }
        }
    }

    proptest! {
        #[test]
        fn store_follows_the_session_model(ops in proptest::collection::vec(op(), 1..60)) {
            let mut kv = KvStore::new();
            let mut model = Model::default();
            for op in ops {
                let index = kv.applied_index() + 1;
                match op {
                    Op::Fresh(client, command) => {
                        let seq = model.sent.get(&client).map_or(0, Vec::len) as u64 + 1;
                        let got = kv.apply(index, &payload(client, seq, command.clone()));
                        let expected = model.execute(&command);
                        prop_assert_eq!(got, Ok(expected.clone()));
                        model.sent.entry(client).or_default().push((command, expected));
                    }
                    Op::Again(client, back) => {
                        let Some(sent) = model.sent.get(&client) else {
                            kv.apply_noop(index);
                            continue;
                        };
                        let back = back.min(sent.len() as u64 - 1);
                        let seq = sent.len() as u64 - back;
                        let (command, result) = sent[seq as usize - 1].clone();
                        let got = kv.apply(index, &payload(client, seq, command));
                        if back == 0 {
                            prop_assert_eq!(got, Ok(result));
                        } else {
                            let is_stale = matches!(
                                got.as_ref().map_err(KvError::kind),
                                Err(KvErrorKind::StaleRequest { .. })
                            );
                            prop_assert!(is_stale, "{:?}", got);
                        }
                    }
                    Op::Noop => kv.apply_noop(index),
                    Op::Garbage(bytes) => {
                        // Garbage may happen to decode as a request; only check that
                        // an error leaves the map alone.
                        let before = kv.clone();
                        if kv.apply(index, &bytes).is_err() {
                            let mut expected = before;
                            expected.apply_noop(index);
                            prop_assert_eq!(&kv, &expected);
                        } else {
                            return Ok(()); // the model cannot follow; stop here
                        }
                    }
                    Op::Restore => {
                        kv = KvStore::restore(&kv.snapshot()).expect("own snapshot");
                    }
                }
                let expected: Vec<(&str, &str)> =
                    model.map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let got: Vec<(&str, &str)> =
                    ["a", "b"].iter().filter_map(|k| kv.get(k).map(|v| (*k, v))).collect();
                prop_assert_eq!(got, expected);
            }
        }
    }
}

#[test]
fn restore_at_refuses_a_state_machine_at_another_index() {
    let mut kv = KvStore::new();
    apply(&mut kv, 1, 1, put("a", "1"));
    kv.apply_noop(2);
    let bytes = kv.snapshot();
    assert_eq!(KvStore::restore_at(&bytes, 2), Ok(kv));
    let err = KvStore::restore_at(&bytes, 3).map_err(|e| e.kind().clone());
    let mismatch = KvErrorKind::SnapshotPosition {
        file_index: 3,
        applied_index: 2,
    };
    assert_eq!(err, Err(mismatch));
}

/// Replaces the first occurrence of `from` in `bytes` by `to` (same length).
fn alter(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in the snapshot");
    bytes[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn snapshot_with_altered_data_is_refused() {
    let mut kv = KvStore::new();
    apply(&mut kv, 1, 1, put("k1", "hello"));
    apply(&mut kv, 1, 2, put("k2", "world"));
    let mut bytes = kv.snapshot();
    alter(&mut bytes, b"hello", b"jello");
    // Still a well-formed encoding: only the digest can tell.
    let err = KvStore::restore(&bytes).expect_err("an altered snapshot restores");
    assert!(err.to_string().contains("digest"), "{err}");
}

#[test]
fn digest_depends_only_on_the_map() {
    let mut a = KvStore::new();
    apply(&mut a, 1, 1, put("x", "1"));
    apply(&mut a, 1, 2, put("y", "2"));
    apply(&mut a, 1, 3, cas("x", Some("1"), "3"));
    apply(&mut a, 1, 4, del("y"));
    let mut b = KvStore::new();
    apply(&mut b, 2, 1, put("x", "3"));
    assert_eq!(a.digest(), b.digest());
    assert_ne!(a.digest(), KvStore::new().digest());
    let restored = KvStore::restore(&a.snapshot()).expect("own snapshot restores");
    assert_eq!(restored.digest(), a.digest());
}

#[test]
fn a_check_entry_reports_the_digest_and_changes_nothing_else() {
    let mut kv = KvStore::new();
    apply(&mut kv, 1, 1, put("k", "v"));
    let before = kv.snapshot();
    let result = kv.apply(2, &encode_check()).expect("check applies");
    assert_eq!(
        result,
        CommandResult::Checked {
            digest: kv.digest()
        }
    );
    assert_eq!(kv.session_count(), 1, "a check opened a session");
    let mut expected = KvStore::restore(&before).expect("own snapshot restores");
    expected.apply_noop(2);
    assert_eq!(kv, expected);
}

#[test]
fn data_bytes_follow_puts_and_deletes() {
    let mut kv = KvStore::new();
    apply(&mut kv, 1, 1, put("ab", "cde"));
    assert_eq!(kv.data_bytes(), 5);
    apply(&mut kv, 1, 2, put("ab", "c"));
    assert_eq!(kv.data_bytes(), 3);
    apply(&mut kv, 1, 3, del("ab"));
    assert_eq!(kv.data_bytes(), 0);
}

//! Arbitrary peer messages, terms and indexes near `u64::MAX` included, fed to a
//! member in each role: never a panic, and every invariant holds after each step.

use proptest::prelude::*;

use super::*;

/// A number that is small, near `u64::MAX`, or anything.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![0..8u64, (0..4u64).prop_map(|d| u64::MAX - d), any::<u64>()]
}

fn position() -> impl Strategy<Value = LogPosition> {
    (number(), number()).prop_map(|(term, index)| LogPosition { term, index })
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    proptest::collection::vec((number(), number()), 0..4).prop_map(|v| {
        v.into_iter()
            .map(|(term, index)| Entry {
                term,
                index,
                payload: Payload::Noop,
            })
            .collect()
    })
}

fn body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (number(), number(), any::<bool>()).prop_map(|(i, t, x)| MessageBody::RequestVote {
            last_log_index: i,
            last_log_term: t,
            leadership_transfer: x,
        }),
        Just(MessageBody::TimeoutNow),
        any::<bool>().prop_map(|g| MessageBody::RequestVoteResponse { vote_granted: g }),
        (position(), entries(), number(), number()).prop_map(|(p, e, c, r)| {
            MessageBody::AppendEntries {
                prev_log_index: p.index,
                prev_log_term: p.term,
                entries: e,
                leader_commit: c,
                read_round: r,
                check: None,
            }
        }),
        (
            any::<bool>(),
            number(),
            proptest::option::of(position()),
            number()
        )
            .prop_map(|(s, m, hint, r)| MessageBody::AppendEntriesResponse {
                success: s,
                match_index: m,
                conflict: hint.map(|h| ConflictHint {
                    term: Some(h.term).filter(|&t| t % 2 == 0),
                    first_index: h.index,
                }),
                read_round: r,
                check: None,
            }),
        (position(), number(), any::<bool>()).prop_map(|(last, offset, done)| {
            MessageBody::InstallSnapshot {
                last,
                membership: Membership::bootstrap([1, 2, 3]),
                offset,
                data: vec![0; 3],
                done,
            }
        }),
        (position(), number(), any::<bool>()).prop_map(|(last, next, done)| {
            MessageBody::InstallSnapshotResponse {
                last,
                next_offset: next,
                done,
            }
        }),
        (number(), number()).prop_map(|(i, t)| MessageBody::PreVote {
            last_log_index: i,
            last_log_term: t
        }),
        any::<bool>().prop_map(|g| MessageBody::PreVoteResponse { vote_granted: g }),
        Just(MessageBody::StaleTerm),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (1..=3u64, number(), body()).prop_map(|(from, term, body)| msg(from, 1, term, body))
}

/// Member 1 of 3 over [1, 1, 2] in `role` (0 follower, 1 candidate, 2 leader, 3
/// pre-candidate).
fn member(role: u8) -> Raft {
    match role {
        2 => leader(3, &[1, 1, 2], 2),
        _ => {
            let mut cfg = config(1, 3);
            cfg.pre_vote = role == 3;
            let mut r = node_with(cfg, &[1, 1, 2], 2);
            if role != 0 {
                let deadline = r.next_tick_ms();
                r.tick(deadline);
            }
            r
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn arbitrary_messages_never_panic_and_keep_every_invariant(
        role in 0..4u8,
        messages in proptest::collection::vec(message(), 1..12),
    ) {
        let mut r = member(role);
        for (k, m) in messages.into_iter().enumerate() {
            let now = r.now_ms + 1;
            r.step(m, now);
            r.check_invariants();
            if k % 3 == 0 {
                persist_all(&mut r);
            }
            r.take_messages();
            r.take_committed(16);
            r.tick(now);
            r.check_invariants();
        }
    }
}

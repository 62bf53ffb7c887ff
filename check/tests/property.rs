//! Property tests against the simulated etcd (tests/common/sim.rs): every history it generates is
//! accepted, and one stale read or one dropped watch event in it is caught.

mod common;

use ballast_check::{check_linearizable, check_watches, LinResult, Output, WatchResult};
use common::sim::{generate, Config, Generated};
use common::BUDGET;
use proptest::prelude::*;

fn config() -> impl Strategy<Value = Config> {
    (
        any::<u64>(),
        20usize..250,
        1usize..7,
        1usize..5,
        0u64..40,
        2u64..40,
    )
        .prop_map(
            |(seed, ops, clients, keys, unknown_percent, latency)| Config {
                seed,
                ops,
                clients,
                keys,
                unknown_percent,
                latency,
                watches: 6,
            },
        )
}

/// The history with one Get's answer replaced by an older version of its key.
fn with_stale_read(generated: &Generated, pick: usize) -> Option<Vec<ballast_check::Operation>> {
    if generated.stale_reads.is_empty() {
        return None;
    }
    let (at, old) = &generated.stale_reads[pick % generated.stale_reads.len()];
    let mut ops = generated.ops.clone();
    let Output::Get { kv, .. } = &mut ops[*at].output else {
        return None;
    };
    *kv = Some(old.clone());
    Some(ops)
}

/// 96 cases per property, or `PROPTEST_CASES` for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(96)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn simulated_histories_are_accepted(config in config()) {
        let generated = generate(config);
        let result = check_linearizable(&generated.ops, BUDGET);
        prop_assert!(result.is_ok(), "{}", result);
        let watches = check_watches(&generated.ops, &generated.watches);
        prop_assert!(watches.is_ok(), "{}", watches);
    }

    #[test]
    fn a_stale_read_is_rejected(config in config(), pick in any::<usize>()) {
        let generated = generate(config);
        let Some(ops) = with_stale_read(&generated, pick) else {
            return Ok(());
        };
        let result = check_linearizable(&ops, BUDGET);
        prop_assert!(matches!(result, LinResult::Violation { .. }), "{}", result);
    }

    #[test]
    fn a_dropped_watch_event_is_rejected(config in config(), pick in any::<usize>()) {
        let generated = generate(config);
        // A middle event of some watch whose write was acknowledged.
        let candidates: Vec<(usize, usize)> = generated.watches.iter().enumerate()
            .flat_map(|(w, watch)| {
                let n = watch.events.len();
                (1..n.saturating_sub(1)).map(move |e| (w, e))
            })
            .filter(|&(w, e)| generated.acknowledged.contains(&generated.watches[w].events[e].kv.mod_revision))
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let (w, e) = candidates[pick % candidates.len()];
        let mut watches = generated.watches.clone();
        watches[w].events.remove(e);
        let result = check_watches(&generated.ops, &watches);
        prop_assert!(
            matches!(result, WatchResult::Violation { watch_index, .. } if watch_index == w),
            "{}", result
        );
    }
}

/// Small domains, so that arbitrary histories collide in keys, values, leases and revisions.
fn small_kv() -> impl Strategy<Value = ballast_check::Kv> {
    (0u8..3, 0u8..6, -1i64..8, -1i64..8, -1i64..4, 0i64..3).prop_map(
        |(key, value, create_revision, mod_revision, version, lease)| ballast_check::Kv {
            key: vec![b'a' + key],
            value: vec![b'0' + value],
            create_revision,
            mod_revision,
            version,
            lease,
        },
    )
}

fn arbitrary_op() -> impl Strategy<Value = ballast_check::Operation> {
    use ballast_check::{Input, Operation};
    let key = (0u8..3).prop_map(|k| vec![b'a' + k]);
    let value = (0u8..6).prop_map(|v| vec![b'0' + v]);
    let input = prop_oneof![
        key.clone().prop_map(|key| Input::Get { key }),
        (
            key.clone(),
            prop_oneof![Just(vec![]), Just(vec![0]), Just(b"c".to_vec())]
        )
            .prop_map(|(start, end)| Input::Range { start, end }),
        (key.clone(), value.clone(), 0i64..3).prop_map(|(key, value, lease)| Input::Put {
            key,
            value,
            lease
        }),
        key.clone().prop_map(|key| Input::Delete { key }),
        (key, -1i64..8, value).prop_map(|(key, expected_mod_revision, value)| Input::Cas {
            key,
            expected_mod_revision,
            value,
        }),
        (0i64..3).prop_map(|lease| Input::LeaseGrant { lease }),
        (0i64..3).prop_map(|lease| Input::LeaseRevoke { lease }),
    ];
    let revision = -1i64..10;
    let output = prop_oneof![
        (proptest::option::of(small_kv()), revision.clone())
            .prop_map(|(kv, revision)| Output::Get { kv, revision }),
        (
            proptest::collection::vec(small_kv(), 0..3),
            revision.clone()
        )
            .prop_map(|(kvs, revision)| Output::Range { kvs, revision }),
        revision
            .clone()
            .prop_map(|revision| Output::Put { revision }),
        (-1i64..3, revision.clone())
            .prop_map(|(deleted, revision)| Output::Delete { deleted, revision }),
        (
            any::<bool>(),
            proptest::option::of(small_kv()),
            revision.clone()
        )
            .prop_map(|(succeeded, kv, revision)| Output::Cas {
                succeeded,
                kv,
                revision
            }),
        revision
            .clone()
            .prop_map(|revision| Output::LeaseRevoke { revision }),
        Just(Output::Unknown),
        Just(Output::Rejected),
    ];
    (0usize..3, input, output, 0u64..50, 0u64..50).prop_map(
        |(client, input, output, call, took)| Operation {
            client,
            input,
            output,
            call,
            ret: call + took,
        },
    )
}

fn arbitrary_watch() -> impl Strategy<Value = ballast_check::Watch> {
    use ballast_check::{EventKind, Watch, WatchEvent};
    let event = (any::<bool>(), small_kv()).prop_map(|(put, kv)| WatchEvent {
        kind: if put {
            EventKind::Put
        } else {
            EventKind::Delete
        },
        kv,
    });
    (
        0u8..3,
        prop_oneof![Just(vec![]), Just(vec![0]), Just(b"c".to_vec())],
        -1i64..6,
        proptest::collection::vec(event, 0..6),
        proptest::option::of(0i64..4),
    )
        .prop_map(|(start, end, start_revision, events, compacted)| Watch {
            start: vec![b'a' + start],
            end,
            start_revision,
            events,
            compacted,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases() * 4))]

    /// The checkers judge recorded data from a server under test: any input gets a verdict,
    /// never a panic.
    #[test]
    fn arbitrary_histories_get_a_verdict_without_panicking(
        ops in proptest::collection::vec(arbitrary_op(), 0..14),
        watches in proptest::collection::vec(arbitrary_watch(), 0..3),
    ) {
        let result = check_linearizable(&ops, BUDGET);
        let _ = result.to_string();
        let result = check_watches(&ops, &watches);
        let _ = result.to_string();
    }
}

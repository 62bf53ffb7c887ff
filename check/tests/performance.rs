//! The checker must keep up with real chaos runs: a valid history of 20k ops over 20 keys from 8
//! concurrent clients is checked in well under a few seconds, even in a debug build.

mod common;

use std::time::{Duration, Instant};

use ballast_check::{check_linearizable, check_watches};
use common::sim::{generate, Config};

#[test]
fn big_history_is_checked_quickly() {
    let generated = generate(Config {
        seed: 7,
        ops: 20_000,
        clients: 8,
        keys: 20,
        unknown_percent: 10,
        latency: 30,
        watches: 20,
    });
    let started = Instant::now();
    let result = check_linearizable(&generated.ops, Duration::from_secs(60));
    let lin = started.elapsed();
    assert!(result.is_ok(), "{result}");
    let started = Instant::now();
    let watches = check_watches(&generated.ops, &generated.watches);
    let watch = started.elapsed();
    assert!(watches.is_ok(), "{watches}");
    let events: usize = generated.watches.iter().map(|w| w.events.len()).sum();
    println!(
        "{} ops: {result}; linearizability {lin:?}; {events} watch events: {watch:?}",
        generated.ops.len()
    );
    assert!(lin < Duration::from_secs(10), "took {lin:?}");
}

#[test]
fn violations_in_a_big_history_are_found_quickly() {
    let generated = generate(Config {
        seed: 11,
        ops: 20_000,
        clients: 8,
        keys: 20,
        unknown_percent: 10,
        latency: 30,
        watches: 0,
    });
    let stale = &generated.stale_reads;
    assert!(
        stale.len() > 100,
        "too few stale-read candidates: {}",
        stale.len()
    );
    // Early, middle and late in the history.
    for &(at, ref old) in [
        &stale[10],
        &stale[stale.len() / 2],
        &stale[stale.len() - 10],
    ] {
        let mut ops = generated.ops.clone();
        if let ballast_check::Output::Get { kv, .. } = &mut ops[at].output {
            *kv = Some(old.clone());
        }
        let started = Instant::now();
        let result = check_linearizable(&ops, Duration::from_secs(60));
        let took = started.elapsed();
        let first_line = result
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        println!("stale read at op {at}: found in {took:?}: {first_line}");
        assert!(
            matches!(result, ballast_check::LinResult::Violation { .. }),
            "{result}"
        );
        assert!(took < Duration::from_secs(10), "took {took:?}");
    }
}

#[test]
fn one_hot_key_with_many_unknown_outcomes() {
    // The hard case for the search: every client on one key, a quarter of the requests timing
    // out (and taking effect late, or never), so hundreds of writes stay open at once.
    let generated = generate(Config {
        seed: 6,
        ops: 8_000,
        clients: 8,
        keys: 1,
        unknown_percent: 23,
        latency: 34,
        watches: 0,
    });
    let started = Instant::now();
    let result = check_linearizable(&generated.ops, Duration::from_secs(60));
    println!("valid: {result} in {:?}", started.elapsed());
    assert!(result.is_ok(), "{result}");
    let (at, old) = &generated.stale_reads[generated.stale_reads.len() - 3];
    let mut ops = generated.ops.clone();
    if let ballast_check::Output::Get { kv, .. } = &mut ops[*at].output {
        *kv = Some(old.clone());
    }
    let started = Instant::now();
    let result = check_linearizable(&ops, Duration::from_secs(60));
    let took = started.elapsed();
    println!("stale read at op {at}: found in {took:?}");
    assert!(
        matches!(result, ballast_check::LinResult::Violation { .. }),
        "{result}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

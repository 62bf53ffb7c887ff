use super::*;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).expect("valid")
}

fn q() -> SchedulingQueue<String> {
    SchedulingQueue::default()
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn backoff_doubles_and_caps() {
    let c = QueueConfig::default();
    let secs: Vec<u64> = (0..7).map(|a| c.backoff_duration(a).as_secs()).collect();
    assert_eq!(secs, vec![0, 1, 2, 4, 8, 10, 10]);
    assert_eq!(c.backoff_duration(u32::MAX), Duration::from_secs(10));
}

#[test]
fn active_queue_orders_by_priority_then_time() {
    let mut q = q();
    q.add(s("ns/low"), 0, t(0));
    q.add(s("ns/high"), 100, t(1));
    q.add(s("ns/low2"), 0, t(2));
    q.add(s("ns/high2"), 100, t(3));
    let order: Vec<String> = std::iter::from_fn(|| q.pop(t(10))).collect();
    assert_eq!(order, vec!["ns/high", "ns/high2", "ns/low", "ns/low2"]);
    assert_eq!(q.attempts(&s("ns/low")), 1);
    assert_eq!(q.place_of(&s("ns/low")), Some(Place::InFlight));
}

#[test]
fn add_backoff_waits_then_becomes_active() {
    let mut q = q();
    q.add(s("a"), 0, t(0));
    assert_eq!(q.pop(t(0)), Some(s("a")));
    assert!(q.add_backoff(s("a"), 2, t(10)), "2 attempts: 2 s backoff");
    assert_eq!(q.next_wake(t(10)), Some(Duration::from_secs(2)));
    assert_eq!(q.pop(t(11)), None);
    assert_eq!(q.next_wake(t(11)), Some(Duration::from_secs(1)));
    assert_eq!(q.pop(t(12)), Some(s("a")));
    assert_eq!(q.attempts(&s("a")), 3);
    assert!(!q.add_backoff(s("zzz"), 1, t(12)), "unknown key");
}

#[test]
fn unschedulable_waits_for_an_event() {
    let mut q = q();
    q.add(s("a"), 0, t(0));
    q.add(s("b"), 0, t(0));
    q.pop(t(0));
    q.pop(t(0));
    assert!(q.add_unschedulable(s("a"), 1, t(1)));
    assert!(q.add_unschedulable(s("b"), 4, t(1)));
    assert_eq!(q.sizes(), (0, 0, 2));
    assert!(
        !q.add_unschedulable(s("a"), 1, t(1)),
        "not in flight any more"
    );
    assert_eq!(q.pop(t(100)), None, "no event, no flush yet");
    assert_eq!(
        q.next_wake(t(100)),
        Some(Duration::from_secs(201)),
        "flush at t(1) + 300 s"
    );
    // Event at t(3): a's 1 s backoff is over -> activeQ; b (8 s) -> backoffQ until t(9).
    q.move_all_to_active_or_backoff(t(3));
    assert_eq!(q.place_of(&s("a")), Some(Place::Active));
    assert_eq!(q.place_of(&s("b")), Some(Place::Backoff(t(9))));
    assert_eq!(q.pop(t(3)), Some(s("a")));
    assert_eq!(q.pop(t(3)), None);
    assert_eq!(q.pop(t(9)), Some(s("b")));
}

#[test]
fn unschedulable_pods_are_flushed_after_five_minutes() {
    let mut q = q();
    q.add(s("a"), 0, t(0));
    q.pop(t(0));
    q.add_unschedulable(s("a"), 1, t(0));
    assert_eq!(q.pop(t(299)), None);
    assert_eq!(q.pop(t(300)), Some(s("a")));
}

#[test]
fn event_while_in_flight_requeues_to_backoff() {
    let mut q = q();
    q.add(s("a"), 0, t(0));
    q.pop(t(0));
    q.move_all_to_active_or_backoff(t(0));
    q.add_unschedulable(s("a"), 1, t(1));
    assert_eq!(q.place_of(&s("a")), Some(Place::Backoff(t(2))));
    assert_eq!(q.pop(t(2)), Some(s("a")));
    // A later cycle without event parks it again.
    q.add_unschedulable(s("a"), 2, t(3));
    assert_eq!(q.place_of(&s("a")), Some(Place::Unschedulable));
}

#[test]
fn update_moves_unschedulable_and_reorders_active() {
    let mut q = q();
    q.add(s("a"), 0, t(0));
    q.add(s("b"), 0, t(1));
    q.update(s("b"), 10, t(2));
    assert_eq!(q.pop(t(2)), Some(s("b")), "priority raised in place");
    q.add_unschedulable(s("b"), 1, t(2));
    q.update(s("b"), 10, t(5));
    assert_eq!(
        q.place_of(&s("b")),
        Some(Place::Active),
        "backoff over at t(3)"
    );
    q.update(s("new"), 0, t(5));
    assert_eq!(
        q.place_of(&s("new")),
        Some(Place::Active),
        "unknown key is added"
    );
    let x = q.pop(t(5)).expect("b");
    q.update(x.clone(), 10, t(5));
    q.add_unschedulable(x.clone(), 2, t(6));
    assert_eq!(
        q.place_of(&x),
        Some(Place::Backoff(t(8))),
        "updated while in flight"
    );
}

#[test]
fn delete_and_next_wake() {
    let mut q = q();
    assert_eq!(q.next_wake(t(0)), None);
    q.add(s("a"), 0, t(0));
    assert_eq!(q.next_wake(t(0)), Some(Duration::ZERO));
    assert!(q.delete(&s("a")));
    assert!(!q.delete(&s("a")));
    assert!(q.is_empty());
    q.add(s("b"), 0, t(0));
    q.pop(t(0));
    assert_eq!(q.next_wake(t(0)), None, "only in flight");
    assert_eq!(q.len(), 1);
    assert!(q.delete(&s("b")), "bound: forget it");
    assert!(
        !q.add_unschedulable(s("b"), 1, t(1)),
        "deleted pods are not requeued"
    );
}

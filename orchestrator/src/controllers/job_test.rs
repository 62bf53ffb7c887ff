use super::*;
use crate::controllers::testutil::{labels, ready, restarts, t, with_phase, NS};
use k8s_openapi::api::batch::v1::{JobSpec, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

const UID: &str = "job-uid";

fn job(completions: Option<i32>, parallelism: Option<i32>) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some("pi".into()),
            namespace: Some(NS.into()),
            uid: Some(UID.into()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completions,
            parallelism,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&[("app", "pi")])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: "c".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn started(mut j: Job, at: i64) -> Job {
    j.status.get_or_insert_with(Default::default).start_time = Some(Time(t(at)));
    j
}

fn counted(mut j: Job, succeeded: i32, failed: i32) -> Job {
    let s = j.status.get_or_insert_with(Default::default);
    s.succeeded = Some(succeeded);
    s.failed = Some(failed);
    j
}

/// A pod of the Job, with the tracking finalizer, in `phase`.
fn jpod(name: &str, phase: &str) -> Arc<Pod> {
    let j = job(None, None);
    let mut p = new_pod(&j, None).expect("pod");
    p.metadata.name = Some(name.into());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.metadata.creation_timestamp = Some(Time(t(0)));
    Arc::new(with_phase(p, phase))
}

fn bare(p: Arc<Pod>) -> Arc<Pod> {
    let mut p = (*p).clone();
    p.metadata.finalizers = None;
    Arc::new(p)
}

fn indexed(p: Arc<Pod>, ix: i32) -> Arc<Pod> {
    let mut p = (*p).clone();
    p.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX_KEY.into(), ix.to_string());
    Arc::new(p)
}

fn cond<'a>(s: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    s.conditions.iter().flatten().find(|c| c.type_ == type_)
}

fn run(j: &Job, pods: &[Arc<Pod>], now: i64) -> JobPlan {
    reconcile(j, pods, true, None, t(now))
}

#[test]
fn new_job_creates_pods_and_sets_start_time() {
    let plan = run(&job(Some(5), Some(2)), &[], 10);
    assert_eq!(plan.create, 2);
    assert!(plan.delete.is_empty());
    let s = plan.status.expect("status");
    assert_eq!(s.start_time, Some(Time(t(10))));
    assert_eq!(
        (s.active, s.ready, s.terminating),
        (Some(2), Some(0), Some(0))
    );
    assert_eq!(
        s.uncounted_terminated_pods,
        Some(UncountedTerminatedPods::default())
    );
}

#[test]
fn defaults_and_work_queue_mode() {
    // Neither set: completions = parallelism = 1.
    assert_eq!(run(&job(None, None), &[], 0).create, 1);
    // Parallelism without completions: a work queue, parallelism pods.
    assert_eq!(run(&job(None, Some(3)), &[], 0).create, 3);
    // Once one pod succeeded, nothing new starts and the others finish.
    let j = counted(started(job(None, Some(3)), 0), 1, 0);
    let plan = run(&j, &[jpod("a", "Running")], 5);
    assert_eq!((plan.create, plan.delete.len()), (0, 0));
    assert!(plan.finished.is_none());
    // With no active pod left it completes.
    let plan = run(&j, &[], 5);
    assert_eq!(plan.finished.map(|c| c.type_), Some(COMPLETE.to_string()));
}

#[test]
fn new_pod_has_labels_finalizer_and_controller_ref() {
    let p = new_pod(&job(Some(1), None), None).expect("pod");
    let l = p.metadata.labels.clone().unwrap_or_default();
    for k in [
        "batch.kubernetes.io/controller-uid",
        "controller-uid",
        "batch.kubernetes.io/job-name",
        "job-name",
        "app",
    ] {
        assert!(l.contains_key(k), "{k}");
    }
    assert_eq!(l.get("controller-uid").map(String::as_str), Some(UID));
    assert_eq!(
        p.metadata.finalizers,
        Some(vec![TRACKING_FINALIZER.to_string()])
    );
    assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-"));
    let r = crate::controllers::pods::controller_ref(&p.metadata).expect("ref");
    assert_eq!(
        (r.kind.as_str(), r.api_version.as_str(), r.uid.as_str()),
        ("Job", "batch/v1", UID)
    );
    assert_eq!(crate::controllers::pods::check_creatable(&p), Ok(()));
}

#[test]
fn indexed_pod_gets_index_hostname_env_and_name() {
    let mut j = job(Some(3), Some(3));
    if let Some(s) = j.spec.as_mut() {
        s.completion_mode = Some("Indexed".into());
    }
    let p = new_pod(&j, Some(2)).expect("pod");
    let ann = p.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(ann.get(COMPLETION_INDEX_KEY).map(String::as_str), Some("2"));
    let lbl = p.metadata.labels.clone().unwrap_or_default();
    assert_eq!(lbl.get(COMPLETION_INDEX_KEY).map(String::as_str), Some("2"));
    let spec = p.spec.expect("spec");
    assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
    assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-2-"));
    let env = spec.containers[0].env.clone().unwrap_or_default();
    assert_eq!(env[0].name, "JOB_COMPLETION_INDEX");
}

#[test]
fn finished_pods_are_counted_after_their_finalizer_goes() {
    let j = started(job(Some(3), Some(1)), 0);
    // Sync 1: the succeeded pod is recorded as uncounted, its finalizer listed.
    let plan = run(&j, &[jpod("a", "Succeeded")], 5);
    assert_eq!(plan.remove_finalizers, vec!["a".to_string()]);
    assert_eq!(plan.create, 1);
    let s = plan.status.expect("status");
    let unc = s.uncounted_terminated_pods.clone().unwrap_or_default();
    assert_eq!(unc.succeeded, Some(vec!["uid-a".to_string()]));
    assert_eq!(s.succeeded, None);
    // Sync 2: finalizer gone (pod still there or deleted): counted once.
    let j2 = Job {
        status: Some(s),
        ..j
    };
    for pods in [vec![bare(jpod("a", "Succeeded"))], vec![]] {
        let plan = run(&j2, &pods, 6);
        let s = plan.status.expect("status");
        assert_eq!(s.succeeded, Some(1));
        assert_eq!(
            s.uncounted_terminated_pods,
            Some(UncountedTerminatedPods::default())
        );
        assert!(plan.remove_finalizers.is_empty());
    }
}

#[test]
fn completion_writes_interim_then_terminal_condition() {
    let j = started(job(Some(1), None), 0);
    let plan = run(&j, &[jpod("a", "Succeeded")], 5);
    let s = plan.status.expect("status");
    let scm = cond(&s, SUCCESS_CRITERIA_MET).expect("SuccessCriteriaMet");
    assert_eq!(scm.reason.as_deref(), Some(REASON_COMPLETIONS_REACHED));
    assert_eq!(scm.message.as_deref(), Some(MESSAGE_COMPLETIONS_REACHED));
    assert!(cond(&s, COMPLETE).is_none(), "a finalizer is still pending");
    assert!(plan.finished.is_none());
    // Next sync, the pod counted: Complete with completionTime.
    let j2 = Job {
        status: Some(s),
        ..j
    };
    let plan = run(&j2, &[bare(jpod("a", "Succeeded"))], 7);
    let s = plan.status.expect("status");
    let c = cond(&s, COMPLETE).expect("Complete");
    assert_eq!(c.reason.as_deref(), Some(REASON_COMPLETIONS_REACHED));
    assert_eq!(s.completion_time, Some(Time(t(7))));
    assert_eq!(s.succeeded, Some(1));
    assert_eq!(plan.finished.map(|c| c.type_), Some(COMPLETE.to_string()));
    // A finished Job is left alone.
    let j3 = Job {
        status: Some(s),
        ..j2
    };
    assert_eq!(run(&j3, &[], 8).skipped.as_deref(), Some("finished"));
}

#[test]
fn backoff_limit_exceeded_fails_and_deletes_active_pods() {
    let mut j = counted(started(job(Some(5), Some(1)), 0), 0, 1);
    if let Some(s) = j.spec.as_mut() {
        s.backoff_limit = Some(1);
    }
    let pods = [jpod("a", "Failed"), jpod("b", "Running")];
    let plan = run(&j, &pods, 20);
    assert_eq!(plan.delete, vec!["b".to_string()]);
    assert!(!plan.delete_remove_finalizer);
    assert_eq!(plan.create, 0);
    let s = plan.status.clone().expect("status");
    let ft = cond(&s, FAILURE_TARGET).expect("FailureTarget");
    assert_eq!(ft.reason.as_deref(), Some(REASON_BACKOFF_LIMIT));
    assert_eq!(ft.message.as_deref(), Some(MESSAGE_BACKOFF_LIMIT));
    assert!(cond(&s, FAILED).is_none(), "pods still terminating");
    assert_eq!((s.active, s.terminating), (None, Some(1)));
    // Both pods counted as failed once their finalizers go.
    let unc = s.uncounted_terminated_pods.clone().unwrap_or_default();
    assert_eq!(unc.failed.map(|v| v.len()), Some(2));
    // Later: pods gone, counted; Failed with the same reason, no completionTime.
    let j2 = Job {
        status: Some(s),
        ..j
    };
    let plan = run(&j2, &[], 30);
    let s = plan.status.expect("status");
    assert_eq!(s.failed, Some(3));
    let f = cond(&s, FAILED).expect("Failed");
    assert_eq!(f.reason.as_deref(), Some(REASON_BACKOFF_LIMIT));
    assert!(s.completion_time.is_none());
    assert!(plan.finished.is_some());
}

#[test]
fn on_failure_restarts_count_against_backoff_limit() {
    let mut j = started(job(Some(1), None), 0);
    if let Some(s) = j.spec.as_mut() {
        s.backoff_limit = Some(0);
        if let Some(ps) = s.template.spec.as_mut() {
            ps.restart_policy = Some("OnFailure".into());
        }
    }
    let restarted = Arc::new(restarts((*jpod("a", "Running")).clone(), 1));
    let plan = run(&j, &[restarted], 5);
    let s = plan.status.expect("status");
    assert!(cond(&s, FAILURE_TARGET).is_some());
    // With restartPolicy Never restarts do not count.
    if let Some(ps) = j.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        ps.restart_policy = Some("Never".into());
    }
    let restarted = Arc::new(restarts((*jpod("a", "Running")).clone(), 1));
    assert!(run(&j, &[restarted], 5)
        .status
        .is_none_or(|s| cond(&s, FAILURE_TARGET).is_none()));
}

#[test]
fn active_deadline_fails_or_requeues() {
    let mut j = started(job(Some(1), None), 0);
    if let Some(s) = j.spec.as_mut() {
        s.active_deadline_seconds = Some(60);
    }
    let plan = run(&j, &[jpod("a", "Running")], 20);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(40)));
    let plan = run(&j, &[jpod("a", "Running")], 60);
    let s = plan.status.expect("status");
    let ft = cond(&s, FAILURE_TARGET).expect("FailureTarget");
    assert_eq!(ft.reason.as_deref(), Some(REASON_DEADLINE));
    assert_eq!(ft.message.as_deref(), Some(MESSAGE_DEADLINE));
    assert_eq!(plan.delete, vec!["a".to_string()]);
}

#[test]
fn pod_failure_backoff_delays_replacement() {
    let j = started(job(Some(2), Some(1)), 0);
    let mut failed = (*jpod("a", "Failed")).clone();
    failed
        .status
        .get_or_insert_with(Default::default)
        .conditions = Some(vec![k8s_openapi::api::core::v1::PodCondition {
        type_: "Ready".into(),
        status: "False".into(),
        last_transition_time: Some(Time(t(100))),
        ..Default::default()
    }]);
    let plan = run(&j, &[Arc::new(failed.clone())], 104);
    assert_eq!(plan.create, 0);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(6)));
    assert_eq!(plan.backoff.failures_after_last_success, 1);
    assert_eq!(plan.backoff.last_failure_time, Some(t(100)));
    // The record is kept by the integrator: the next sync creates after 10s.
    let rec = plan.backoff;
    let j2 = Job {
        status: plan.status,
        ..j
    };
    let plan = reconcile(&j2, &[bare(Arc::new(failed))], true, Some(&rec), t(111));
    assert_eq!(plan.create, 1);
    // Doubling, capped at 10 minutes.
    let r = BackoffRecord {
        failures_after_last_success: 3,
        last_failure_time: Some(t(0)),
    };
    assert_eq!(r.remaining(t(0)), Duration::from_secs(40));
    let r = BackoffRecord {
        failures_after_last_success: 30,
        last_failure_time: Some(t(0)),
    };
    assert_eq!(r.remaining(t(100)), Duration::from_secs(500));
}

#[test]
fn scale_down_deletes_least_advanced_pods() {
    let j = started(job(Some(10), Some(1)), 0);
    let r = Arc::new(ready((*jpod("ready", "Running")).clone(), Some(t(1))));
    let plan = run(&j, &[r, jpod("pending", "Pending")], 5);
    assert_eq!(plan.delete, vec!["pending".to_string()]);
    assert!(plan.delete_remove_finalizer);
    assert_eq!(plan.create, 0);
    assert_eq!(plan.status.and_then(|s| s.active), Some(1));
}

#[test]
fn suspend_deletes_pods_and_resume_resets_start_time() {
    let mut j = started(job(Some(2), Some(2)), 0);
    if let Some(s) = j.spec.as_mut() {
        s.suspend = Some(true);
    }
    let plan = run(&j, &[jpod("a", "Running"), jpod("b", "Running")], 5);
    assert_eq!(plan.delete.len(), 2);
    let s = plan.status.expect("status");
    let c = cond(&s, SUSPENDED).expect("Suspended");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("True", Some("JobSuspended"))
    );
    let mut j2 = Job {
        status: Some(s),
        ..j
    };
    if let Some(s) = j2.spec.as_mut() {
        s.suspend = Some(false);
    }
    let plan = run(&j2, &[], 50);
    assert_eq!(plan.create, 2);
    let s = plan.status.expect("status");
    let c = cond(&s, SUSPENDED).expect("Suspended");
    assert_eq!(
        (c.status.as_str(), c.message.as_deref()),
        ("False", Some("Job resumed"))
    );
    assert_eq!(s.start_time, Some(Time(t(50))));
}

#[test]
fn unsatisfied_expectations_and_external_manager_hold_back() {
    let j = started(job(Some(3), Some(3)), 0);
    let plan = reconcile(&j, &[], false, None, t(1));
    assert_eq!(plan.create, 0);
    let mut ext = j.clone();
    if let Some(s) = ext.spec.as_mut() {
        s.managed_by = Some("example.com/other".into());
    }
    assert!(run(&ext, &[], 1).skipped.is_some());
    if let Some(s) = ext.spec.as_mut() {
        s.managed_by = Some(CONTROLLER_NAME.into());
    }
    assert!(run(&ext, &[], 1).skipped.is_none());
}

#[test]
fn indexed_job_fills_lowest_free_index_and_drops_duplicates() {
    let mut j = started(job(Some(3), Some(2)), 0);
    if let Some(s) = j.spec.as_mut() {
        s.completion_mode = Some("Indexed".into());
    }
    j.status
        .get_or_insert_with(Default::default)
        .completed_indexes = Some("0".into());
    j.status.get_or_insert_with(Default::default).succeeded = Some(1);
    let plan = run(&j, &[indexed(jpod("b", "Running"), 1)], 5);
    assert_eq!(plan.create_indexes, vec![2]);
    assert_eq!(plan.create, 1);
    let older = Arc::new(ready(
        (*indexed(jpod("b", "Running"), 1)).clone(),
        Some(t(1)),
    ));
    let dup = indexed(jpod("c", "Pending"), 1);
    let plan = run(&j, &[older, dup], 5);
    assert_eq!(plan.delete, vec!["c".to_string()]);
    // A succeeded index is recorded in completedIndexes at once.
    let plan = run(&j, &[indexed(jpod("d", "Succeeded"), 2)], 5);
    let s = plan.status.expect("status");
    assert_eq!(s.completed_indexes.as_deref(), Some("0,2"));
    assert_eq!(s.succeeded, Some(2));
}

#[test]
fn intervals_parse_and_format_like_upstream() {
    let i = Intervals::parse("0,2-4,5,x,9-12", 11);
    assert_eq!(i.0, vec![(0, 0), (2, 5), (9, 10)]);
    assert_eq!(i.to_string(), "0,2-5,9,10");
    assert_eq!(i.total(), 7);
    assert!(i.has(3) && !i.has(1));
    let merged = i.with_indexes(&[1, 6].into_iter().collect());
    assert_eq!(merged.to_string(), "0-6,9,10");
}

#[test]
fn adopts_matching_orphans_and_releases_mismatches() {
    let j = started(job(Some(2), Some(2)), 0);
    let mut orphan = (*jpod("o", "Running")).clone();
    orphan.metadata.owner_references = None;
    orphan.metadata.finalizers = None;
    let mut strayed = (*jpod("s", "Running")).clone();
    strayed.metadata.labels = Some(labels(&[("app", "other")]));
    let plan = run(&j, &[Arc::new(orphan.clone()), Arc::new(strayed)], 5);
    assert_eq!(plan.adopt, vec!["o".to_string()]);
    assert_eq!(plan.release, vec!["s".to_string()]);
    assert_eq!(plan.create, 1);
    let patch = adopt_patch(&j, &orphan);
    assert_eq!(patch["metadata"]["finalizers"][0], TRACKING_FINALIZER);
}

#[test]
fn orphan_finalizers_are_removed_when_job_gone_or_finished() {
    let p = jpod("a", "Succeeded");
    assert!(orphan_needs_finalizer_removal(&p, None));
    let j = job(Some(1), None);
    assert!(!orphan_needs_finalizer_removal(&p, Some(&j)));
    assert!(!orphan_needs_finalizer_removal(&bare(p), None));
}

#[test]
fn steady_state_writes_nothing() {
    let j = started(job(Some(2), Some(1)), 0);
    let plan = run(&j, &[jpod("a", "Running")], 5);
    let j2 = Job {
        status: plan.status,
        ..j
    };
    let again = run(&j2, &[jpod("a", "Running")], 9);
    assert!(again.status.is_none(), "{:?}", again.status);
    assert_eq!((again.create, again.delete.len()), (0, 0));
}

#[test]
fn backoff_limit_is_exceeded_only_past_it() {
    let mut j = started(job(Some(3), Some(1)), 0);
    if let Some(s) = j.spec.as_mut() {
        s.backoff_limit = Some(1);
    }
    // One failure with backoffLimit 1: still running, a replacement comes.
    let plan = run(&j, &[jpod("a", "Failed")], 100);
    let s = plan.status.expect("status");
    assert!(cond(&s, FAILURE_TARGET).is_none());
    // Terminating (deleted, not finished) pods count as failed too.
    let gone = Arc::new(crate::controllers::testutil::deleting(
        (*jpod("b", "Running")).clone(),
    ));
    let plan = run(&j, &[jpod("a", "Failed"), gone], 100);
    let s = plan.status.expect("status");
    assert!(cond(&s, FAILURE_TARGET).is_some());
}

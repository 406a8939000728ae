use std::time::{Duration, SystemTime};

use undertaker_events::{Event as Payload, EventRecord, Identity, Process, Reaped};

use super::*;
use crate::pod_event::time;
use crate::test_support::pod_identity;

fn identity(pod: &str, container: &str) -> Identity {
    pod_identity(pod, container, &format!("id-{container}"))
}

fn reaped(identity: Identity, pids: std::ops::RangeInclusive<u32>) -> Report {
    let processes = pids
        .map(|pid| Process::named(pid, "sleep").exited(0))
        .collect();
    let event = Payload::Reaped(Reaped::now(identity, processes, 0, 0));
    let record = EventRecord::new(&event, "k8s.io", SystemTime::now());
    Report::from_event(&event, record).unwrap()
}

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

#[test]
fn a_storm_of_n_reaped_reports_is_one_event_with_count_n() {
    let mut aggregator = Aggregator::new("node-1", Pacing::default());
    let n = 500;
    for pid in 1..=n {
        assert!(aggregator.add(&reaped(identity("web-0", "app"), pid..=pid), at(0)));
    }

    let due = aggregator.due(at(0), None, false);

    let [due] = due.as_slice() else {
        panic!("one Event, not {}", due.len());
    };
    assert!(due.create);
    let event = &due.event;
    assert_eq!(event.count, Some(n as i32));
    assert_eq!(event.reason.as_deref(), Some("ZombiesReaped"));
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    let object = &event.involved_object;
    assert_eq!(object.kind.as_deref(), Some("Pod"));
    assert_eq!(object.name.as_deref(), Some("web-0"));
    assert_eq!(object.namespace.as_deref(), Some("shop"));
    assert_eq!(object.uid.as_deref(), Some("uid-1"));
    assert_eq!(object.field_path.as_deref(), Some("spec.containers{app}"));
    assert_eq!(event.metadata.namespace.as_deref(), Some("shop"));
    assert!(event
        .metadata
        .name
        .as_deref()
        .unwrap()
        .starts_with("web-0."));
    let source = event.source.as_ref().unwrap();
    assert_eq!(source.component.as_deref(), Some("undertaker"));
    assert_eq!(source.host.as_deref(), Some("node-1"));
    let message = event.message.as_deref().unwrap();
    assert!(
        message.starts_with(
            "reaped 500 orphaned processes in container \"app\": 1 sleep exit 0; 2 sleep exit 0;"
        ),
        "{message}"
    );
    assert!(message.ends_with("; and 490 more"), "{message}");
}

#[test]
fn later_reports_patch_the_same_event_a_minute_later_counting_occurrences() {
    let mut aggregator = Aggregator::new("node-1", Pacing::default());
    aggregator.add(&reaped(identity("web-0", "app"), 1..=3), at(0));
    let first = aggregator.due(at(0), None, false).remove(0);
    aggregator.written(&first.key, Outcome::Written, at(0));
    assert!(
        aggregator.due(at(0), None, false).is_empty(),
        "nothing new, nothing due"
    );

    aggregator.add(&reaped(identity("web-0", "app"), 4..=5), at(30));
    assert!(
        aggregator.due(at(59), None, false).is_empty(),
        "written less than a minute ago: it waits"
    );
    assert_eq!(
        aggregator.due(at(59), None, true).len(),
        1,
        "at shutdown it goes at once"
    );
    let second = aggregator.due(at(60), None, false).remove(0);

    assert!(!second.create, "patched, not created again");
    assert_eq!(second.event.metadata.name, first.event.metadata.name);
    assert_eq!(second.event.count, Some(2), "two reports");
    assert_eq!(second.event.first_timestamp, first.event.first_timestamp);
    assert_eq!(second.event.last_timestamp, Some(time(at(30))));
    assert_eq!(
        second.event.message.as_deref(),
        Some(
            "reaped 5 orphaned processes in container \"app\": 4 sleep exit 0; 5 sleep exit 0; \
             and 3 more"
        ),
        "the window's total, naming what is new"
    );
}

/// What a readiness probe that leaves a child behind does (`(sleep 0 &)` every second): one
/// leak report a second, each of one process. On a fake clock that the writer would look at
/// every second, for ten minutes.
#[test]
fn a_probe_leaking_every_second_is_one_event_per_window_written_at_most_once_a_minute() {
    let mut aggregator = Aggregator::new("node-1", Pacing::default());
    let mut writes: Vec<(u64, bool, Event)> = Vec::new();
    let mut leaks = 0;
    for second in 0..600 {
        let mut leak = reaped(
            identity("web-0", "app"),
            1000 + second as u32..=1000 + second as u32,
        );
        leak.kind = ReportKind::Leaked;
        leak.record.exec_id = format!("probe-{second}");
        leak.record.exec_command = "sh -c (sleep 0 &)".into();
        leak.record.reason = Some("exec-exit".into());
        assert!(aggregator.add(&leak, at(second)));
        leaks += leak.total();
        for due in aggregator.due(at(second), None, false) {
            aggregator.written(&due.key, Outcome::Written, at(second));
            writes.push((second, due.create, due.event));
        }
    }
    for due in aggregator.due(at(600), None, true) {
        writes.push((600, due.create, due.event));
    }

    let mut names: Vec<&str> = writes
        .iter()
        .map(|(_, _, event)| event.metadata.name.as_deref().unwrap())
        .collect();
    names.dedup();
    assert_eq!(names.len(), 2, "two 5-minute windows: two Events");
    let at_seconds: Vec<(u64, bool)> = writes.iter().map(|(s, c, _)| (*s, *c)).collect();
    assert_eq!(
        at_seconds,
        [
            (0, true),
            (60, false),
            (120, false),
            (180, false),
            (240, false),
            // The window is over once written: the next report starts the second Event.
            (300, false),
            (301, true),
            (361, false),
            (421, false),
            (481, false),
            (541, false),
            (600, false),
        ],
        "a create, then one patch a minute"
    );
    let counts: Vec<i32> = writes.iter().map(|(_, _, e)| e.count.unwrap()).collect();
    assert_eq!(
        counts,
        [1, 61, 121, 181, 241, 301, 1, 61, 121, 181, 241, 299]
    );
    assert_eq!(
        counts[5] + counts[11],
        600,
        "every report in one Event or the other"
    );
    assert_eq!(leaks, 600);
    let last = writes.last().unwrap().2.message.clone().unwrap();
    assert!(
        last.starts_with(
            "killed 299 processes left by exec \"sh -c (sleep 0 &)\" in container \"app\": \
             1542 sleep; 1543 sleep;"
        ),
        "the window's total, naming what came since the last write: {last}"
    );
    assert!(last.ends_with("; and 289 more"), "{last}");
}

#[test]
fn a_sandbox_report_goes_on_the_pod_without_a_container_field_path() {
    let mut aggregator = Aggregator::new("node-1", Pacing::default());
    let mut sandbox = identity("web-0", "");
    sandbox.container_name.clear();
    aggregator.add(&reaped(sandbox, 1..=2), at(0));

    let due = aggregator.due(at(0), None, false).remove(0);

    assert_eq!(due.key.container, "POD");
    assert_eq!(due.event.involved_object.field_path, None);
    assert_eq!(due.event.involved_object.name.as_deref(), Some("web-0"));
    assert!(
        due.event
            .message
            .as_deref()
            .unwrap()
            .starts_with("reaped 2 orphaned processes in the pod's sandbox: "),
        "{:?}",
        due.event.message
    );
}

#[test]
fn pods_containers_and_reasons_are_separate_events_with_distinct_names() {
    let mut aggregator = Aggregator::new("node-1", Pacing::default());
    aggregator.add(&reaped(identity("web-0", "app"), 1..=1), at(0));
    aggregator.add(&reaped(identity("web-0", "sidecar"), 2..=2), at(0));
    aggregator.add(&reaped(identity("web-1", "app"), 3..=3), at(0));
    let mut leak = reaped(identity("web-0", "app"), 4..=4);
    leak.kind = ReportKind::Leaked;
    aggregator.add(&leak, at(0));

    let due = aggregator.due(at(0), None, false);

    assert_eq!(due.len(), 4);
    let mut names: Vec<_> = due.iter().map(|d| d.event.metadata.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 4, "{names:?}");
    let leaked = due
        .iter()
        .find(|d| d.key.kind == ReportKind::Leaked)
        .unwrap();
    assert_eq!(leaked.event.type_.as_deref(), Some("Warning"));
    assert_eq!(leaked.event.count, Some(1));
}

#[test]
fn due_for_an_exited_container_names_only_its_series() {
    let mut aggregator = Aggregator::new("node-1", Pacing::default());
    aggregator.add(&reaped(identity("web-0", "app"), 1..=1), at(0));
    aggregator.add(&reaped(identity("web-0", "sidecar"), 2..=2), at(0));

    let due = aggregator.due(at(0), Some("id-sidecar"), false);

    assert_eq!(due.len(), 1);
    assert_eq!(due[0].key.container, "sidecar");
}

#[test]
fn reports_without_a_pod_make_no_event() {
    let mut aggregator = Aggregator::new("node-1", Pacing::default());
    let plain = Identity::for_container("default", "ctr-run-1", "");

    assert!(!aggregator.add(&reaped(plain, 1..=1), at(0)));
    assert!(aggregator.due(at(0), None, false).is_empty());
}

#[test]
fn a_quiet_series_expires_and_the_next_report_starts_a_new_event() {
    let mut aggregator = Aggregator::new("node-1", Pacing::default());
    aggregator.add(&reaped(identity("web-0", "app"), 1..=1), at(0));
    let first = aggregator.due(at(0), None, false).remove(0);
    aggregator.written(&first.key, Outcome::Written, at(0));

    aggregator.expire(at(SERIES_TTL.as_secs() + 1));
    assert!(aggregator.is_empty());
    aggregator.add(
        &reaped(identity("web-0", "app"), 2..=2),
        at(SERIES_TTL.as_secs() + 2),
    );
    let second = aggregator
        .due(at(SERIES_TTL.as_secs() + 2), None, false)
        .remove(0);

    assert!(second.create);
    assert_ne!(second.event.metadata.name, first.event.metadata.name);
    assert_eq!(second.event.count, Some(1));
}

#[test]
fn a_gone_event_is_created_again_with_the_whole_count() {
    let mut aggregator = Aggregator::new("node-1", Pacing::default());
    aggregator.add(&reaped(identity("web-0", "app"), 1..=2), at(0));
    let first = aggregator.due(at(0), None, false).remove(0);
    aggregator.written(&first.key, Outcome::Written, at(0));
    aggregator.add(&reaped(identity("web-0", "app"), 3..=3), at(1));

    aggregator.written(&first.key, Outcome::Gone, at(1));
    let again = aggregator.due(at(1), None, false).remove(0);

    assert!(again.create);
    assert_ne!(again.event.metadata.name, first.event.metadata.name);
    assert_eq!(again.event.count, Some(2), "both reports");
    assert!(again
        .event
        .message
        .as_deref()
        .unwrap()
        .starts_with("reaped 3 orphaned processes"));
}

#[test]
fn failed_writes_are_retried_then_given_up() {
    let mut aggregator = Aggregator::new("node-1", Pacing::default());
    aggregator.add(&reaped(identity("web-0", "app"), 1..=1), at(0));
    let key = aggregator.due(at(0), None, false).remove(0).key;

    for attempt in 1..MAX_ATTEMPTS {
        aggregator.written(&key, Outcome::Failed, at(0));
        assert_eq!(
            aggregator.due(at(0), None, false).len(),
            1,
            "retried after {attempt}"
        );
    }
    aggregator.written(&key, Outcome::Failed, at(0));

    assert!(aggregator.due(at(0), None, false).is_empty());
}

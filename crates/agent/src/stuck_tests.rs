use std::time::{Duration, SystemTime};

use undertaker_events::{Event, EventRecord, Identity, Process, Reaped, Unkillable};

use super::*;
use crate::test_support::pod_identity;

fn stuck(container: &str, processes: &[(u32, u32, &str)]) -> Report {
    let processes = processes
        .iter()
        .map(|&(pid, host_pid, comm)| {
            let mut process = Process::named(pid, comm);
            process.host_pid = host_pid;
            process.state = "D".into();
            process.wchan = "fuse_wait_answer".into();
            process
        })
        .collect();
    report(Event::Unkillable(Unkillable::now(
        pod_identity("web-0", container, "c1"),
        processes,
    )))
}

fn report(event: Event) -> Report {
    let record = EventRecord::new(&event, "k8s.io", SystemTime::now());
    Report::from_event(&event, record).unwrap()
}

fn samples(set: &StuckSet) -> Vec<(String, i64)> {
    set.gauge_samples()
        .into_iter()
        .map(|(labels, n)| {
            let name = format!("{}/{}/{}", labels.namespace, labels.pod, labels.container);
            (name, n)
        })
        .collect()
}

#[test]
fn unkillable_reports_are_kept_per_pod_and_counted_per_container() {
    let mut set = StuckSet::default();
    let now = SystemTime::now();
    set.add(&stuck("app", &[(7, 4007, "sleep"), (8, 4008, "cat")]), now);
    set.add(&stuck("sidecar", &[(9, 4009, "tail")]), now);
    // The same process reported again (a second stop) is one process, not two.
    set.add(
        &stuck("app", &[(7, 4007, "sleep")]),
        now + Duration::from_secs(5),
    );
    // Other reports and processes without a host pid are not followed.
    let reaped = Reaped::now(
        pod_identity("web-0", "app", "c1"),
        vec![Process::named(3, "sh")],
        1,
        0,
    );
    set.add(&report(Event::Reaped(reaped)), now);
    set.add(&stuck("app", &[(10, 0, "dd")]), now);

    assert_eq!(
        samples(&set),
        [
            ("shop/web-0/app".to_string(), 2),
            ("shop/web-0/sidecar".to_string(), 1)
        ]
    );
    let pods: Vec<_> = set.pods().collect();
    assert_eq!(pods.len(), 1, "{pods:?}");
    let (key, processes) = pods[0];
    assert_eq!(
        (key.namespace.as_str(), key.pod.as_str(), key.uid.as_str()),
        ("shop", "web-0", "uid-1")
    );
    let first = processes.iter().find(|p| p.process.pid == 7).unwrap();
    assert_eq!(first.since, now, "first seen when first reported");
}

#[test]
fn a_refresh_forgets_what_is_gone_and_updates_the_rest() {
    let mut set = StuckSet::default();
    set.add(
        &stuck("app", &[(7, 4007, "sleep"), (8, 4008, "cat")]),
        SystemTime::now(),
    );

    let forgotten = set.refresh(|process| match process.host_pid {
        Some(4007) => Seen::Alive {
            state: "D".into(),
            wchan: "nfs_wait_bit_killable".into(),
        },
        _ => Seen::Gone,
    });
    assert_eq!(forgotten, 1);
    let (_, processes) = set.pods().next().unwrap();
    assert_eq!(processes.len(), 1);
    assert_eq!(processes[0].process.wchan, "nfs_wait_bit_killable");
    assert_eq!(samples(&set), [("shop/web-0/app".to_string(), 1)]);

    assert_eq!(set.refresh(|_| Seen::Gone), 1);
    assert!(set.is_empty());
    assert!(samples(&set).is_empty(), "no sample once nothing is stuck");
}

#[test]
fn a_container_not_made_by_cri_is_counted_under_its_id() {
    let mut set = StuckSet::default();
    let mut process = Process::named(5, "sleep");
    process.host_pid = 4005;
    let event = Event::Unkillable(Unkillable::now(
        Identity::for_container("default", "plain-ctr", ""),
        vec![process],
    ));
    set.add(&report(event), SystemTime::now());
    assert_eq!(samples(&set), [("//plain-ctr".to_string(), 1)]);
}

use super::*;
use crate::fixture::{FakeHost, PID_BASE};

fn v2_counter(dir: &Path, seen: u64) -> OomCounter {
    OomCounter {
        dir: dir.to_owned(),
        kind: Kind::V2 { seen },
    }
}

#[test]
fn a_growing_oom_kill_counter_is_an_oom_once() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("memory.events");
    std::fs::write(&events, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
    let mut counter = v2_counter(dir.path(), 0);
    assert_eq!(counter.check().unwrap(), OomCheck::Oom);
    assert_eq!(counter.check().unwrap(), OomCheck::Nothing, "already seen");
    std::fs::write(&events, "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n").unwrap();
    assert_eq!(
        counter.check().unwrap(),
        OomCheck::Nothing,
        "max grew, no kill"
    );
    std::fs::write(&events, "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n").unwrap();
    assert_eq!(counter.check().unwrap(), OomCheck::Oom);
}

#[test]
fn a_removed_cgroup_ends_the_watch_and_garbage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut counter = v2_counter(dir.path(), 0);
    assert_eq!(counter.check().unwrap(), OomCheck::Gone);
    std::fs::write(dir.path().join("memory.events"), "oom_kill many\n").unwrap();
    let err = counter.check().unwrap_err();
    assert!(err.to_string().contains("memory.events"), "{err}");

    let mut v1 = OomCounter {
        dir: dir.path().to_owned(),
        kind: Kind::V1,
    };
    assert_eq!(v1.check().unwrap(), OomCheck::Gone);
    std::fs::write(
        dir.path().join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    )
    .unwrap();
    assert_eq!(v1.check().unwrap(), OomCheck::Oom);
}

#[test]
fn v2_watches_memory_events_and_wakes_on_a_change() {
    let host = FakeHost::new(&[("cgroup2", "rw", "")]);
    host.process(PID_BASE, "init", 'S', "0::/ctr\n");
    let dir = host.cgroup("", "/ctr");
    let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
    assert!(
        cgroup.watch_oom().unwrap().is_none(),
        "no memory controller"
    );

    let events = dir.join("memory.events");
    std::fs::write(&events, "low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\n").unwrap();
    let OomWatch {
        notifier,
        mut counter,
    } = cgroup.watch_oom().unwrap().expect("memory.events is there");
    assert_eq!(
        notifier.consume().unwrap_err().kind(),
        io::ErrorKind::WouldBlock,
        "nothing happened yet"
    );
    std::fs::write(&events, "low 0\nhigh 0\nmax 0\noom 2\noom_kill 2\n").unwrap();
    notifier.consume().expect("the write notified");
    assert_eq!(
        counter.check().unwrap(),
        OomCheck::Oom,
        "the kill before the watch is not counted again"
    );
}

#[test]
fn v1_registration_errors_name_the_file() {
    let host = FakeHost::new(&[("cgroup", "rw,memory", "memory")]);
    host.process(PID_BASE, "init", 'S', "9:memory:/ctr\n");
    host.cgroup("memory", "/ctr");
    let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
    let err = cgroup.watch_oom().err().expect("no memory.oom_control");
    assert!(err.to_string().contains("memory.oom_control"), "{err}");
}

use super::*;
use crate::fixture::{FakeHost, HYBRID, PID_BASE};

#[test]
fn comm_with_spaces_and_parentheses_is_read_whole() {
    let stat = parse_stat("4242 (a) S 1 (b c)) T 17 4242 4242 0 -1 4194308 0").unwrap();
    assert_eq!(
        stat,
        Stat {
            comm: "a) S 1 (b c)".into(),
            state: 'T',
            ppid: 17,
            flags: 4194308,
        }
    );
    assert!(stat.is_exiting(), "0x4 is PF_EXITING");
    assert!(!parse_stat("1 (init) S 0 1 1 0 -1 4194560 0")
        .unwrap()
        .is_exiting());
}

#[test]
fn malformed_stat_lines_are_rejected() {
    assert_eq!(parse_stat("4242 sleep S 1"), None);
    assert_eq!(parse_stat("4242 (sleep)"), None);
    assert_eq!(parse_stat("4242 (sleep) S notanumber"), None);
}

#[test]
fn a_malformed_stat_file_is_an_error_naming_it() {
    let host = FakeHost::new(HYBRID);
    let dir = host.proc_root().join(PID_BASE.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stat"), "garbage").unwrap();
    let err = stat(&host.proc_root(), PID_BASE).unwrap_err();
    assert!(err.to_string().contains("stat"), "{err}");
}

#[test]
fn a_gone_process_reads_as_none_everywhere() {
    let host = FakeHost::new(HYBRID);
    let root = host.proc_root();
    assert_eq!(stat(&root, PID_BASE).unwrap(), None);
    assert_eq!(status(&root, PID_BASE).unwrap(), None);
    assert_eq!(cmdline(&root, PID_BASE).unwrap(), None);
    assert_eq!(cgroup_paths(&root, PID_BASE).unwrap(), None);
    assert!(children(&root, PID_BASE).unwrap().is_empty());
}

#[test]
fn lists_pids_and_reads_cmdline_and_cgroups() {
    let host = FakeHost::new(HYBRID);
    host.process(PID_BASE, "sh", 'S', "6:freezer:/ctr\n0::/ctr/sub\n");
    host.process(PID_BASE + 1, "zombie", 'Z', "0::/ctr\n");
    std::fs::write(
        host.proc_root().join(format!("{}/cmdline", PID_BASE + 1)),
        "",
    )
    .unwrap();
    std::fs::create_dir_all(host.proc_root().join("self")).unwrap();
    let root = host.proc_root();
    let mut all = pids(&root).unwrap();
    all.sort();
    assert_eq!(all, vec![PID_BASE, PID_BASE + 1], "`self` is no pid");
    assert_eq!(
        cmdline(&root, PID_BASE).unwrap().unwrap(),
        vec!["sh".to_string(), "--flag".to_string()]
    );
    assert_eq!(
        cmdline(&root, PID_BASE + 1).unwrap().unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        cgroup_paths(&root, PID_BASE).unwrap().unwrap(),
        vec!["/ctr".to_string(), "/ctr/sub".to_string()]
    );
    assert!(stat(&root, PID_BASE + 1)
        .unwrap()
        .unwrap()
        .is_zombie_or_dead());
}

#[test]
fn children_come_from_every_thread_and_ns_pids_pick_the_right_one() {
    let host = FakeHost::new(HYBRID);
    let root = host.proc_root();
    for pid in [PID_BASE, PID_BASE + 1, PID_BASE + 2] {
        host.process(pid, "p", 'S', "0::/ctr\n");
    }
    let task = |tid: i32| root.join(format!("{PID_BASE}/task/{tid}"));
    std::fs::create_dir_all(task(PID_BASE + 9)).unwrap();
    std::fs::write(
        task(PID_BASE).join("children"),
        format!("{} ", PID_BASE + 1),
    )
    .unwrap();
    std::fs::write(
        task(PID_BASE + 9).join("children"),
        format!("{}\n", PID_BASE + 2),
    )
    .unwrap();
    let mut found = children(&root, PID_BASE).unwrap();
    found.sort();
    assert_eq!(found, vec![PID_BASE + 1, PID_BASE + 2]);

    let status_of = |pid: i32, nspid: &str| {
        std::fs::write(
            root.join(format!("{pid}/status")),
            format!("Name:\tp\nNSpid:\t{nspid}\nVmRSS:\t  1234 kB\n"),
        )
        .unwrap()
    };
    status_of(PID_BASE + 1, &format!("{} 2", PID_BASE + 1));
    status_of(PID_BASE + 2, &format!("{} 7", PID_BASE + 2));
    assert_eq!(
        child_with_ns_pid(&root, PID_BASE, 7).unwrap(),
        Some(PID_BASE + 2)
    );
    assert_eq!(child_with_ns_pid(&root, PID_BASE, 3).unwrap(), None);
    assert_eq!(child_with_ns_pid(&root, 0, 7).unwrap(), None);
    let status = status(&root, PID_BASE + 1).unwrap().unwrap();
    assert_eq!(status.number("VmRSS"), Some(1234));
    assert_eq!(status.field("Name"), Some("p"));
    assert_eq!(status.field("Nope"), None);
}

#[test]
fn this_process_reads_from_the_host_proc() {
    let me = std::process::id() as i32;
    let root = Path::new(HOST_PROC);
    let mine = stat(root, me).unwrap().unwrap();
    assert!(!mine.is_exiting());
    assert_eq!(mine.ppid, nix::unistd::getppid().as_raw());
    assert!(pids(root).unwrap().contains(&me));
    let status = status(root, me).unwrap().unwrap();
    assert_eq!(status.ns_pids().first(), Some(&me));
}

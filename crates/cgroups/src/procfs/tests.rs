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

/// A real stat line of a shim, with a comm that holds a space and a parenthesis.
const STAT_LINE: &str = "4242 (a) b) S 1 4242 4242 0 -1 4194560 812 9 0 0 31 12 205 47 20 0 3 0 \
                         1805 12345678 300 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1";

#[test]
fn cpu_ticks_add_user_and_system_time_after_the_last_parenthesis() {
    assert_eq!(
        accounting::parse_cpu_ticks(STAT_LINE),
        Some(CpuTicks {
            own: 31 + 12,
            waited_children: 205 + 47,
        })
    );
    // The fixture's stat lines stop before the times: that is malformed for this reader.
    assert_eq!(accounting::parse_cpu_ticks("7 (p) S 1 7 0"), None);
    let host = FakeHost::new(HYBRID);
    host.process(PID_BASE, "p", 'S', "0::/ctr\n");
    let err = cpu_ticks(&host.proc_root(), PID_BASE).unwrap_err();
    assert!(err.to_string().contains("stat"), "{err}");
}

#[test]
fn threads_fds_rollup_and_switches_are_read_per_process_and_thread() {
    let host = FakeHost::new(HYBRID);
    let root = host.proc_root();
    host.process(PID_BASE, "shim", 'S', "0::/ctr\n");
    let dir = root.join(PID_BASE.to_string());
    std::fs::create_dir_all(dir.join(format!("task/{}", PID_BASE + 1))).unwrap();
    std::fs::write(
        dir.join(format!("task/{}/status", PID_BASE + 1)),
        "Name:\tpool\nvoluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t2\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("fd")).unwrap();
    for fd in ["0", "1", "7"] {
        std::fs::write(dir.join("fd").join(fd), "").unwrap();
    }
    std::fs::write(dir.join("smaps_rollup"), "Rss:  6144 kB\nPss:  1228 kB\n").unwrap();
    std::fs::write(dir.join("schedstat"), "123456789 2000 31\n").unwrap();

    let mut tids = threads(&root, PID_BASE).unwrap();
    tids.sort();
    assert_eq!(tids, vec![PID_BASE, PID_BASE + 1]);
    let pool = thread_status(&root, PID_BASE, PID_BASE + 1)
        .unwrap()
        .unwrap();
    assert_eq!(pool.context_switches(), Some(9));
    assert_eq!(thread_status(&root, PID_BASE, PID_BASE + 5).unwrap(), None);
    let mut fds = open_fds(&root, PID_BASE).unwrap().unwrap();
    fds.sort();
    assert_eq!(fds, vec![0, 1, 7]);
    let rollup = smaps_rollup(&root, PID_BASE).unwrap().unwrap();
    assert_eq!(rollup.number("Pss"), Some(1228));
    assert_eq!(rollup.number("Rss"), Some(6144));
    assert_eq!(cpu_ns(&root, PID_BASE).unwrap(), Some(123_456_789));

    let gone = PID_BASE + 3;
    assert!(threads(&root, gone).unwrap().is_empty());
    assert_eq!(open_fds(&root, gone).unwrap(), None);
    assert_eq!(smaps_rollup(&root, gone).unwrap(), None);
    assert_eq!(cpu_ns(&root, gone).unwrap(), None);
    assert_eq!(cpu_ticks(&root, gone).unwrap(), None);
}

#[test]
fn a_status_without_both_switch_counts_has_none() {
    let status = Status("voluntary_ctxt_switches:\t7\n".to_string());
    assert_eq!(status.context_switches(), None);
}

#[test]
fn status_fields_are_found_by_their_whole_name() {
    let status = Status("VmRSS:\t   6544 kB\nRssAnon:\t    1228 kB\n".to_string());
    assert_eq!(status.number("RssAnon"), Some(1228));
    assert_eq!(status.number("Rss"), None);
}

#[test]
fn this_process_has_cpu_time_threads_and_fds() {
    let me = std::process::id() as i32;
    let root = Path::new(HOST_PROC);
    assert!(cpu_ticks(root, me).unwrap().is_some());
    assert!(cpu_ns(root, me).unwrap().unwrap() > 0);
    assert!(threads(root, me).unwrap().contains(&me));
    assert!(thread_status(root, me, me)
        .unwrap()
        .unwrap()
        .context_switches()
        .is_some());
    assert!(open_fds(root, me).unwrap().unwrap().len() >= 3);
    assert!(smaps_rollup(root, me)
        .unwrap()
        .unwrap()
        .number("Pss")
        .is_some());
}

//! Helpers for the root tests: real, uniquely named cgroups that are killed and removed on
//! drop even when a test fails, processes spawned into them, and reaping.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use undertaker_cgroups::{Hierarchy, Setup};

/// A cap on every test cgroup, so that a fork loop gone wrong cannot exhaust the machine.
const PIDS_MAX: &str = "4000";

static SERIAL: Mutex<()> = Mutex::new(());
static SUBREAPER: Once = Once::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The mount points this test needs, found from the host's mount table.
pub struct Mounts {
    pub unified: PathBuf,
    pub freezer: PathBuf,
    pub pids: PathBuf,
}

/// Runs only as root on a host with cgroup2 plus v1 freezer and pids mounted (a hybrid host);
/// otherwise prints why and returns `None`. Root tests run one at a time: they reap every
/// child of this process, which must not steal another test's children.
pub fn root_test(name: &str) -> Option<(MutexGuard<'static, ()>, Mounts)> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped {name}: needs root to create cgroups");
        return None;
    }
    let setup = Setup::host().expect("reading the host mount table");
    let mount = |wanted: &dyn Fn(&Hierarchy) -> bool| {
        setup
            .mounts()
            .iter()
            .find(|m| wanted(&m.hierarchy) && m.root == "/")
            .map(|m| m.mount_point.clone())
    };
    let unified = mount(&|h| *h == Hierarchy::Unified);
    let freezer = mount(&|h| h.has_controller("freezer"));
    let pids = mount(&|h| h.has_controller("pids"));
    let (Some(unified), Some(freezer), Some(pids)) = (unified, freezer, pids) else {
        eprintln!("skipped {name}: needs a hybrid host (cgroup2 plus v1 freezer and pids)");
        return None;
    };
    let lock = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    SUBREAPER.call_once(|| {
        // Orphans of the spawned trees come back to us, not to a PID 1 that never reaps.
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    });
    Some((
        lock,
        Mounts {
            unified,
            freezer,
            pids,
        },
    ))
}

/// `undertaker-test-<pid>-<n>` in the unified, freezer and pids hierarchies.
pub struct TestCgroup {
    pub name: String,
    pub unified: PathBuf,
    pub freezer: PathBuf,
    pub pids: PathBuf,
    /// The shells we spawned, waited for on drop once the cgroup is killed.
    children: RefCell<Vec<Child>>,
}

impl TestCgroup {
    pub fn new(mounts: &Mounts) -> Self {
        let name = format!(
            "undertaker-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let cgroup = TestCgroup {
            unified: mounts.unified.join(&name),
            freezer: mounts.freezer.join(&name),
            pids: mounts.pids.join(&name),
            name,
            children: RefCell::default(),
        };
        for dir in cgroup.tops() {
            std::fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        std::fs::write(cgroup.pids.join("pids.max"), PIDS_MAX).unwrap();
        cgroup
    }

    fn tops(&self) -> [&PathBuf; 3] {
        [&self.unified, &self.freezer, &self.pids]
    }

    /// Creates sub-cgroup `sub` (e.g. `a/b`) in the three hierarchies.
    pub fn sub(&self, sub: &str) {
        for top in self.tops() {
            std::fs::create_dir_all(top.join(sub)).unwrap();
        }
    }

    /// Starts `sh -c script` in sub-cgroup `sub` of each hierarchy (`""` for the top; `place`
    /// overrides it per hierarchy as `(unified, freezer, pids)`), moved there before it runs
    /// a single line of the script. Returns its pid.
    pub fn spawn(&self, sub: &str, script: &str) -> i32 {
        self.spawn_placed((sub, sub, sub), script)
    }

    pub fn spawn_placed(&self, place: (&str, &str, &str), script: &str) -> i32 {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read _ || exit 1; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning sh");
        let pid = child.id() as i32;
        for (top, sub) in [
            (&self.unified, place.0),
            (&self.freezer, place.1),
            (&self.pids, place.2),
        ] {
            std::fs::write(top.join(sub).join("cgroup.procs"), pid.to_string()).unwrap();
        }
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        self.children.borrow_mut().push(child);
        pid
    }

    /// Pids in the unified tree (every process of the test cgroup).
    pub fn pids_now(&self) -> BTreeSet<i32> {
        all_pids(&self.unified)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Thaw first: a frozen task keeps its SIGKILL pending.
        for dir in dirs_depth_first(&self.freezer) {
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
        }
        let _ = std::fs::write(self.unified.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left: BTreeSet<i32> = self.tops().iter().flat_map(|t| all_pids(t)).collect();
            if left.is_empty() || Instant::now() > deadline {
                if !left.is_empty() {
                    eprintln!("cleanup of {}: pids {left:?} would not die", self.name);
                }
                break;
            }
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for top in self.tops() {
            for dir in dirs_depth_first(top) {
                remove_cgroup_dir(&dir);
            }
        }
        for mut child in self.children.take() {
            let _ = child.wait();
        }
        reap_children();
    }
}

/// Reaps every exited child of this process (orphans it inherited as a subreaper), waiting a
/// bounded time for dying ones.
pub fn reap_children() {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match waitpid(
            None::<Pid>,
            Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
        ) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Ok(WaitStatus::StillAlive) => {
                eprintln!("children still alive after cleanup");
                return;
            }
            Ok(_) => {}
            Err(Errno::ECHILD) | Err(_) => return,
        }
    }
}

fn remove_cgroup_dir(dir: &Path) {
    // rmdir can briefly fail with EBUSY while the last task finishes exiting.
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Err(err) = std::fs::remove_dir(dir) {
        if err.kind() == std::io::ErrorKind::NotFound {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("cannot remove {}: {err}", dir.display());
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn dirs_depth_first(top: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![top.to_owned()];
    while let Some(dir) = pending.pop() {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            pending.extend(
                entries
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.path()),
            );
            found.push(dir);
        }
    }
    found.reverse();
    found
}

fn all_pids(top: &Path) -> BTreeSet<i32> {
    dirs_depth_first(top)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Polls `ready` until true; panics (naming `what`) after a generous bound. For setting up
/// a test's state, never for asserting speed.
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `f` on a thread and fails the test if it has not returned after a generous bound:
/// catches a hang without asserting on speed.
pub fn must_return<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what} hung"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

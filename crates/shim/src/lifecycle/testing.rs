//! Fakes for the core's seams and a harness that drives a core on them, without root:
//! processes are pids the fake runtime hands out, exits are what the test says, the
//! init's report channel is a real pipe the test writes records into.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    os::fd::OwnedFd,
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicI32, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use async_trait::async_trait;
use containerd_shim::ExitSignal;
use containerd_shim_protos::{
    api::CreateTaskRequest,
    protobuf::{well_known_types::any::Any, CodedOutputStream},
};
use undertaker_cgroups::{KillMethod, KillReport, ProcessInfo};

use super::{
    seams::{Cgroup, EventSink, Host, OciRuntime, RuntimeFactory, Seams},
    Core, Events, ShimLife,
};
use crate::{
    error::{Result, ShimError},
    exits::ExitRouter,
    options::RuntimeOptions,
    publisher::Collected,
    runtime::{LaunchOpts, RuntimeError},
};

/// A gate a fake operation waits at until the test opens it.
#[derive(Default)]
pub(crate) struct Gate {
    closed: Mutex<bool>,
    opened: std::sync::Condvar,
    reached: tokio::sync::Notify,
    waiting: AtomicBool,
}

impl Gate {
    pub(crate) fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }

    pub(crate) fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }

    /// Waits (blocking) while the gate is closed.
    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        if *closed {
            self.waiting.store(true, Ordering::SeqCst);
            self.reached.notify_one();
        }
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
    }

    /// Closes the gate until the guard is dropped: a test that fails while something waits
    /// at the gate then ends instead of hanging in the runtime's shutdown, which waits for
    /// its blocking threads.
    pub(crate) fn closed_until_dropped(self: &Arc<Self>) -> OpensOnDrop {
        self.close();
        OpensOnDrop(self.clone())
    }

    /// Resolves once something waits at the gate.
    pub(crate) async fn reached(&self) {
        while !self.waiting.load(Ordering::SeqCst) {
            let _ = tokio::time::timeout(Duration::from_millis(50), self.reached.notified()).await;
        }
    }
}

/// Opens its gate when dropped.
pub(crate) struct OpensOnDrop(Arc<Gate>);

impl Drop for OpensOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Records every runtime call; hands out pids; keeps each process's report pipe.
#[derive(Default)]
pub(crate) struct FakeRuntime {
    next_pid: AtomicI32,
    pub(crate) calls: Mutex<Vec<String>>,
    /// The report channel's write end each process got, by pid.
    pub(crate) report_fds: Mutex<HashMap<i32, OwnedFd>>,
    pub(crate) fail_create: AtomicBool,
    /// Closed by a test to hold `kill` calls.
    pub(crate) kill_gate: Arc<Gate>,
}

impl FakeRuntime {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn launch(&self, opts: LaunchOpts) -> i32 {
        let pid = 1000 + self.next_pid.fetch_add(1, Ordering::SeqCst);
        if let Some(fd) = opts.preserve_fds.into_iter().next() {
            self.report_fds.lock().unwrap().insert(pid, fd);
        }
        pid
    }
}

#[async_trait]
impl OciRuntime for FakeRuntime {
    async fn create(&self, id: &str, _b: &Path, opts: LaunchOpts) -> Result<i32, RuntimeError> {
        self.record(format!("create {id}"));
        if self.fail_create.load(Ordering::SeqCst) {
            return Err(RuntimeError::Failed {
                command: format!("create {id}"),
                status: 1,
                message: "fake failure".into(),
            });
        }
        Ok(self.launch(opts))
    }
    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(format!("start {id}"));
        Ok(())
    }
    async fn exec(&self, id: &str, _p: &Path, opts: LaunchOpts) -> Result<i32, RuntimeError> {
        self.record(format!("exec {id}"));
        Ok(self.launch(opts))
    }
    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError> {
        let gate = self.kill_gate.clone();
        tokio::task::spawn_blocking(move || gate.pass())
            .await
            .unwrap();
        self.record(format!("kill {id} {signal} all={all}"));
        Ok(())
    }
    async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        self.record(format!("delete {id} force={force}"));
        Ok(())
    }
    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(format!("pause {id}"));
        Ok(())
    }
    async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(format!("resume {id}"));
        Ok(())
    }
    async fn update(&self, id: &str, _r: &Path) -> Result<(), RuntimeError> {
        self.record(format!("update {id}"));
        Ok(())
    }
    async fn ps(&self, _id: &str) -> Result<Vec<i32>, RuntimeError> {
        Ok(Vec::new())
    }
}

struct OneRuntime(Arc<FakeRuntime>);

impl RuntimeFactory for OneRuntime {
    fn runtime(&self, _o: &RuntimeOptions, _ns: &str, _b: &Path) -> Arc<dyn OciRuntime> {
        self.0.clone()
    }
}

/// What the fake cgroup's kills find, one report per kill (then empty ones).
#[derive(Default)]
pub(crate) struct FakeCgroup {
    pub(crate) reports: Mutex<VecDeque<KillReport>>,
    pub(crate) kills: AtomicI32,
    pub(crate) kill_gate: Gate,
}

impl Cgroup for Arc<FakeCgroup> {
    fn kill_all(&self, _timeout: Duration) -> std::result::Result<KillReport, String> {
        self.kill_gate.pass();
        self.kills.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .reports
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| report(&[], &[])))
    }
    fn metrics(&self) -> Result<Any> {
        Err(ShimError::Other("no metrics in the fake".into()))
    }
    fn watch_oom(&self, _id: &str, _events: Events) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
}

#[derive(Default)]
pub(crate) struct FakeHost {
    pub(crate) cgroup: Arc<FakeCgroup>,
    pub(crate) exiting: Mutex<HashSet<i32>>,
    pub(crate) alive: Mutex<HashSet<i32>>,
}

impl Host for FakeHost {
    fn cgroup_of(&self, _id: &str, _pid: i32) -> Option<Arc<dyn Cgroup>> {
        Some(Arc::new(self.cgroup.clone()))
    }
    fn kill_tree(&self, root: i32) -> Vec<ProcessInfo> {
        vec![process(root, 'S', "sh")]
    }
    fn is_exiting(&self, pid: i32) -> bool {
        self.exiting.lock().unwrap().contains(&pid)
    }
    fn exists(&self, pid: i32) -> bool {
        self.alive.lock().unwrap().contains(&pid)
    }
    fn host_pid_of_child(&self, _parent: i32, _ns_pid: i32) -> Option<i32> {
        None
    }
}

pub(crate) fn process(pid: i32, state: char, comm: &str) -> ProcessInfo {
    ProcessInfo {
        pid,
        ppid: 1,
        comm: comm.into(),
        cmdline: comm.into(),
        state,
        wchan: if state == 'D' {
            "fuse_wait".into()
        } else {
            String::new()
        },
    }
}

pub(crate) fn report(killed: &[ProcessInfo], unkillable: &[ProcessInfo]) -> KillReport {
    KillReport {
        method: KillMethod::CgroupKill,
        killed: killed.to_vec(),
        unkillable: unkillable.to_vec(),
        elapsed: Duration::from_millis(1),
    }
}

/// A core on fakes, with one bundle directory per container.
pub(crate) struct Harness {
    pub(crate) core: Arc<Core>,
    pub(crate) sink: Arc<Collected>,
    pub(crate) runtime: Arc<FakeRuntime>,
    pub(crate) host: Arc<FakeHost>,
    pub(crate) exits: ExitRouter,
    pub(crate) exit: Arc<ExitSignal>,
    dir: tempfile::TempDir,
}

impl Harness {
    pub(crate) fn new() -> Self {
        let (sink, runtime, host) = (
            Arc::new(Collected::default()),
            Arc::new(FakeRuntime::default()),
            Arc::new(FakeHost::default()),
        );
        let sink_seam: Arc<dyn EventSink> = sink.clone();
        let seams = Seams {
            runtimes: Arc::new(OneRuntime(runtime.clone())),
            host: host.clone(),
            sink: sink_seam,
        };
        let exits = ExitRouter::default();
        let exit = Arc::new(ExitSignal::default());
        let life = ShimLife::new(exit.clone());
        Harness {
            core: Arc::new(Core::new(seams, "k8s.io", exits.clone(), life)),
            sink,
            runtime,
            host,
            exits,
            exit,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A create request for `id` running under undertaker-init (`/bin/true` stands in).
    pub(crate) fn create_request(&self, id: &str) -> CreateTaskRequest {
        self.create_request_with(id, "", "")
    }

    /// The same with more annotations and mounts (JSON members and array items).
    pub(crate) fn create_request_with(
        &self,
        id: &str,
        annotations: &str,
        mounts: &str,
    ) -> CreateTaskRequest {
        let bundle = self.dir.path().join(id);
        std::fs::create_dir_all(&bundle).unwrap();
        let comma = if annotations.is_empty() { "" } else { "," };
        let spec = format!(
            r#"{{"ociVersion":"1.0.2","process":{{"user":{{"uid":0,"gid":0}},"args":["sleep","100"],"cwd":"/"}},
            "root":{{"path":"rootfs"}},"linux":{{"namespaces":[{{"type":"pid"}}]}},"mounts":[{mounts}],
            "annotations":{{"io.kubernetes.cri.sandbox-name":"web-0",
                           "io.kubernetes.cri.container-name":"app"{comma}{annotations}}}}}"#
        );
        std::fs::write(bundle.join("config.json"), spec).unwrap();
        CreateTaskRequest {
            id: id.into(),
            bundle: bundle.display().to_string(),
            options: Some(options_any("InitPath = \"/bin/true\"\n")).into(),
            ..Default::default()
        }
    }

    /// A directory for the test's own files.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates and starts `id`; returns its init's pid.
    pub(crate) async fn run(&self, id: &str) -> i32 {
        let pid = self.core.create(self.create_request(id)).await.unwrap();
        self.core.start(id, "").await.unwrap();
        pid as i32
    }

    /// Writes report records as the init of `pid` would; `close` ends its channel.
    pub(crate) fn init_says(&self, pid: i32, records: &str, close: bool) {
        use std::io::Write;
        let mut fds = self.runtime.report_fds.lock().unwrap();
        let fd = fds.get(&pid).expect("the process has a report channel");
        let mut file = std::fs::File::from(fd.try_clone().unwrap());
        file.write_all(records.as_bytes()).unwrap();
        if close {
            fds.remove(&pid);
        }
    }

    /// The process `pid` exits: its report channel closes, the reaper sees its status.
    pub(crate) fn exit(&self, pid: i32, code: i32) {
        self.runtime.report_fds.lock().unwrap().remove(&pid);
        self.exits.exited(pid, code);
    }

    /// Waits (bounded) until `topic` has been published `n` times.
    pub(crate) async fn published(&self, topic: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.sink.topics().iter().filter(|t| *t == topic).count();
            if seen >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{topic} not published {n} times; published: {:?}",
                self.sink.topics()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub(crate) async fn exits_within(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.exit.wait()).await.is_ok()
    }
}

/// `runtimeoptions.v1.Options` with `body` as its ConfigBody.
fn options_any(body: &str) -> Any {
    let mut value = Vec::new();
    {
        let mut out = CodedOutputStream::vec(&mut value);
        out.write_string(3, body).unwrap();
        out.flush().unwrap();
    }
    Any {
        type_url: crate::options::RUNTIME_OPTIONS_TYPE.into(),
        value,
        ..Default::default()
    }
}

//! One hand-started shim in a testbed, the bundles and requests the cases send it, and the
//! checks every refused request must pass: the expected ttrpc code, a message that names
//! what was wrong, nothing left behind, and the shim still serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_shim_protos::api::{self, CreateTaskRequest};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::ttrpc::Code;
use serde_json::Value;
use undertaker_reliability::bundle::{self, bind_rootfs, Bundle};
use undertaker_reliability::own_shim::{context, refusal, runtime_options, OwnShim};
use undertaker_testbed::{cgroup_dirs, RuntimeOptions, Testbed};

/// The containerd namespace the hand-started shim serves.
pub const NAMESPACE: &str = "reliability";
/// The id the shim is started for (`start`'s `-id`), also its first container.
const SHIM_ID: &str = "first";

pub struct Fixture {
    pub testbed: Arc<Testbed>,
    pub shim: OwnShim,
    /// Where the bundles are made.
    dir: PathBuf,
    /// The busybox tree every create request binds onto its bundle's rootfs.
    rootfs: PathBuf,
    /// What went wrong so far, one line per problem.
    failures: Vec<String>,
}

impl Fixture {
    pub async fn start(testbed: Arc<Testbed>) -> anyhow::Result<Fixture> {
        let dir = testbed.dir().join("hand-made");
        let rootfs = dir.join("busybox-rootfs");
        bundle::busybox_rootfs(&rootfs)?;
        let shim = OwnShim::start(&testbed, NAMESPACE, SHIM_ID, &dir.join(SHIM_ID)).await?;
        Ok(Fixture {
            testbed,
            shim,
            dir,
            rootfs,
            failures: Vec::new(),
        })
    }

    /// An empty bundle directory for container `id`.
    pub fn bundle(&self, id: &str) -> anyhow::Result<Bundle> {
        Bundle::create(&self.dir, id)
    }

    /// A bundle path that does not exist.
    pub fn missing_bundle(&self, id: &str) -> Bundle {
        Bundle::missing(&self.dir, id)
    }

    /// containerd's default spec for container `id` running `args`, in the testbed's cgroup
    /// parent.
    pub fn spec(&self, id: &str, args: &[&str]) -> anyhow::Result<Value> {
        bundle::spec(args, &self.cgroup_path(id))
    }

    fn cgroup_path(&self, id: &str) -> String {
        format!("{}/{id}", self.testbed.cgroup_parent())
    }

    /// The options containerd's CRI sends for the testbed's `undertaker` runtime.
    pub fn options(&self) -> Any {
        runtime_options(&self.testbed.runtime_options_path().to_string_lossy(), "")
    }

    /// The testbed's runtime options with `InitPath` replaced, as a `ConfigBody`.
    pub fn options_with_init(&self, init: &Path) -> Any {
        let options = RuntimeOptions {
            init_path: init.to_string_lossy().into_owned(),
            ..self.testbed.runtime_options()
        };
        runtime_options("", &options.to_toml())
    }

    /// A create request for `bundle`, its rootfs bound from the busybox tree.
    pub fn request(&self, bundle: &Bundle, options: Option<Any>) -> CreateTaskRequest {
        CreateTaskRequest {
            id: bundle.id.clone(),
            bundle: bundle.path(),
            rootfs: vec![bind_rootfs(&self.rootfs)],
            options: options.map_or(MessageField::none(), MessageField::some),
            ..Default::default()
        }
    }

    /// Records a failure unless `result` is a refusal with `code` whose message mentions
    /// each of `mentions`.
    pub fn expect_refusal<T>(
        &mut self,
        case: &str,
        result: containerd_shim_protos::ttrpc::Result<T>,
        code: Code,
        mentions: &[&str],
    ) {
        match refusal(result) {
            None => self
                .failures
                .push(format!("{case}: accepted, expected {code:?}")),
            Some(refused) => {
                eprintln!("{case}: {:?}: {}", refused.code, refused.message);
                if refused.code != code {
                    self.failures.push(format!(
                        "{case}: code {:?}, expected {code:?} (message: {})",
                        refused.code, refused.message
                    ));
                }
                for mention in mentions {
                    if !refused.message.contains(mention) {
                        self.failures.push(format!(
                            "{case}: message {:?} does not mention {mention:?}",
                            refused.message
                        ));
                    }
                }
            }
        }
    }

    /// Sends a create request that must be refused with `code`, then checks it left
    /// nothing: no mount in the bundle, no cgroup, no runc state.
    pub async fn expect_create_refused(
        &mut self,
        case: &str,
        request: CreateTaskRequest,
        code: Code,
        mentions: &[&str],
    ) {
        let result = self.shim.task().create(context(), &request).await;
        self.expect_refusal(case, result, code, mentions);
        self.expect_nothing_left(case, &request.id, Path::new(&request.bundle));
    }

    /// Records a failure for anything container `id` left: mounts under its bundle, its
    /// cgroup in any hierarchy, runc state (`<root>/<id>`, or `<root>/<namespace>/<id>`
    /// where runc's own shim keeps it).
    pub fn expect_nothing_left(&mut self, case: &str, id: &str, bundle: &Path) {
        let mounts: Vec<PathBuf> = self
            .testbed
            .leftovers()
            .mounts
            .into_iter()
            .filter(|mount| mount.starts_with(bundle))
            .collect();
        if !mounts.is_empty() {
            self.failures
                .push(format!("{case}: mounts left in the bundle: {mounts:?}"));
        }
        if id.is_empty() {
            // No container of that id can exist; the paths below would name their parents.
            return;
        }
        let cgroups = cgroup_dirs(&self.cgroup_path(id));
        if !cgroups.is_empty() {
            self.failures
                .push(format!("{case}: cgroups left: {cgroups:?}"));
        }
        let root = self.testbed.undertaker_runc_root();
        let state: Vec<PathBuf> = [root.join(id), root.join(NAMESPACE).join(id)]
            .into_iter()
            .filter(|path| path.exists())
            .collect();
        if !state.is_empty() {
            self.failures
                .push(format!("{case}: runc state left: {state:?}"));
        }
    }

    /// A container that must work on the same shim after the bad requests: created,
    /// started, exits 3, deleted, leaving nothing.
    pub async fn expect_a_good_container(&mut self, id: &str) -> anyhow::Result<()> {
        let bundle = self.bundle(id)?;
        bundle.write_spec(&self.spec(id, &["sh", "-c", "exit 3"])?)?;
        let request = self.request(&bundle, Some(self.options()));
        let task = self.shim.task();
        task.create(context(), &request).await?;
        let started = task
            .start(
                context(),
                &api::StartRequest {
                    id: id.to_string(),
                    ..Default::default()
                },
            )
            .await?;
        anyhow::ensure!(started.pid > 0, "started without a pid");
        let waited = task
            .wait(
                context(),
                &api::WaitRequest {
                    id: id.to_string(),
                    ..Default::default()
                },
            )
            .await?;
        if waited.exit_status != 3 {
            self.failures.push(format!(
                "the good container {id} exited {}, expected 3",
                waited.exit_status
            ));
        }
        task.delete(
            context(),
            &api::DeleteRequest {
                id: id.to_string(),
                ..Default::default()
            },
        )
        .await?;
        self.expect_nothing_left(&format!("good container {id}"), id, &bundle.dir);
        Ok(())
    }

    /// Every failure recorded, or Ok; then the shim is shut down (it serves no container).
    pub async fn finish(self) -> anyhow::Result<()> {
        let shutdown = self.shim.shutdown(SHIM_ID).await;
        anyhow::ensure!(
            self.failures.is_empty(),
            "{} problems:\n{}\n--- the shim's log ---\n{}",
            self.failures.len(),
            self.failures.join("\n"),
            self.shim.log_tail(40)
        );
        shutdown
    }
}

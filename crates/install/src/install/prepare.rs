//! Everything `install` works out before it touches the node: the plan of file changes, whether
//! containerd must restart and how, and every problem that stops the install. The dry run and
//! the real run both start here, so they agree on what would happen and on what would not.

use std::path::{Path, PathBuf};

use super::InstallOptions;
use crate::containerd::{RegisterOptions, Registration, ReplacedDefault};
use crate::layout::backup_path;
use crate::plan::{Content, BINARY_MODE};
use crate::preflight::{self, Problem, Problems};
use crate::restart::RestartCommand;
use crate::runtime_config::{self, RuntimeOptions, RUNTIME_CONFIG_PATH};
use crate::{ConfigError, ContainerdConfig, InstallState, Plan};

/// The install, worked out.
#[derive(Debug)]
pub struct Prepared {
    /// The changes (as far as they could be worked out when there are problems).
    pub plan: Plan,
    /// The plan changes what containerd reads, so containerd must restart to load it.
    pub config_changed: bool,
    pub restart: Option<RestartCommand>,
    /// Every reason the install cannot go ahead; empty when it can.
    pub problems: Problems,
}

/// Works the install out and runs every check the install makes before acting.
pub fn prepare(options: &InstallOptions) -> Prepared {
    let node = &options.node;
    let host = &node.host_root;
    let mut problems = Problems::default();
    let previous = problems.take(InstallState::load(host));
    let config = problems.take(ContainerdConfig::load(host, &node.containerd_config));
    let binaries = read_binaries(options, &mut problems);
    let existing = problems.take(runtime_config::load_existing(
        &host.path(RUNTIME_CONFIG_PATH),
    ));

    let mut planned = None;
    if let (Some(previous), Some(config)) = (&previous, &config) {
        let earlier_default = previous
            .as_ref()
            .and_then(|state| state.replaced_default.as_ref());
        let registration = problems.take(config.register(RegisterOptions {
            replace_ours: previous.is_some(),
            make_default: options.make_default,
            replaced_default: earlier_default,
        }));
        let init_path = node.layout.init_path();
        let runtime_options = existing.and_then(|existing| {
            problems.take(runtime_options(
                existing,
                config,
                &init_path,
                options.make_default.then_some(earlier_default),
            ))
        });
        if let (Some(registration), Some(runtime_options)) = (registration, runtime_options) {
            let inputs = Inputs {
                binaries: &binaries,
                runtime_options: &runtime_options,
                config,
                registration: &registration,
                previous: previous.as_ref(),
            };
            planned = problems
                .take(plan_install(options, &inputs))
                .map(|plan| (plan, registration));
        }
    }

    // Without a plan (a config that cannot be read, say), the install would change the config
    // once that is fixed: the restart is checked as it would be then.
    let config_changed = planned.as_ref().is_none_or(|(plan, registration)| {
        config
            .as_ref()
            .is_some_and(|config| plan.touches(config.path()))
            || registration
                .drop_in
                .as_ref()
                .is_some_and(|(path, _)| plan.touches(path))
    });
    let restart = if config_changed {
        problems.take(node.restart.resolve(host)).flatten()
    } else {
        None
    };
    let plan = planned.map(|(plan, _)| plan).unwrap_or_default();
    for problem in preflight::unwritable(&plan) {
        problems.push(problem);
    }
    Prepared {
        plan,
        config_changed,
        restart,
        problems,
    }
}

/// The binaries to install and their host destinations; each one that cannot be read is a
/// problem.
fn read_binaries(options: &InstallOptions, problems: &mut Problems) -> Vec<(PathBuf, Vec<u8>)> {
    let mut binaries = Vec::new();
    for (name, destination) in options.node.layout.binaries() {
        let path = options.source_dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => binaries.push((destination, bytes)),
            Err(source) => problems.push(Problem::MissingBinary { path, source }),
        }
    }
    binaries
}

struct Inputs<'a> {
    binaries: &'a [(PathBuf, Vec<u8>)],
    runtime_options: &'a RuntimeOptions,
    config: &'a ContainerdConfig,
    registration: &'a Registration,
    previous: Option<&'a InstallState>,
}

/// The files an install writes, in an order that never lets containerd see a config naming a
/// file that is not there yet: binaries, runtime config, drop-in, backup, state, then the config.
fn plan_install(options: &InstallOptions, inputs: &Inputs<'_>) -> Result<Plan, Problem> {
    let host = &options.node.host_root;
    let (config, registration) = (inputs.config, inputs.registration);
    let mut plan = Plan::default();
    let mut files = Vec::new();
    for (destination, bytes) in inputs.binaries {
        plan.set(
            host,
            destination,
            Some(bytes.clone()),
            Some(BINARY_MODE),
            Content::Binary,
        )?;
        files.push(destination.clone());
    }

    let runtime_config_path = Path::new(RUNTIME_CONFIG_PATH);
    plan.set(
        host,
        runtime_config_path,
        Some(runtime_config::file_content(inputs.runtime_options).into_bytes()),
        None,
        Content::Text,
    )?;
    files.push(runtime_config_path.to_path_buf());

    if let Some((path, content)) = &registration.drop_in {
        plan.set(
            host,
            path,
            Some(content.clone().into_bytes()),
            None,
            Content::Text,
        )?;
    }

    let mut state = inputs.previous.cloned().unwrap_or_default();
    state.containerd_config = config.path().to_path_buf();
    state.drop_in = registration.drop_in.as_ref().map(|(path, _)| path.clone());
    state.replaced_default = registration.replaced_default.clone();
    for file in files {
        if !state.files.contains(&file) {
            state.files.push(file);
        }
    }
    if registration.original_is_pristine {
        // The config as it is now holds nothing of ours: it is the one uninstall restores.
        let backup = backup_path(config.path());
        let original = config.original().map(|text| text.as_bytes().to_vec());
        state.config_created = original.is_none();
        state.config_backup = original.is_some().then(|| backup.clone());
        // The backup is as readable as the config (which may hold registry credentials).
        let config_mode = crate::fsio::mode_if_exists(&host.path(config.path()))?;
        plan.set(host, &backup, original, config_mode, Content::Text)?;
    }
    plan.set(
        host,
        InstallState::path(),
        Some(state.to_file_content().into_bytes()),
        None,
        Content::Text,
    )?;

    plan.set(
        host,
        config.path(),
        Some(registration.config.clone().into_bytes()),
        None,
        Content::Text,
    )?;
    Ok(plan)
}

/// The runtime options: where the init is, and the node's runc options, over whatever else an
/// operator set in the existing runtime config (`NoPivotRoot`, `IoUid`, ...), which is kept.
///
/// With `--default` (`make_default` holds the default an earlier install replaced, if any),
/// every pod runs under undertaker, so every key of the replaced default runtime's options
/// carries over, read by the shim's own parser: a key the shim does not take is a problem,
/// never silently dropped.
fn runtime_options(
    existing: RuntimeOptions,
    config: &ContainerdConfig,
    init_path: &Path,
    make_default: Option<Option<&ReplacedDefault>>,
) -> Result<RuntimeOptions, Problem> {
    let defaults = RuntimeOptions::default();
    let init_path = init_path.to_string_lossy().into_owned();
    let Some(earlier) = make_default else {
        let runc = config.runc_options();
        if let Some(runtime) = &runc.from_runtime {
            tracing::info!(runtime = %runtime, systemd_cgroup = runc.systemd_cgroup, "inheriting runc options");
        }
        return Ok(RuntimeOptions {
            binary_name: runc.binary_name.unwrap_or(defaults.binary_name),
            root: runc.root.unwrap_or(defaults.root),
            systemd_cgroup: runc.systemd_cgroup,
            init_path,
            ..existing
        });
    };
    let (name, carried) = config.default_runtime_options(earlier)?;
    tracing::info!(runtime = %name, "carrying the default runtime's options over");
    let origin = format!("(the options of runtime `{name}`)");
    let refused = |error: String| ConfigError::DefaultRuntime {
        path: config.shown().to_path_buf(),
        reason: format!(
            "{error}; containerd-shim-undertaker-v2 does not take that, so pods would lose it: \
             remove it, or install without --default"
        ),
    };
    RuntimeOptions::from_toml(&carried, &origin).map_err(|error| refused(error.to_string()))?;
    let managed = RuntimeOptions {
        binary_name: defaults.binary_name,
        root: defaults.root,
        systemd_cgroup: defaults.systemd_cgroup,
        init_path,
        ..existing
    };
    let mut merged: toml::Table =
        toml::from_str(&managed.to_toml()).expect("the options' own TOML parses");
    let carried: toml::Table = toml::from_str(&carried).expect("parsed just above");
    merged.extend(carried);
    let text = toml::to_string(&merged).expect("a TOML table serializes");
    RuntimeOptions::from_toml(&text, &origin).map_err(|error| refused(error.to_string()).into())
}

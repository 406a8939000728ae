//! containerd's config file: which schema it uses, which runc options our runtime inherits,
//! and the exact text edits that register our runtime (or remove it again).
//!
//! Schema 3 gets a drop-in file plus an `imports` entry; schemas 1 and 2 are edited in place
//! with `toml_edit`, which keeps every comment and all formatting (see [`Schema::uses_drop_in`]
//! for why). Every edit is read back before it is used, so a config we cannot extend cleanly is
//! an error rather than a broken file.

pub mod default_runtime;
mod imports;
mod inherit;
mod runtime_table;
mod schema;

use std::path::{Path, PathBuf};

use toml_edit::{value, DocumentMut};

pub use default_runtime::ReplacedDefault;
pub use inherit::RuncOptions;
pub use schema::Schema;

use crate::runtime_config::RUNTIME_CONFIG_PATH;
use crate::{HostRoot, RUNTIME_NAME};

/// The drop-in's place, relative to the directory of containerd's config.
const DROP_IN_RELATIVE: &str = "conf.d/undertaker.toml";

/// A containerd config that cannot be read, understood or extended. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the containerd config path {path} must be absolute")]
    NotAbsolute { path: PathBuf },
    #[error("cannot read the containerd config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the containerd config {path} is not UTF-8 text")]
    NotUtf8 { path: PathBuf },
    #[error("the containerd config {path} is not valid TOML; nothing was changed.\n{source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml_edit::TomlError,
    },
    #[error("the containerd config {path} has `version = {version}`; undertaker supports versions 1, 2 and 3")]
    UnsupportedVersion { path: PathBuf, version: String },
    #[error("cannot register runtime `{RUNTIME_NAME}` in the containerd config {path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error(
        "cannot make runtime `{RUNTIME_NAME}` containerd's default in {path} (--default): {reason}"
    )]
    DefaultRuntime { path: PathBuf, reason: String },
    #[error(
        "the containerd config {path} already defines runtime `{RUNTIME_NAME}` differently, and not through \
         `undertaker install`; remove that table (or run `undertaker uninstall`) and install again"
    )]
    Conflict { path: PathBuf },
}

/// One containerd config file as read (or its absence, which means containerd's defaults).
#[derive(Debug, Clone)]
pub struct ContainerdConfig {
    /// The host path (what other config files and our state refer to).
    path: PathBuf,
    /// Where this process reads it (the host path under `--host-root`), for messages.
    shown: PathBuf,
    original: Option<String>,
    doc: DocumentMut,
    schema: Schema,
}

/// The text changes that register our runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The main config's text afterwards (equal to the original when it needs no change).
    pub config: String,
    /// Schema 3: the drop-in's host path and content.
    pub drop_in: Option<(PathBuf, String)>,
    /// Whether the original held nothing of ours, so it is the version to back up.
    pub original_is_pristine: bool,
    /// With `make_default`: the default runtime ours replaces (for the install state).
    pub replaced_default: Option<ReplacedDefault>,
}

/// What a registration asks of the config besides our runtime's table.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterOptions<'a> {
    /// An existing `undertaker` runtime that differs from ours was written by an earlier install
    /// and may be replaced.
    pub replace_ours: bool,
    /// `--default`: make our runtime containerd's default CRI runtime.
    pub make_default: bool,
    /// The default an earlier `--default` install replaced: kept in the record while
    /// `make_default`, given back when not.
    pub replaced_default: Option<&'a ReplacedDefault>,
}

impl ContainerdConfig {
    /// Reads the config at host path `path`; a missing file is containerd's defaults.
    pub fn load(host: &HostRoot, path: &Path) -> Result<Self, ConfigError> {
        if !path.is_absolute() {
            return Err(ConfigError::NotAbsolute {
                path: path.to_path_buf(),
            });
        }
        let shown = host.path(path);
        let bytes = crate::fsio::read_if_exists(&shown).map_err(|error| match error {
            crate::FsError::Read { path, source } => ConfigError::Read { path, source },
            other => ConfigError::Read {
                path: shown.clone(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
        let text = bytes
            .map(|bytes| {
                String::from_utf8(bytes).map_err(|_| ConfigError::NotUtf8 {
                    path: shown.clone(),
                })
            })
            .transpose()?;
        Self::parse(path, &shown, text)
    }

    /// A config from its text (`None`: the file does not exist). `shown` names it in errors.
    pub fn parse(path: &Path, shown: &Path, text: Option<String>) -> Result<Self, ConfigError> {
        let (doc, schema) = match &text {
            None => (DocumentMut::new(), Schema::V2),
            Some(text) => {
                let doc: DocumentMut = text.parse().map_err(|source| ConfigError::Parse {
                    path: shown.to_path_buf(),
                    source,
                })?;
                let schema =
                    Schema::of(&doc).map_err(|version| ConfigError::UnsupportedVersion {
                        path: shown.to_path_buf(),
                        version,
                    })?;
                (doc, schema)
            }
        };
        Ok(ContainerdConfig {
            path: path.to_path_buf(),
            shown: shown.to_path_buf(),
            original: text,
            doc,
            schema,
        })
    }

    /// The host path of the config.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where this process reads the config (the host path under `--host-root`).
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// The file's text, or `None` when it does not exist.
    pub fn original(&self) -> Option<&str> {
        self.original.as_deref()
    }

    pub fn schema(&self) -> Schema {
        self.schema
    }

    /// The runc options our runtime should inherit.
    pub fn runc_options(&self) -> RuncOptions {
        inherit::runc_options(&self.doc, self.schema)
    }

    /// The host path of our drop-in beside this config (used with schema 3).
    pub fn drop_in_path(&self) -> PathBuf {
        self.path
            .parent()
            .unwrap_or(Path::new("/"))
            .join(DROP_IN_RELATIVE)
    }

    /// The edits that register our runtime (and with `make_default` make it the default). An
    /// existing `undertaker` runtime that differs from ours is replaced only when `replace_ours`
    /// says an earlier install wrote it.
    pub fn register(&self, options: RegisterOptions<'_>) -> Result<Registration, ConfigError> {
        let replace_ours = options.replace_ours;
        let mut doc = self.doc.clone();
        if self.original.is_none() {
            doc.insert("version", value(self.schema.number()));
        }
        let existing = runtime_table::find(&doc, self.schema);
        let ours = existing.is_some_and(|table| runtime_table::matches(table, RUNTIME_CONFIG_PATH));
        let existing = existing.is_some();
        // With schema 3 we never write into the main file, so a runtime there is not ours.
        if existing && !ours && (self.schema.uses_drop_in() || !replace_ours) {
            return Err(ConfigError::Conflict {
                path: self.shown.clone(),
            });
        }

        let unsupported = |reason: String| ConfigError::Unsupported {
            path: self.shown.clone(),
            reason,
        };
        let drop_in = if self.schema.uses_drop_in() {
            let drop_in = self.drop_in_path();
            if !imports::covers(&doc, &drop_in, self.config_dir()) {
                imports::add(&mut doc, &drop_in.to_string_lossy()).map_err(unsupported)?;
            }
            Some((drop_in, drop_in_content(options.make_default)))
        } else {
            if !ours {
                runtime_table::remove(&mut doc, self.schema);
                runtime_table::add(&mut doc, self.schema, RUNTIME_CONFIG_PATH)
                    .map_err(unsupported)?;
            }
            if options.make_default {
                default_runtime::set(&mut doc, self.schema, RUNTIME_NAME).map_err(unsupported)?;
            } else if let Some(replaced) = options.replaced_default {
                default_runtime::restore(&mut doc, self.schema, replaced.name.as_deref());
            }
            None
        };
        let config = doc.to_string();
        let drop_in_text = drop_in.as_ref().map(|(_, content)| content.as_str());
        self.check_registered(&config, drop_in_text, options.make_default)
            .map_err(unsupported)?;
        let changed = self.original.as_deref() != Some(config.as_str());
        Ok(Registration {
            config,
            drop_in,
            original_is_pristine: changed && !existing,
            replaced_default: options
                .make_default
                .then(|| self.replaced_default(options.replaced_default)),
        })
    }

    /// The default runtime `--default` replaces: the one the config names, or when that is
    /// already ours, the one an earlier install recorded.
    fn replaced_default(&self, earlier: Option<&ReplacedDefault>) -> ReplacedDefault {
        match default_runtime::name(&self.doc, self.schema) {
            Some(name) if name == RUNTIME_NAME => earlier.cloned().unwrap_or_default(),
            name => ReplacedDefault { name },
        }
    }

    /// The runtime whose options `--default` carries over (see [`Self::replaced_default`]),
    /// as TOML text in the shim's option spelling; an error says why it cannot be.
    pub fn default_runtime_options(
        &self,
        earlier: Option<&ReplacedDefault>,
    ) -> Result<(String, String), ConfigError> {
        let replaced = self.replaced_default(earlier);
        let name = replaced.runtime().to_string();
        inherit::default_runtime_options(&self.doc, self.schema, &name)
            .map(|options| (name, options))
            .map_err(|reason| ConfigError::DefaultRuntime {
                path: self.shown.clone(),
                reason,
            })
    }

    /// The config's text with our runtime table and our `imports` entry taken out again, or
    /// `None` when it holds neither.
    pub fn unregister(&self) -> Option<String> {
        self.unregister_restoring(None)
    }

    /// [`Self::unregister`], also giving the default runtime back to what `replaced` names
    /// when the config makes ours the default (without a record the key goes: a default
    /// naming a runtime that is gone would stop containerd's CRI).
    pub fn unregister_restoring(&self, replaced: Option<&ReplacedDefault>) -> Option<String> {
        self.original.as_ref()?;
        let mut doc = self.doc.clone();
        let removed_table = runtime_table::remove(&mut doc, self.schema);
        let removed_import = imports::remove(&mut doc, &self.drop_in_path().to_string_lossy());
        let previous = replaced.and_then(|replaced| replaced.name.as_deref());
        let restored_default = default_runtime::restore(&mut doc, self.schema, previous);
        (removed_table || removed_import || restored_default).then(|| doc.to_string())
    }

    /// Reads an edited config (and drop-in) back and checks it registers our runtime, and
    /// with `make_default` makes it the default.
    fn check_registered(
        &self,
        text: &str,
        drop_in: Option<&str>,
        make_default: bool,
    ) -> Result<(), String> {
        let parse = |text: &str| {
            text.parse::<DocumentMut>()
                .map_err(|error| format!("the edited config would not parse: {error}"))
        };
        let doc = parse(text)?;
        let registered = if self.schema.uses_drop_in() {
            imports::covers(&doc, &self.drop_in_path(), self.config_dir())
        } else {
            runtime_table::find(&doc, self.schema)
                .is_some_and(|table| runtime_table::matches(table, RUNTIME_CONFIG_PATH))
        };
        let default_holder = match drop_in {
            Some(drop_in) => parse(drop_in)?,
            None => doc,
        };
        let default_ok = !make_default || default_runtime::is_ours(&default_holder, self.schema);
        if registered && default_ok {
            Ok(())
        } else {
            Err(
                "the edited config does not read back with our runtime in it; add it by hand"
                    .to_string(),
            )
        }
    }

    fn config_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }
}

/// The schema 3 drop-in: our runtime table, and with `make_default` the default runtime
/// (containerd 2.x merges an imported file's keys over the main file's).
fn drop_in_content(make_default: bool) -> String {
    let mut doc = DocumentMut::new();
    doc.insert("version", value(Schema::V3.number()));
    if make_default {
        default_runtime::set(&mut doc, Schema::V3, RUNTIME_NAME)
            .expect("an empty document takes any key");
    }
    runtime_table::add(&mut doc, Schema::V3, RUNTIME_CONFIG_PATH)
        .expect("an empty document takes any table");
    format!("# Written by `undertaker install`; `undertaker uninstall` removes this file.\n{doc}")
}

#[cfg(test)]
mod tests;

//! `-version` and `-info`: what the shim tells about itself before any container exists.

use std::io::{Read, Write};

use containerd_shim_protos::{
    protobuf::{well_known_types::any::Any, Message, MessageField},
    types::introspection::{RuntimeInfo, RuntimeVersion},
};

use crate::{
    options::{RuntimeOptions, ShimOptions},
    RUNTIME_TYPE, VERSION,
};

/// The text `-version` prints, in the layout containerd's own shims use.
pub fn version_text() -> String {
    format!(
        "{bin}:\n  Version:  {VERSION}\n  Runtime:  {RUNTIME_TYPE}\n",
        bin = crate::SHIM_BINARY
    )
}

/// Answers `-info`: reads the runtime options (if any) from stdin and writes a
/// `RuntimeInfo` protobuf with the OCI runtime's features to stdout.
pub fn write_info() -> Result<(), String> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| format!("read runtime options from stdin: {e}"))?;
    let options = if input.is_empty() {
        RuntimeOptions::default()
    } else {
        let any =
            Any::parse_from_bytes(&input).map_err(|e| format!("decode runtime options: {e}"))?;
        RuntimeOptions::from_any(Some(&any)).map_err(|e| e.to_string())?
    };
    let info = runtime_info(&options);
    let bytes = info
        .write_to_bytes()
        .map_err(|e| format!("encode runtime info: {e}"))?;
    std::io::stdout()
        .write_all(&bytes)
        .map_err(|e| format!("write runtime info: {e}"))
}

fn runtime_info(options: &RuntimeOptions) -> RuntimeInfo {
    // `runc features` prints the OCI features document containerd validates specs against.
    let features = std::process::Command::new(&options.binary_name)
        .arg("features")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/features/Features".into(),
            value: out.stdout,
            ..Default::default()
        });
    RuntimeInfo {
        name: RUNTIME_TYPE.to_string(),
        version: MessageField::some(RuntimeVersion {
            version: VERSION.to_string(),
            ..Default::default()
        }),
        features: features.map_or_else(MessageField::none, MessageField::some),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_binary_version_and_runtime_type() {
        let text = version_text();
        assert!(
            text.starts_with("containerd-shim-undertaker-v2:\n"),
            "{text}"
        );
        assert!(
            text.contains(VERSION) && text.contains("io.containerd.undertaker.v2"),
            "{text}"
        );
    }

    #[test]
    fn info_names_the_runtime_and_carries_runc_features_when_available() {
        let info = runtime_info(&RuntimeOptions::default());
        assert_eq!(info.name, "io.containerd.undertaker.v2");
        assert_eq!(info.version.version, VERSION);
        let missing = RuntimeOptions {
            binary_name: "/nonexistent/runc".into(),
            ..Default::default()
        };
        assert!(runtime_info(&missing).features.is_none());
    }
}

//! `undertaker.io/termination-message`: an opt-in line in the container's termination
//! message (what `kubectl describe pod` shows under Last State) naming the leftovers the
//! shim killed when the main process exited.

use std::{collections::HashMap, path::PathBuf};

use crate::{AnnotationError, Spec};

pub const ANNOTATION_TERMINATION_MESSAGE: &str = "undertaker.io/termination-message";
pub const ANNOTATION_TERMINATION_MESSAGE_PATH: &str = "undertaker.io/termination-message-path";
/// kubelet's default `terminationMessagePath`.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// Where, inside the container, the termination message file is; `None` when not asked for.
pub fn termination_message_path(
    annotations: &HashMap<String, String>,
) -> Result<Option<PathBuf>, AnnotationError> {
    let bad = |key: &str, value: &str, reason: &str| AnnotationError {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let enabled = match annotations.get(ANNOTATION_TERMINATION_MESSAGE) {
        None => false,
        Some(value) => match value.trim() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(bad(
                    ANNOTATION_TERMINATION_MESSAGE,
                    value,
                    "expected \"true\" or \"false\"",
                ))
            }
        },
    };
    let path = match annotations.get(ANNOTATION_TERMINATION_MESSAGE_PATH) {
        None => PathBuf::from(DEFAULT_TERMINATION_MESSAGE_PATH),
        Some(value) => {
            let path = PathBuf::from(value.trim());
            if !path.is_absolute() || path.components().any(|c| c.as_os_str() == "..") {
                return Err(bad(
                    ANNOTATION_TERMINATION_MESSAGE_PATH,
                    value,
                    "expected an absolute path inside the container, without \"..\"",
                ));
            }
            path
        }
    };
    Ok(enabled.then_some(path))
}

/// The host file bind-mounted at `container_path` (as kubelet mounts the termination log),
/// if there is one: the shim writes only into a file that is mounted, never creates one.
pub fn mounted_host_file(spec: &Spec, container_path: &std::path::Path) -> Option<PathBuf> {
    spec.mounts()
        .iter()
        .rev()
        .find(|m| {
            std::path::Path::new(m.destination) == container_path
                && m.options.iter().any(|o| *o == "bind" || *o == "rbind")
        })
        .and_then(|m| m.source.map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn off_unless_asked_and_kubelets_path_by_default() {
        assert_eq!(termination_message_path(&annotations(&[])).unwrap(), None);
        let on = annotations(&[(ANNOTATION_TERMINATION_MESSAGE, "true")]);
        assert_eq!(
            termination_message_path(&on).unwrap(),
            Some(PathBuf::from("/dev/termination-log"))
        );
        let elsewhere = annotations(&[
            (ANNOTATION_TERMINATION_MESSAGE, "true"),
            (ANNOTATION_TERMINATION_MESSAGE_PATH, "/tmp/why"),
        ]);
        assert_eq!(
            termination_message_path(&elsewhere).unwrap(),
            Some(PathBuf::from("/tmp/why"))
        );
    }

    #[test]
    fn bad_values_name_the_annotation() {
        let err =
            termination_message_path(&annotations(&[(ANNOTATION_TERMINATION_MESSAGE, "yes")]))
                .unwrap_err();
        assert_eq!(err.key, ANNOTATION_TERMINATION_MESSAGE);
        for path in ["relative", "/a/../../etc/passwd"] {
            let err = termination_message_path(&annotations(&[
                (ANNOTATION_TERMINATION_MESSAGE, "true"),
                (ANNOTATION_TERMINATION_MESSAGE_PATH, path),
            ]))
            .unwrap_err();
            assert_eq!(err.key, ANNOTATION_TERMINATION_MESSAGE_PATH, "{path}");
        }
    }

    #[test]
    fn only_a_bind_mounted_file_is_used() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[
                {"destination":"/dev","type":"tmpfs","source":"tmpfs"},
                {"destination":"/dev/termination-log","type":"bind","source":"/var/lib/kubelet/pods/u/containers/app/1","options":["rbind","rprivate","rw"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            mounted_host_file(&spec, std::path::Path::new("/dev/termination-log")),
            Some(PathBuf::from("/var/lib/kubelet/pods/u/containers/app/1"))
        );
        assert_eq!(mounted_host_file(&spec, std::path::Path::new("/dev")), None);
        assert_eq!(
            mounted_host_file(&spec, std::path::Path::new("/other")),
            None
        );
    }
}

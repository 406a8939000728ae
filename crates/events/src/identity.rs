//! Who an event is about: containerd's ids plus the pod identity CRI writes into the spec.

use std::collections::HashMap;

use crate::{Identity, MAX_CMDLINE_BYTES};

/// The CRI annotations (set by containerd's CRI plugin in every container's OCI spec) that name
/// the pod and container.
pub mod annotations {
    /// The pod's name.
    pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
    /// The pod's Kubernetes namespace.
    pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
    /// The pod's uid.
    pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
    /// The container's name in the pod spec (absent on the sandbox container).
    pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
}

impl Identity {
    /// An identity with containerd's ids only (no pod), e.g. for containers not made by CRI.
    pub fn for_container(namespace: &str, container_id: &str, exec_id: &str) -> Self {
        Identity {
            namespace: namespace.to_string(),
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        }
    }

    /// The identity of `container_id` (and `exec_id`, empty for the init process) in containerd
    /// namespace `namespace`, with the pod fields read from the OCI spec's `annotations`; a
    /// missing annotation leaves its field empty.
    pub fn from_annotations(
        namespace: &str,
        container_id: &str,
        exec_id: &str,
        annotations: &HashMap<String, String>,
    ) -> Self {
        let get = |key: &str| annotations.get(key).cloned().unwrap_or_default();
        Identity {
            pod_name: get(annotations::SANDBOX_NAME),
            pod_namespace: get(annotations::SANDBOX_NAMESPACE),
            pod_uid: get(annotations::SANDBOX_UID),
            container_name: get(annotations::CONTAINER_NAME),
            ..Identity::for_container(namespace, container_id, exec_id)
        }
    }

    /// The same container's identity for one of its exec processes.
    pub fn for_exec(&self, exec_id: &str) -> Self {
        Identity {
            exec_id: exec_id.to_string(),
            ..self.clone()
        }
    }

    /// The same identity, naming the exec's command: its `args` joined by spaces, cut at
    /// [`MAX_CMDLINE_BYTES`] on a character boundary.
    pub fn with_exec_command<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        let mut command = String::new();
        for arg in args {
            if !command.is_empty() {
                command.push(' ');
            }
            command.push_str(arg.as_ref());
            if command.len() >= MAX_CMDLINE_BYTES {
                break;
            }
        }
        if command.len() > MAX_CMDLINE_BYTES {
            let mut cut = MAX_CMDLINE_BYTES;
            while !command.is_char_boundary(cut) {
                cut -= 1;
            }
            command.truncate(cut);
        }
        self.exec_command = command;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_reads_every_cri_annotation() {
        let annotations: HashMap<String, String> = [
            (annotations::SANDBOX_NAME, "web-0"),
            (annotations::SANDBOX_NAMESPACE, "shop"),
            (annotations::SANDBOX_UID, "1f0c-uid"),
            (annotations::CONTAINER_NAME, "nginx"),
            ("io.kubernetes.cri.container-type", "container"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

        let identity = Identity::from_annotations("k8s.io", "c0ffee", "exec-1", &annotations);

        assert_eq!(identity.namespace, "k8s.io");
        assert_eq!(identity.container_id, "c0ffee");
        assert_eq!(identity.exec_id, "exec-1");
        assert_eq!(identity.pod_name, "web-0");
        assert_eq!(identity.pod_namespace, "shop");
        assert_eq!(identity.pod_uid, "1f0c-uid");
        assert_eq!(identity.container_name, "nginx");
    }

    #[test]
    fn missing_annotations_leave_pod_fields_empty() {
        let sandbox_only: HashMap<String, String> = [(annotations::SANDBOX_NAME, "web-0")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();

        let identity = Identity::from_annotations("default", "c1", "", &sandbox_only);

        assert_eq!(identity.pod_name, "web-0");
        assert_eq!(identity.pod_namespace, "");
        assert_eq!(identity.pod_uid, "");
        assert_eq!(identity.container_name, "");
        assert_eq!(identity.exec_id, "");
        assert_eq!(identity.namespace, "default");
    }

    #[test]
    fn for_exec_keeps_the_container_and_pod() {
        let annotations: HashMap<String, String> =
            [(annotations::SANDBOX_UID.to_string(), "uid-9".to_string())].into();
        let init = Identity::from_annotations("k8s.io", "c1", "", &annotations);

        let exec = init.for_exec("e1");

        assert_eq!(exec.exec_id, "e1");
        assert_eq!(exec.pod_uid, "uid-9");
        assert_eq!(exec.container_id, "c1");
        assert_eq!(init.exec_id, "", "the original is untouched");
        assert_eq!(exec.exec_command, "", "no command given");
    }

    #[test]
    fn exec_command_joins_the_args_and_is_cut_on_a_character() {
        let init = Identity::for_container("k8s.io", "c1", "");

        let probe = init
            .for_exec("e1")
            .with_exec_command(&["sh", "-c", "(sleep 0 &)"]);
        assert_eq!(probe.exec_command, "sh -c (sleep 0 &)");
        assert_eq!(probe.exec_id, "e1");

        let long = "é".repeat(MAX_CMDLINE_BYTES);
        let cut = init
            .for_exec("e2")
            .with_exec_command(&["echo".to_string(), long]);
        assert!(cut.exec_command.len() <= MAX_CMDLINE_BYTES);
        assert!(cut.exec_command.len() > MAX_CMDLINE_BYTES - 2);
        assert!(cut.exec_command.starts_with("echo é"));
    }
}

//! The `undertaker.io/` annotations: opt-out and tuning, per pod or container.

use std::{collections::HashMap, time::Duration};

use undertaker_report::Scope;

pub const ANNOTATION_INIT: &str = "undertaker.io/init";
pub const ANNOTATION_SIGNAL_SCOPE: &str = "undertaker.io/signal-scope";
pub const ANNOTATION_DRAIN_TIMEOUT: &str = "undertaker.io/drain-timeout";

/// The longest drain timeout accepted: longer would outlast any sane grace period.
const MAX_DRAIN: Duration = Duration::from_secs(3600);

/// A bad annotation value: the message names the annotation and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}={value:?}: {reason}")]
pub struct AnnotationError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// How the init runs in one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitSettings {
    /// False when the image brings its own init (`undertaker.io/init: "false"`).
    pub enabled: bool,
    pub scope: Scope,
    pub drain_timeout: Duration,
}

impl Default for InitSettings {
    fn default() -> Self {
        InitSettings {
            enabled: true,
            scope: Scope::Child,
            drain_timeout: Duration::from_secs(2),
        }
    }
}

impl InitSettings {
    /// Reads the settings from a container's annotations (CRI copies the pod's
    /// `undertaker.io/*` annotations there too); unset ones keep their defaults.
    pub fn from_annotations(
        annotations: &HashMap<String, String>,
    ) -> Result<Self, AnnotationError> {
        let mut settings = InitSettings::default();
        let bad = |key: &str, value: &str, reason: &str| AnnotationError {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if let Some(value) = annotations.get(ANNOTATION_INIT) {
            settings.enabled = match value.trim() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(bad(
                        ANNOTATION_INIT,
                        value,
                        "expected \"true\" or \"false\"",
                    ))
                }
            };
        }
        if let Some(value) = annotations.get(ANNOTATION_SIGNAL_SCOPE) {
            settings.scope = Scope::from_name(value.trim().as_bytes()).ok_or_else(|| {
                bad(
                    ANNOTATION_SIGNAL_SCOPE,
                    value,
                    "expected \"child\", \"group\" or \"all\"",
                )
            })?;
        }
        if let Some(value) = annotations.get(ANNOTATION_DRAIN_TIMEOUT) {
            let timeout = humantime::parse_duration(value.trim()).map_err(|e| {
                bad(
                    ANNOTATION_DRAIN_TIMEOUT,
                    value,
                    &format!("expected a duration like \"2s\" or \"500ms\": {e}"),
                )
            })?;
            if timeout > MAX_DRAIN {
                return Err(bad(ANNOTATION_DRAIN_TIMEOUT, value, "longer than 1h"));
            }
            settings.drain_timeout = timeout;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<InitSettings, AnnotationError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        InitSettings::from_annotations(&map)
    }

    #[test]
    fn no_annotations_mean_the_defaults() {
        assert_eq!(parse(&[]).unwrap(), InitSettings::default());
        let d = InitSettings::default();
        assert!(d.enabled);
        assert_eq!(
            (d.scope, d.drain_timeout),
            (Scope::Child, Duration::from_secs(2))
        );
    }

    #[test]
    fn each_annotation_is_read() {
        let s = parse(&[
            (ANNOTATION_INIT, "false"),
            (ANNOTATION_SIGNAL_SCOPE, "group"),
            (ANNOTATION_DRAIN_TIMEOUT, "500ms"),
            ("other.io/x", "whatever"),
        ])
        .unwrap();
        assert!(!s.enabled);
        assert_eq!(
            (s.scope, s.drain_timeout),
            (Scope::Group, Duration::from_millis(500))
        );
        assert_eq!(
            parse(&[(ANNOTATION_DRAIN_TIMEOUT, "0s")])
                .unwrap()
                .drain_timeout,
            Duration::ZERO
        );
        assert_eq!(
            parse(&[(ANNOTATION_SIGNAL_SCOPE, "all")]).unwrap().scope,
            Scope::All
        );
    }

    #[test]
    fn bad_values_name_the_annotation() {
        for (key, value) in [
            (ANNOTATION_INIT, "yes"),
            (ANNOTATION_SIGNAL_SCOPE, "everyone"),
            (ANNOTATION_DRAIN_TIMEOUT, "soon"),
            (ANNOTATION_DRAIN_TIMEOUT, "-1s"),
            (ANNOTATION_DRAIN_TIMEOUT, "2h"),
        ] {
            let err = parse(&[(key, value)]).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(key) && msg.contains(value), "{msg}");
        }
    }
}

//! The shim's spec rewriting on arbitrary JSON: parsed as an OCI spec (as the shim reads a
//! bundle's config.json), its `undertaker.io/` annotations read, undertaker-init injected
//! and an exec process wrapped. Nothing may panic; an injected spec runs the init first
//! with the original arguments after `--`, has exactly one read-only init mount, and
//! survives being written out and read back (the shim writes it for runc).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;
use undertaker_inject::{
    inject, wrap_exec, InitSettings, InjectError, ANNOTATION_DRAIN_TIMEOUT, ANNOTATION_INIT,
    ANNOTATION_SIGNAL_SCOPE,
};

const INIT_SOURCE: &str = "/run/undertaker/bundle/undertaker-init";
const REPORT_FD: u32 = 3;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<Spec>(data) else {
        return;
    };
    let annotations = spec.annotations().clone().unwrap_or_default();
    let settings = match InitSettings::from_annotations(&annotations) {
        Ok(settings) => settings,
        Err(error) => {
            let ours = [
                ANNOTATION_INIT,
                ANNOTATION_SIGNAL_SCOPE,
                ANNOTATION_DRAIN_TIMEOUT,
            ];
            assert!(
                ours.contains(&error.key.as_str()),
                "error names {:?}",
                error.key
            );
            assert!(error.to_string().contains(&error.key));
            return;
        }
    };

    let original_args = spec
        .process()
        .as_ref()
        .and_then(|process| process.args().clone())
        .unwrap_or_default();
    let mut injected = spec.clone();
    let injection = match inject(
        &mut injected,
        Path::new(INIT_SOURCE),
        &settings,
        Some(REPORT_FD),
    ) {
        Ok(injection) => injection,
        Err(InjectError::NoProcess) => {
            assert!(spec.process().is_none());
            return;
        }
        Err(InjectError::NoArgs) => {
            assert!(original_args.is_empty());
            return;
        }
        Err(error) => panic!("unexpected inject error: {error}"),
    };

    let args = injected
        .process()
        .as_ref()
        .and_then(|process| process.args().clone())
        .expect("an injected spec has arguments");
    assert_eq!(args.first(), Some(&injection.init_path));
    let dashes = args
        .iter()
        .position(|arg| arg == "--")
        .expect("a -- separator");
    assert_eq!(&args[dashes + 1..], original_args.as_slice());

    let mounts = injected.mounts().clone().unwrap_or_default();
    let init_mounts: Vec<_> = mounts
        .iter()
        .filter(|mount| mount.destination() == Path::new(&injection.init_path))
        .collect();
    assert_eq!(init_mounts.len(), 1, "one init mount");
    let options = init_mounts[0].options().clone().unwrap_or_default();
    for option in ["ro", "nosuid", "nodev"] {
        assert!(
            options.iter().any(|o| o == option),
            "init mount without {option}"
        );
    }
    assert_eq!(
        init_mounts[0].source().as_deref(),
        Some(Path::new(INIT_SOURCE))
    );

    let written = serde_json::to_vec(&injected).expect("an injected spec serializes");
    let read_back: Spec = serde_json::from_slice(&written).expect("and parses again");
    assert_eq!(
        read_back, injected,
        "the written spec reads back differently"
    );

    if let Some(process) = spec.process() {
        let mut exec = process.clone();
        if wrap_exec(&mut exec, &injection, &settings, Some(REPORT_FD)).is_ok() {
            let args = exec.args().clone().unwrap_or_default();
            assert_eq!(args.first(), Some(&injection.init_path));
            assert!(args.iter().any(|arg| arg == "--subreaper"));
        }
    }
});

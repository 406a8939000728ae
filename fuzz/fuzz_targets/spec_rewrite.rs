//! The shim's spec rewriting on arbitrary JSON: parsed as an OCI spec (as the shim reads a
//! bundle's config.json), its `undertaker.io/` annotations read, undertaker-init injected
//! and an exec process wrapped. Nothing may panic; an injected spec runs the init first
//! with the original arguments after `--`, has exactly one read-only init mount, keeps every
//! other field as it was, and survives being written out and read back (the shim writes it
//! for runc).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use undertaker_inject::{
    inject, wrap_exec, InitSettings, InjectError, Spec, ANNOTATION_DRAIN_TIMEOUT, ANNOTATION_INIT,
    ANNOTATION_SIGNAL_SCOPE,
};

const INIT_SOURCE: &str = "/run/undertaker/bundle/undertaker-init";
const REPORT_FD: u32 = 3;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = Spec::from_slice(data) else {
        return;
    };
    let settings = match InitSettings::from_annotations(&spec.annotations()) {
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

    let original_args = spec.process().and_then(|process| process.args());
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
            let empty = match &original_args {
                None => true,
                Some(Ok(args)) => args.is_empty(),
                Some(Err(_)) => false,
            };
            assert!(empty, "{original_args:?}");
            return;
        }
        Err(InjectError::Malformed(_)) => {
            assert!(matches!(original_args, Some(Err(_))));
            return;
        }
        Err(error) => panic!("unexpected inject error: {error}"),
    };
    let original_args = original_args.unwrap().unwrap();

    let args = injected
        .process()
        .and_then(|process| process.args())
        .expect("an injected spec has arguments")
        .expect("made of strings");
    assert_eq!(args.first(), Some(&injection.init_path));
    let dashes = args
        .iter()
        .position(|arg| arg == "--")
        .expect("a -- separator");
    assert_eq!(&args[dashes + 1..], original_args.as_slice());

    let mounts = injected.mounts();
    let init_mounts: Vec<_> = mounts
        .iter()
        .filter(|mount| Path::new(mount.destination) == Path::new(&injection.init_path))
        .collect();
    assert_eq!(init_mounts.len(), 1, "one init mount");
    for option in ["ro", "nosuid", "nodev"] {
        assert!(
            init_mounts[0].options.contains(&option),
            "init mount without {option}"
        );
    }
    assert_eq!(init_mounts[0].source, Some(INIT_SOURCE));

    let written = injected.to_vec();
    let read_back = Spec::from_slice(&written).expect("an injected spec parses again");
    assert_eq!(
        read_back, injected,
        "the written spec reads back differently"
    );
    // Nothing but `process` and `mounts` changed.
    let (before, after): (Value, Value) = (
        serde_json::from_slice(&spec.to_vec()).unwrap(),
        serde_json::from_slice(&written).unwrap(),
    );
    for (key, value) in before.as_object().unwrap() {
        if key != "process" && key != "mounts" {
            assert_eq!(after.get(key), Some(value), "{key} changed");
        }
    }

    if let Some(mut exec) = spec.process() {
        if wrap_exec(&mut exec, &injection, &settings, Some(REPORT_FD)).is_ok() {
            let args = exec.args().unwrap().unwrap();
            assert_eq!(args.first(), Some(&injection.init_path));
            assert!(args.iter().any(|arg| arg == "--subreaper"));
        }
    }
});

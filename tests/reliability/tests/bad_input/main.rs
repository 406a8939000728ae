//! Bad input sent straight to the shim's ttrpc Task API (a shim started by hand, as
//! containerd starts one): malformed or missing `config.json`, a missing bundle, runtime
//! options of an unknown type or content, bad `undertaker.io/` annotations, a missing or
//! non-executable init, unknown ids and requests in the wrong state. Each must be a clear
//! error with the right code (InvalidArgument for bad input, NotFound for unknown ids,
//! FailedPrecondition for the wrong state, AlreadyExists for a duplicate), leave nothing
//! behind (mounts in the bundle, cgroups, runc state), and the shim must then still run a
//! good container.
//!
//! Every case of a test runs even when an earlier one failed; the test fails listing them
//! all. `cargo test -p undertaker-reliability --test bad_input` (root).

mod fixture;
mod ids;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::ttrpc::Code;
use serde_json::json;
use undertaker_reliability::own_shim::{runtime_options, RUNTIME_OPTIONS_TYPE};
use undertaker_reliability::undertaker_only;
use undertaker_testbed::Testbed;

use crate::fixture::Fixture;

undertaker_only!(
    bad_bundles_are_refused_cleanly,
    bad_runtime_options_are_refused_cleanly,
    bad_annotations_are_refused_cleanly,
);

async fn bad_bundles_are_refused_cleanly(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let mut fixture = Fixture::start(testbed).await?;
    let options = Some(fixture.options());

    let bundle = fixture.bundle("malformed")?;
    bundle.write_config("{ \"ociVersion\": \"1.0.2\", this is not json")?;
    let request = fixture.request(&bundle, options.clone());
    let case = "malformed config.json";
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &["config.json"])
        .await;

    let bundle = fixture.bundle("no-config")?;
    let request = fixture.request(&bundle, options.clone());
    let case = "missing config.json";
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &["config.json"])
        .await;

    let bundle = fixture.missing_bundle("no-bundle");
    let request = fixture.request(&bundle, options.clone());
    fixture
        .expect_create_refused(
            "missing bundle directory",
            request,
            Code::INVALID_ARGUMENT,
            &["no-bundle"],
        )
        .await;

    let bundle = fixture.bundle("no-process")?;
    let mut spec = fixture.spec("no-process", &["true"])?;
    spec.as_object_mut().map(|spec| spec.remove("process"));
    bundle.write_spec(&spec)?;
    let request = fixture.request(&bundle, options.clone());
    let case = "spec without a process";
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &["process"])
        .await;

    let bundle = fixture.bundle("no-args")?;
    let mut spec = fixture.spec("no-args", &["true"])?;
    spec["process"]["args"] = json!([]);
    bundle.write_spec(&spec)?;
    let request = fixture.request(&bundle, options.clone());
    let case = "spec with empty process arguments";
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &["arguments"])
        .await;

    // Well-formed, but runc cannot create it: a namespace path that does not exist. runc
    // fails after the shim mounted the rootfs and made the report pipe; the shim cannot
    // tell bad input from a runtime failure here, so any error code will do, as long as
    // nothing is left.
    let bundle = fixture.bundle("bad-netns")?;
    let mut spec = fixture.spec("bad-netns", &["true"])?;
    spec["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
        {"type": "network", "path": "/proc/999999999/ns/net"}
    ]);
    bundle.write_spec(&spec)?;
    let request = fixture.request(&bundle, options.clone());
    let result = fixture
        .shim
        .task()
        .create(undertaker_reliability::own_shim::context(), &request)
        .await;
    let refused = undertaker_reliability::own_shim::refusal(result);
    eprintln!("a namespace runc cannot join: {refused:?}");
    anyhow::ensure!(refused.is_some(), "a spec runc cannot create was accepted");
    fixture.expect_nothing_left("a namespace runc cannot join", "bad-netns", &bundle.dir);

    fixture
        .expect_a_good_container("good-after-bad-bundles")
        .await?;
    fixture.finish().await
}

async fn bad_runtime_options_are_refused_cleanly(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let mut fixture = Fixture::start(testbed).await?;
    let id = "options";
    let bundle = fixture.bundle(id)?;
    bundle.write_spec(&fixture.spec(id, &["true"])?)?;

    let unknown = Any {
        type_url: "types.containerd.io/example.v1.Unknown".to_string(),
        value: b"\x0a\x01x".to_vec(),
        ..Default::default()
    };
    let request = fixture.request(&bundle, Some(unknown));
    let case = "options of an unknown type";
    fixture
        .expect_create_refused(
            case,
            request,
            Code::INVALID_ARGUMENT,
            &["example.v1.Unknown"],
        )
        .await;

    let undecodable = Any {
        type_url: RUNTIME_OPTIONS_TYPE.to_string(),
        value: vec![0xff, 0xff, 0xff],
        ..Default::default()
    };
    let request = fixture.request(&bundle, Some(undecodable));
    let case = "runtimeoptions that do not decode";
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &["runtimeoptions"])
        .await;

    let missing_config = runtime_options("/nonexistent/undertaker-runtime.toml", "");
    let request = fixture.request(&bundle, Some(missing_config));
    let case = "a ConfigPath that does not exist";
    let mentions = ["/nonexistent/undertaker-runtime.toml"];
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &mentions)
        .await;

    let unknown_key = runtime_options("", "Bogus = 1\n");
    let request = fixture.request(&bundle, Some(unknown_key));
    let case = "an unknown key in the runtime config";
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &["Bogus"])
        .await;

    let missing_init = fixture.options_with_init("/nonexistent/undertaker-init".as_ref());
    let request = fixture.request(&bundle, Some(missing_init));
    let case = "an InitPath that does not exist";
    let mentions = ["/nonexistent/undertaker-init"];
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &mentions)
        .await;

    let plain = fixture.testbed.dir().join("hand-made/undertaker-init-0644");
    std::fs::copy(fixture.testbed.bin_dir().join("undertaker-init"), &plain)?;
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644))?;
    let request = fixture.request(&bundle, Some(fixture.options_with_init(&plain)));
    let case = "an InitPath that is not executable (0644)";
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &["not executable"])
        .await;

    let directory = fixture.testbed.dir().join("hand-made");
    let request = fixture.request(&bundle, Some(fixture.options_with_init(&directory)));
    let case = "an InitPath that is a directory";
    let mentions = ["not a regular file"];
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &mentions)
        .await;

    fixture
        .expect_a_good_container("good-after-bad-options")
        .await?;
    fixture.finish().await
}

async fn bad_annotations_are_refused_cleanly(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let mut fixture = Fixture::start(testbed).await?;
    let cases = [
        ("undertaker.io/drain-timeout", "bogus"),
        ("undertaker.io/drain-timeout", "2h"),
        ("undertaker.io/signal-scope", "everyone"),
        ("undertaker.io/init", "maybe"),
    ];
    for (index, (key, value)) in cases.into_iter().enumerate() {
        let id = format!("annotation-{index}");
        let bundle = fixture.bundle(&id)?;
        let mut spec = fixture.spec(&id, &["true"])?;
        spec["annotations"] = json!({ key: value });
        bundle.write_spec(&spec)?;
        let request = fixture.request(&bundle, Some(fixture.options()));
        let case = format!("annotation {key}={value}");
        fixture
            .expect_create_refused(&case, request, Code::INVALID_ARGUMENT, &[key, value])
            .await;
    }
    fixture
        .expect_a_good_container("good-after-bad-annotations")
        .await?;
    fixture.finish().await
}

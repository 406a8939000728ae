//! Ids the shim does not know (NotFound, naming the id), an empty id (InvalidArgument), a
//! duplicate (AlreadyExists) and requests in the wrong state (FailedPrecondition), around
//! one container that then runs to its end.

use std::sync::Arc;

use containerd_shim_protos::api;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::shim_async::TaskClient;
use containerd_shim_protos::ttrpc::{self, Code};
use undertaker_reliability::own_shim::context;
use undertaker_reliability::undertaker_only;
use undertaker_testbed::Testbed;

use crate::fixture::Fixture;

undertaker_only!(unknown_ids_and_wrong_states_are_refused);

const UNKNOWN: &str = "nosuch";
const UNKNOWN_EXEC: &str = "nosuch-exec";
const KNOWN: &str = "known";

/// An exec process spec (what containerd sends in `ExecProcessRequest.spec`).
fn exec_spec() -> Any {
    Any {
        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".to_string(),
        value: br#"{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}}"#.to_vec(),
        ..Default::default()
    }
}

async fn unknown_ids_and_wrong_states_are_refused(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let mut fixture = Fixture::start(testbed).await?;

    let bundle = fixture.bundle("empty-id")?;
    bundle.write_spec(&fixture.spec("empty-id", &["true"])?)?;
    let mut request = fixture.request(&bundle, Some(fixture.options()));
    request.id = String::new();
    let case = "create with an empty id";
    fixture
        .expect_create_refused(case, request, Code::INVALID_ARGUMENT, &["id"])
        .await;

    unknown_container(&mut fixture).await;

    let bundle = fixture.bundle(KNOWN)?;
    bundle.write_spec(&fixture.spec(KNOWN, &["sleep", "1000"])?)?;
    let request = fixture.request(&bundle, Some(fixture.options()));
    fixture.shim.task().create(context(), &request).await?;

    unknown_exec(&mut fixture).await;
    wrong_states(&mut fixture, request).await?;

    fixture.expect_nothing_left("the known container", KNOWN, &bundle.dir);
    fixture
        .expect_a_good_container("good-after-bad-ids")
        .await?;
    fixture.finish().await
}

/// The requests about one process of container `id` (`exec_id` empty: its init), each
/// with its result.
async fn process_requests(
    task: &TaskClient,
    id: &str,
    exec_id: &str,
) -> Vec<(&'static str, ttrpc::Result<()>)> {
    let (id, exec_id) = (id.to_string(), exec_id.to_string());
    let state = api::StateRequest {
        id: id.clone(),
        exec_id: exec_id.clone(),
        ..Default::default()
    };
    let start = api::StartRequest {
        id: id.clone(),
        exec_id: exec_id.clone(),
        ..Default::default()
    };
    let kill = api::KillRequest {
        id: id.clone(),
        exec_id: exec_id.clone(),
        signal: 9,
        ..Default::default()
    };
    let delete = api::DeleteRequest {
        id: id.clone(),
        exec_id: exec_id.clone(),
        ..Default::default()
    };
    let wait = api::WaitRequest {
        id: id.clone(),
        exec_id: exec_id.clone(),
        ..Default::default()
    };
    let close_io = api::CloseIORequest {
        id: id.clone(),
        exec_id: exec_id.clone(),
        ..Default::default()
    };
    let resize_pty = api::ResizePtyRequest {
        id,
        exec_id,
        width: 80,
        height: 24,
        ..Default::default()
    };
    vec![
        ("state", task.state(context(), &state).await.map(drop)),
        ("start", task.start(context(), &start).await.map(drop)),
        ("kill", task.kill(context(), &kill).await.map(drop)),
        ("delete", task.delete(context(), &delete).await.map(drop)),
        ("wait", task.wait(context(), &wait).await.map(drop)),
        (
            "close_io",
            task.close_io(context(), &close_io).await.map(drop),
        ),
        (
            "resize_pty",
            task.resize_pty(context(), &resize_pty).await.map(drop),
        ),
    ]
}

/// Every request about a container the shim does not serve: NotFound, naming it.
async fn unknown_container(fixture: &mut Fixture) {
    let task = fixture.shim.task().clone();
    let id = UNKNOWN.to_string();
    let pids = api::PidsRequest {
        id: id.clone(),
        ..Default::default()
    };
    let pause = api::PauseRequest {
        id: id.clone(),
        ..Default::default()
    };
    let resume = api::ResumeRequest {
        id: id.clone(),
        ..Default::default()
    };
    let stats = api::StatsRequest {
        id: id.clone(),
        ..Default::default()
    };
    let update = api::UpdateTaskRequest {
        id: id.clone(),
        resources: MessageField::some(Any::default()),
        ..Default::default()
    };
    let exec = api::ExecProcessRequest {
        id: id.clone(),
        exec_id: "e1".to_string(),
        spec: MessageField::some(exec_spec()),
        ..Default::default()
    };
    let mut results = process_requests(&task, UNKNOWN, "").await;
    results.extend([
        ("pids", task.pids(context(), &pids).await.map(drop)),
        ("pause", task.pause(context(), &pause).await.map(drop)),
        ("resume", task.resume(context(), &resume).await.map(drop)),
        ("stats", task.stats(context(), &stats).await.map(drop)),
        ("update", task.update(context(), &update).await.map(drop)),
        ("exec", task.exec(context(), &exec).await.map(drop)),
    ]);
    for (request, result) in results {
        let case = format!("{request} of an unknown container");
        fixture.expect_refusal(&case, result, Code::NOT_FOUND, &[UNKNOWN]);
    }
}

/// Every request about an exec the known container does not have: NotFound, naming it.
async fn unknown_exec(fixture: &mut Fixture) {
    let task = fixture.shim.task().clone();
    for (request, result) in process_requests(&task, KNOWN, UNKNOWN_EXEC).await {
        let case = format!("{request} of an unknown exec");
        fixture.expect_refusal(&case, result, Code::NOT_FOUND, &[UNKNOWN_EXEC]);
    }
}

/// The known container, created but not started: a duplicate create, an exec without a
/// spec, a pause before start; then started: a second start; then killed and deleted: a
/// second delete.
async fn wrong_states(fixture: &mut Fixture, create: api::CreateTaskRequest) -> anyhow::Result<()> {
    let task = fixture.shim.task().clone();
    let result = task.create(context(), &create).await;
    fixture.expect_refusal(
        "a second create of the same id",
        result,
        Code::ALREADY_EXISTS,
        &[KNOWN],
    );

    let result = task
        .exec(
            context(),
            &api::ExecProcessRequest {
                id: KNOWN.to_string(),
                exec_id: "no-spec".to_string(),
                ..Default::default()
            },
        )
        .await;
    let case = "an exec without a process spec";
    fixture.expect_refusal(case, result, Code::INVALID_ARGUMENT, &["no-spec"]);

    let pause = api::PauseRequest {
        id: KNOWN.to_string(),
        ..Default::default()
    };
    let result = task.pause(context(), &pause).await;
    let case = "pause of a container not started";
    fixture.expect_refusal(case, result, Code::FAILED_PRECONDITION, &[KNOWN]);

    let start = api::StartRequest {
        id: KNOWN.to_string(),
        ..Default::default()
    };
    task.start(context(), &start).await?;
    let result = task.start(context(), &start).await;
    fixture.expect_refusal(
        "a second start",
        result,
        Code::FAILED_PRECONDITION,
        &[KNOWN],
    );

    let resume = api::ResumeRequest {
        id: KNOWN.to_string(),
        ..Default::default()
    };
    let result = task.resume(context(), &resume).await;
    let case = "resume of a running container";
    fixture.expect_refusal(case, result, Code::FAILED_PRECONDITION, &[KNOWN]);

    let kill = api::KillRequest {
        id: KNOWN.to_string(),
        signal: 9,
        ..Default::default()
    };
    task.kill(context(), &kill).await?;
    let wait = api::WaitRequest {
        id: KNOWN.to_string(),
        ..Default::default()
    };
    let waited = task.wait(context(), &wait).await?;
    anyhow::ensure!(
        waited.exit_status == 137,
        "killed: exit {}",
        waited.exit_status
    );
    let delete = api::DeleteRequest {
        id: KNOWN.to_string(),
        ..Default::default()
    };
    task.delete(context(), &delete).await?;
    let result = task.delete(context(), &delete).await;
    fixture.expect_refusal("a second delete", result, Code::NOT_FOUND, &[KNOWN]);
    Ok(())
}

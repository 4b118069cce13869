"""EventBridge in and out through the local runtime: moto's EventBridge matches the template's rules
and the event router delivers to the real BusEventsFunction; the end events are observed the way a
team would, with a rule of their own on the stack's bus and an SQS queue as its target."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testrelay.models.job_message import job_id_for
from testrelay_cli.cli import main
from testrelay_cli.stack_target import write_local_state
from testrelay_local.runtime import LocalRuntime
from tests.support import EVENTS, ledger, tm_run_cases, wait_for_execution

ROUTES_FILE = Path(__file__).parent / "bus_routes.yaml"
SHA = "7638417db6d59f3c431d3e1f261cc637155684cd"


@pytest.fixture
def observer(runtime: LocalRuntime) -> Iterator[str]:
    """A queue that receives every event testrelay puts on its bus (a user's own rule)."""
    sqs, events = runtime.aws.client("sqs"), runtime.aws.client("events")
    url = sqs.create_queue(QueueName=f"observer-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = runtime.outputs["EventBusName"]
    events.put_rule(Name="observer", EventBusName=bus, EventPattern=json.dumps({"source": ["testrelay"]}))
    events.put_targets(Rule="observer", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    yield url
    events.remove_targets(Rule="observer", EventBusName=bus, Ids=["q"])
    events.delete_rule(Name="observer", EventBusName=bus)
    sqs.delete_queue(QueueUrl=url)


def _put(runtime: LocalRuntime, source: str, detail_type: str, detail: dict[str, Any], bus: str | None = None) -> None:
    answer = runtime.aws.client("events").put_events(
        Entries=[
            {
                "EventBusName": bus or runtime.outputs["EventBusName"],
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def _request(runtime: LocalRuntime, **detail: Any) -> None:
    _put(runtime, "acme.deployer", "Test Run Requested", detail)


def _received(runtime: LocalRuntime, queue_url: str, wait: float = 20.0, expect: int = 1) -> list[dict[str, Any]]:
    sqs = runtime.aws.client("sqs")
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and len(found) < expect:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        for message in answer.get("Messages") or []:
            found.append(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def _request_job(runtime: LocalRuntime, key: str, route: str = "requested") -> str:
    return job_id_for("eventbridge", f"{runtime.aws.account_id}:{key}", route)


def test_a_requested_run_runs_once_and_its_end_is_announced(runtime: LocalRuntime, observer: str) -> None:
    # Given a deployment pipeline that asks for a test run of a commit
    request = {
        "route": "requested",
        "idempotency_key": "deploy-42",
        "repository": "acme/shop",
        "branch": "main",
        "sha": SHA,
        "run_url": "https://ci.acme.example/deploy/42",
    }
    # When it puts "Test Run Requested" on the stack's bus
    _request(runtime, **request)
    # Then one job runs the route's plan and writes every case to Test Management
    job_id = _request_job(runtime, "deploy-42")
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    [tm_run] = tm_run_cases(runtime).values()
    assert len(tm_run["test_run_cases"]) == 6
    # And "Test Run Finished" appears on the bus with the run, its counts and the target's outcome
    [message] = _received(runtime, observer)
    event = json.loads(message["Body"])
    assert (event["source"], event["detail-type"]) == ("testrelay", "Test Run Finished")
    detail = event["detail"]
    assert (detail["job_id"], detail["route"], detail["state"], detail["event_id"]) == (
        job_id,
        "requested",
        "reported",
        f"{job_id}#a1",
    )
    assert detail["origin"]["repository"] == "acme/shop"
    assert detail["origin"]["commit_sha"] == SHA
    assert detail["origin"]["run_url"] == "https://ci.acme.example/deploy/42"
    assert runtime.sandbox is not None
    [run] = runtime.sandbox.state()["testsigma"]["runs"].values()
    assert detail["testsigma"]["run_id"] == run["id"]
    assert detail["testsigma"]["run_url"].endswith(f"/runs/{run['id']}")
    assert detail["counts"] == {"total": 6, "passed": 4, "failed": 1, "blocked": 0, "skipped": 0, "untested": 1}
    [target] = detail["targets"]
    assert (target["target"], target["status"], target["written"]) == ("patient-portal", "written", 6)

    # When the same request is put again (a retried deploy step)
    _request(runtime, **request)
    time.sleep(1.5)
    # Then nothing new runs and nothing more is announced
    assert len(runtime.sandbox.state()["testsigma"]["runs"]) == 1
    assert _received(runtime, observer, wait=1.5) == []


def test_a_job_that_fails_is_announced_as_failed(runtime: LocalRuntime, observer: str) -> None:
    # Given a request for a route whose Testsigma plan does not exist
    _request(runtime, route="missing-plan", idempotency_key="no-such-plan-1")
    job_id = _request_job(runtime, "no-such-plan-1", "missing-plan")
    # When its job fails
    assert wait_for_execution(runtime, job_id)["status"] == "FAILED"
    # Then "Test Run Failed" is put once, with the reason
    [message] = _received(runtime, observer)
    event = json.loads(message["Body"])
    assert event["detail-type"] == "Test Run Failed"
    assert (event["detail"]["job_id"], event["detail"]["state"]) == (job_id, "failed")
    assert event["detail"]["reason"]
    assert event["detail"]["testsigma"]["run_id"] is None


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ({"route": "requested"}, "idempotency_key"),
        ({"route": "no-such-route", "idempotency_key": "k-1"}, "no route named 'no-such-route'"),
        ({"route": "requested", "idempotency_key": "k-2", "sha": "not a sha"}, "sha"),
    ],
)
def test_a_bad_request_is_parked_with_its_reason(runtime: LocalRuntime, detail: dict[str, Any], reason: str) -> None:
    dlq = runtime.outputs["EventsDlqUrl"]
    _received(runtime, dlq, wait=0.5, expect=1000)  # what earlier tests left there
    # When a request that cannot become a job is put on the bus
    _request(runtime, **detail)
    # Then it rests in the events DLQ, whole, with the reason beside it
    [message] = _received(runtime, dlq)
    assert reason in message["MessageAttributes"]["failure_reason"]["StringValue"]
    assert json.loads(message["Body"])["detail"] == detail


def test_a_codebuild_build_runs_the_route_of_its_repository(runtime: LocalRuntime, observer: str) -> None:
    # Given CodeBuild's state change for a build of a GitHub branch that succeeded
    sample = json.loads((EVENTS / "codebuild" / "build-state-change.github-branch.variant.json").read_text())
    # When CodeBuild puts it on the default bus
    _put(runtime, "aws.codebuild", sample["detail-type"], sample["detail"], bus="default")
    # Then the aws-native route's job runs for that commit and branch
    job_id = job_id_for("codebuild", sample["detail"]["build-id"], "aws-native")
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    record = ledger(runtime).get_job(job_id)
    assert record is not None
    assert (record["repository"], record["commit_sha"], record["state"]) == ("octo-org/octo-repo", SHA, "reported")
    [message] = _received(runtime, observer)
    origin = json.loads(message["Body"])["detail"]["origin"]
    assert (origin["provider"], origin["branch"], origin["pipeline_name"]) == ("codebuild", "main", "shop-tests")
    assert origin["run_url"].startswith("https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/123456789012/")


def test_a_codepipeline_execution_is_normalised_from_its_pipeline(runtime: LocalRuntime) -> None:
    # Given a pipeline whose source is a GitHub repository (through a CodeStar connection), and an execution
    codepipeline = runtime.aws.client("codepipeline")
    codepipeline.create_pipeline(pipeline=_pipeline(_pipeline_role(runtime)))
    execution_id = codepipeline.start_pipeline_execution(name="shop-pipeline")["pipelineExecutionId"]
    sample = json.loads((EVENTS / "codepipeline" / "pipeline-execution-succeeded.variant.json").read_text())
    detail = {**sample["detail"], "execution-id": execution_id}
    # When CodePipeline says the execution succeeded
    _put(runtime, "aws.codepipeline", sample["detail-type"], detail, bus="default")
    # Then the job carries the repository and branch of the pipeline's source action
    key = f"{runtime.aws.account_id}:{runtime.aws.region}:shop-pipeline:{execution_id}#1"
    job_id = job_id_for("codepipeline", key, "aws-native")
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    record = ledger(runtime).get_job(job_id)
    assert record is not None
    # moto records no artifact revisions, so no commit is known here (AWS names it: see the unit tests)
    assert (record["repository"], record["commit_sha"]) == ("octo-org/octo-repo", "")
    job = json.loads(record["job"])
    assert (job["event"]["branch"], job["event"]["pipeline_name"]) == ("main", "shop-pipeline")


def _pipeline_role(runtime: LocalRuntime) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam = runtime.aws.client("iam")
    try:
        return str(iam.get_role(RoleName="shop-pipeline")["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(iam.create_role(RoleName="shop-pipeline", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def _pipeline(role_arn: str) -> dict[str, Any]:
    return {
        "name": "shop-pipeline",
        "roleArn": role_arn,
        "artifactStore": {"type": "S3", "location": "codepipeline-artifacts"},
        "stages": [
            {
                "name": "Source",
                "actions": [
                    {
                        "name": "Source",
                        "actionTypeId": {
                            "category": "Source",
                            "owner": "AWS",
                            "provider": "CodeStarSourceConnection",
                            "version": "1",
                        },
                        "configuration": {
                            "ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/0000",
                            "FullRepositoryId": "octo-org/octo-repo",
                            "BranchName": "main",
                        },
                        "outputArtifacts": [{"name": "SourceOutput"}],
                    }
                ],
            },
            {
                "name": "Build",
                "actions": [
                    {
                        "name": "Build",
                        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                        "configuration": {"ProjectName": "shop-tests"},
                        "inputArtifacts": [{"name": "SourceOutput"}],
                    }
                ],
            },
        ],
    }


@pytest.fixture
def relay(runtime: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalRuntime:
    """The runtime, found by the CLI as a running `testrelay local` is found."""
    state = tmp_path / "local.json"
    write_local_state(runtime.aws.endpoint_url, runtime.outputs, runtime.webhook_url("github"), path=state)
    monkeypatch.setenv("TESTRELAY_LOCAL_STATE", str(state))
    return runtime


def test_testrelay_request_puts_one_request_and_a_repeat_names_the_same_job(
    relay: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # When an operator asks for a run of a commit with a key
    argv = ["request", "--route", "requested", "--key", "cli-7", "--repository", "acme/shop", "--sha", SHA]
    assert main([*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    # Then the job it names runs, once
    assert document["job_id"] == _request_job(relay, "cli-7")
    assert wait_for_execution(relay, document["job_id"])["status"] == "SUCCEEDED"
    # And asking again with the same key names the same job and starts nothing
    assert main(argv) == 0
    assert document["job_id"] in capsys.readouterr().out
    time.sleep(1.0)
    assert relay.sandbox is not None
    assert len(relay.sandbox.state()["testsigma"]["runs"]) == 1


def test_testrelay_request_refuses_a_bad_option_in_one_line(
    relay: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["request", "--route", "requested", "--sha", "not-a-commit"]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("testrelay: --sha: String should match pattern")
    assert len(err.strip().splitlines()) == 1
    assert main(["request", "--route", "requested", "--key", "has space", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"].startswith("--key: ")

"""The operations side of template.yaml and the ASL, as an operator of a deployed stack relies on it:
every failure has an alarm that notifies someone, a dashboard shows the relay, bursts are capped, and
no execution outlives the longest route deadline by much."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from testrelay.models.routes import Polling
from tests.unit.test_template import FUNCTIONS, load_template, merge_globals, ref

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachine" / "relay.asl.json").read_text())
SAMCONFIG = (ROOT / "samconfig.toml").read_text()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


@pytest.fixture(scope="module")
def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    global_props = template["Globals"]["Function"]
    return {
        name: merge_globals(global_props, res["Properties"])
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }


def _alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def _watching(resources: dict[str, Any], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [a for a in _alarms(resources).values() if (a["Namespace"], a["MetricName"]) == (namespace, metric)]


def _dimension(alarm: dict[str, Any], name: str) -> Any:
    return next(d["Value"] for d in alarm["Dimensions"] if d["Name"] == name)


# ------------------------------------------------------------------ alarms


def test_every_alarm_notifies_the_given_topic_or_the_stacks_own(resources: dict[str, Any]) -> None:
    alarms = _alarms(resources)
    assert len(alarms) >= 23
    for name, alarm in alarms.items():
        for key in ("AlarmActions", "OKActions"):
            condition, given, own = alarm[key]["Fn::If"]
            assert (condition, [ref(v) for v in given], [ref(v) for v in own]) == (
                "HasAlarmTopic",
                ["AlarmTopicArn"],
                ["AlarmTopic"],
            ), name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["AlarmDescription"].strip(), name


def test_the_stack_creates_a_topic_when_none_is_given_and_can_subscribe_an_email(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    topic = resources["AlarmTopic"]
    assert (topic["Type"], topic["Condition"]) == ("AWS::SNS::Topic", "CreateAlarmTopic")
    # CloudWatch cannot publish to a topic encrypted with the AWS-managed aws/sns key
    assert "KmsMasterKeyId" not in topic["Properties"]
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "SubscribeAlarmEmail"
    assert (subscription["Properties"]["Protocol"], ref(subscription["Properties"]["Endpoint"])) == (
        "email",
        "AlarmEmail",
    )
    assert template["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    output = template["Outputs"]["AlarmTopicArn"]["Value"]["Fn::If"]
    assert (output[0], ref(output[1]), ref(output[2])) == ("HasAlarmTopic", "AlarmTopicArn", "AlarmTopic")


def test_failed_and_timed_out_executions_alarm(resources: dict[str, Any]) -> None:
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        [alarm] = _watching(resources, "AWS/States", metric)
        assert ref(_dimension(alarm, "StateMachineArn")) == "RelayStateMachine"
        assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
            "Sum",
            0,
            "GreaterThanThreshold",
        )


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_an_errors_and_a_throttles_alarm(resources: dict[str, Any], metric: str) -> None:
    watched = {ref(_dimension(alarm, "FunctionName")) for alarm in _watching(resources, "AWS/Lambda", metric)}
    assert watched == set(FUNCTIONS)


def test_front_door_errors_alarm_at_once_and_task_errors_above_their_retries(resources: dict[str, Any]) -> None:
    thresholds = {
        ref(_dimension(alarm, "FunctionName")): alarm["Threshold"]
        for alarm in _watching(resources, "AWS/Lambda", "Errors")
    }
    # Task functions raise VendorThrottled/VendorUnavailable on purpose, for the state machine's Retry
    assert {name for name, threshold in thresholds.items() if threshold == 0} == {
        "WebhookFunction",
        "ScheduleFunction",
        "DispatchFunction",
    }
    assert all(
        threshold == 5
        for name, threshold in thresholds.items()
        if name not in ("WebhookFunction", "ScheduleFunction", "DispatchFunction")
    )


def test_api_5xx_queue_age_dlq_and_vendor_throttling_alarm(resources: dict[str, Any]) -> None:
    [api] = _watching(resources, "AWS/ApiGateway", "5xx")
    assert (ref(_dimension(api, "ApiId")), _dimension(api, "Stage")) == ("HttpApi", "$default")
    [age] = _watching(resources, "AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert _dimension(age, "QueueName") == {"Fn::GetAtt": ["JobsQueue", "QueueName"]}
    assert (age["Statistic"], age["Threshold"]) == ("Maximum", 600)
    dlqs = _watching(resources, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert sorted(_dimension(dlq, "QueueName")["Fn::GetAtt"][0] for dlq in dlqs) == ["EventsDLQ", "JobsDLQ"]
    # The relay's own metric (EMF), on the dimension set that has `service` alone (observability.emit)
    [throttles] = _watching(resources, "TestRelay", "VendorThrottles")
    assert throttles["Dimensions"] == [{"Name": "service", "Value": "testrelay"}]


# ------------------------------------------------------------------ dashboard


def test_the_dashboard_is_valid_json_and_shows_the_relays_metrics(resources: dict[str, Any]) -> None:
    dashboard = resources["OperationsDashboard"]
    assert dashboard["Type"] == "AWS::CloudWatch::Dashboard"
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    placeholders = set(re.findall(r"\$\{([^}]+)\}", body))
    assert placeholders <= {
        "AWS::Region",
        "AWS::StackName",
        "RelayStateMachine",
        "HttpApi",
        "JobsQueue.QueueName",
        "JobsDLQ.QueueName",
    }
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    text = json.dumps(widgets)
    for metric in (
        "JobsFinished",
        "CasesWritten",
        "CasesUnmatched",
        "VendorThrottles",
        "VendorRetries",
        "WriteBackDuration",
        "ExecutionsFailed",
        "ApproximateAgeOfOldestMessage",
        "5xx",
    ):
        assert metric in text, metric
    # The log widget reads every function's log group and lists errors with their job
    [logs] = [w for w in widgets if w["type"] == "log"]
    assert logs["properties"]["query"].count("SOURCE '/aws/lambda/") == len(FUNCTIONS)
    assert "job_id" in logs["properties"]["query"]


# ------------------------------------------------------------------ limits


def test_functions_run_on_arm64_with_an_arm64_layer_built_without_an_sdk_of_its_own(
    functions: dict[str, dict[str, Any]], resources: dict[str, Any]
) -> None:
    assert all(props["Architectures"] == ["arm64"] for props in functions.values())
    layer = resources["CoreLayer"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    makefile = (ROOT / "layers" / "core" / "Makefile").read_text()
    assert "build-CoreLayer:" in makefile
    assert "manylinux2014_aarch64" in makefile
    requirements = (ROOT / "layers" / "core" / "requirements.txt").read_text()
    assert not re.search(r"^(boto3|botocore)\b", requirements, re.M)
    assert "[tracer" not in requirements  # the tracer extra pulls botocore in
    nodeps = (ROOT / "layers" / "core" / "requirements-nodeps.txt").read_text()
    assert re.search(r"^aws-xray-sdk==", nodeps, re.M)


def test_dispatch_and_write_back_are_capped_by_parameters(
    template: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    parameters = template["Parameters"]
    jobs = functions["DispatchFunction"]["Events"]["Jobs"]["Properties"]
    assert ref(jobs["ScalingConfig"]["MaximumConcurrency"]) == "DispatchMaxConcurrency"
    assert (parameters["DispatchMaxConcurrency"]["Default"], parameters["DispatchMaxConcurrency"]["MinValue"]) == (5, 2)
    reserved = functions["WriteBackFunction"]["ReservedConcurrentExecutions"]["Fn::If"]
    assert (reserved[0], ref(reserved[1]), ref(reserved[2])) == (
        "ReservesWriteBackConcurrency",
        "WriteBackConcurrency",
        "AWS::NoValue",
    )
    assert parameters["WriteBackConcurrency"]["Default"] == 10


def test_a_throttled_write_back_waits_in_the_state_machine_instead_of_failing_its_target() -> None:
    # A capped WriteBackFunction answers TooManyRequests to the Map's extra iterations; they wait up to
    # about 1.5 h (30 s x 1.5^n, capped at 300 s, 20 attempts) before the generic retrier would give up.
    task = ASL["States"]["WriteBack"]["ItemProcessor"]["States"]["WriteTarget"]
    first = task["Retry"][0]
    assert first["ErrorEquals"] == ["Lambda.TooManyRequestsException"]
    assert (first["MaxAttempts"], first["MaxDelaySeconds"], first["JitterStrategy"]) == (20, 300, "FULL")


def test_the_state_machine_time_out_is_above_the_longest_route_deadline() -> None:
    longest_deadline = Polling.model_fields["deadline_seconds"].metadata
    ceiling = next(m.le for m in longest_deadline if hasattr(m, "le"))
    assert ceiling == 7 * 24 * 3600
    # A day for collection and write-back after the longest deadline; a retry is a new execution
    assert ASL["TimeoutSeconds"] == ceiling + 24 * 3600


def test_boto3_clients_fit_the_webhooks_ten_seconds(functions: dict[str, dict[str, Any]]) -> None:
    webhook = functions["WebhookFunction"]
    env = webhook["Environment"]["Variables"]
    connect, read, attempts = (
        float(env[k]) for k in ("AWS_CONNECT_TIMEOUT_SECONDS", "AWS_READ_TIMEOUT_SECONDS", "AWS_CALL_ATTEMPTS")
    )
    # Two AWS calls on a cold request (the secret, the enqueue), each attempt within connect + read
    assert 2 * attempts * (connect + read) <= webhook["Timeout"] + 2
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"


def test_the_prod_profile_deploys_with_alarms_wired_and_the_limits_set(template: dict[str, Any]) -> None:
    prod = SAMCONFIG.split("[prod.deploy.parameters]", 1)[1].split("\n[", 1)[0]
    overrides = re.search(r'parameter_overrides = "([^"]*)"', prod)
    assert overrides is not None
    values = dict(pair.split("=", 1) for pair in overrides.group(1).split())
    # Without AlarmTopicArn the stack's own topic is created and every alarm notifies it
    assert values.get("AlarmTopicArn", "") == "" or values["AlarmTopicArn"].startswith("arn:aws")
    assert (values["DispatchMaxConcurrency"], values["WriteBackConcurrency"]) == ("5", "10")
    assert set(values) <= set(template["Parameters"])

"""template.yaml's event-driven resources: what a deployer relies on for requests in and events out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_template import load_template, merge_globals, policy_template_args, ref, statements


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(load_template()["Resources"])


@pytest.fixture(scope="module")
def bus_function(resources: dict[str, Any]) -> dict[str, Any]:
    template = load_template()
    properties: dict[str, Any] = merge_globals(
        template["Globals"]["Function"], resources["BusEventsFunction"]["Properties"]
    )
    return properties


def test_the_stack_has_its_own_bus(resources: dict[str, Any]) -> None:
    assert resources["EventBus"]["Type"] == "AWS::Events::EventBus"


def test_every_rule_of_the_bus_function_has_the_events_dlq(bus_function: dict[str, Any]) -> None:
    rules = {name: e["Properties"] for name, e in bus_function["Events"].items() if e["Type"] == "EventBridgeRule"}
    assert set(rules) == {"RunRequested", "CodeBuildBuilds", "CodePipelineExecutions"}
    for name, rule in rules.items():
        assert rule["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["EventsDLQ", "Arn"]}, name
    assert ref(rules["RunRequested"]["EventBusName"]) == "EventBus"
    assert "EventBusName" not in rules["CodeBuildBuilds"]  # AWS services put on the default bus
    assert rules["CodeBuildBuilds"]["Pattern"]["source"] == ["aws.codebuild"]
    assert rules["CodePipelineExecutions"]["Pattern"]["source"] == ["aws.codepipeline"]


def test_failed_invocations_and_parked_events_reach_the_events_dlq(bus_function: dict[str, Any]) -> None:
    assert bus_function["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": {"Fn::GetAtt": ["EventsDLQ", "Arn"]}}
    assert ref(bus_function["Environment"]["Variables"]["EVENTS_DLQ_URL"]) == "EventsDLQ"
    queues = [args["QueueName"] for args in policy_template_args(bus_function["Policies"], "SQSSendMessagePolicy")]
    assert {"Fn::GetAtt": ["EventsDLQ", "QueueName"]} in queues
    assert {"Fn::GetAtt": ["JobsQueue", "QueueName"]} in queues


def test_the_bus_function_may_read_pipelines_and_nothing_more(bus_function: dict[str, Any]) -> None:
    [pipeline] = [s for s in statements(bus_function["Policies"]) if s.get("Sid") == "PipelineSource"]
    assert sorted(pipeline["Action"]) == [
        "codepipeline:GetPipeline",
        "codepipeline:GetPipelineExecution",
        "codepipeline:ListActionExecutions",
    ]


@pytest.mark.parametrize("name", ["ReportToCiFunction", "RecordFailureFunction"])
def test_the_end_steps_put_on_the_stack_bus_only(resources: dict[str, Any], name: str) -> None:
    properties = resources[name]["Properties"]
    assert ref(properties["Environment"]["Variables"]["EVENT_BUS_NAME"]) == "EventBus"
    [args] = policy_template_args(properties["Policies"], "EventBridgePutEventsPolicy")
    assert ref(args["EventBusName"]) == "EventBus"


@pytest.mark.parametrize("name", ["EventBusAccountsPolicy", "EventBusOrganizationPolicy"])
def test_other_senders_are_let_in_for_requests_only_when_named(resources: dict[str, Any], name: str) -> None:
    policy = resources[name]
    assert policy["Condition"] in {"HasEventPutterAccounts", "HasEventPutterOrganization"}
    statement = policy["Properties"]["Statement"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"]["StringEquals"]["events:detail-type"] == "Test Run Requested"


def test_the_failure_mail_exists_only_with_an_address(resources: dict[str, Any]) -> None:
    for name in ("FailureTopic", "FailureTopicPolicy", "FailureNotificationRule"):
        assert resources[name]["Condition"] == "HasFailureNotificationEmail", name
    rule = resources["FailureNotificationRule"]["Properties"]
    assert ref(rule["EventBusName"]) == "EventBus"
    assert rule["EventPattern"]["source"] == ["testrelay"]

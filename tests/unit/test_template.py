"""Checks on template.yaml and the state machine definition that matter to whoever deploys testrelay.

No network, no AWS: the template is read with a tiny YAML loader that understands CloudFormation's
short tags, and SAM's Globals are merged the way the SAM transform merges them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testrelay.ci.registry import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# logical id -> (functions/<dir>, timeout in seconds), as in the stack contract
FUNCTIONS = {
    "WebhookFunction": ("webhook", 10),
    "ScheduleFunction": ("schedule", 10),
    "DispatchFunction": ("dispatch", 30),
    "TriggerPlanFunction": ("trigger_plan", 30),
    "PollStatusFunction": ("poll_status", 30),
    "CollectResultsFunction": ("collect_results", 300),
    "WriteBackFunction": ("write_back", 900),
    "ReportToCiFunction": ("report_to_ci", 30),
    "RecordFailureFunction": ("record_failure", 30),
    "GatherShardsFunction": ("gather_shards", 30),
}
TASK_FUNCTIONS = [
    "TriggerPlanFunction",
    "PollStatusFunction",
    "CollectResultsFunction",
    "WriteBackFunction",
    "ReportToCiFunction",
    "RecordFailureFunction",
]
# Tasks that never call a vendor (no vendor credentials): they only read and update the ledger.
LEDGER_TASK_FUNCTIONS = ["GatherShardsFunction"]
# CloudWatch Logs vended-log delivery actions support no resource-level permissions, so Step Functions
# logging needs them on "*" (AWS Step Functions developer guide, "IAM policies for logging").
NO_RESOURCE_LEVEL_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


# ------------------------------------------------------------------ loading


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X`, `!GetAtt A.B`, `!Sub ...` (etc.) into their long forms."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template() -> dict[str, Any]:
    data = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=CfnLoader)  # noqa: S506 - safe loader subclass
    assert isinstance(data, dict)
    return data


def merge_globals(global_props: Any, own: Any) -> Any:
    """SAM's Globals semantics: maps merge (the resource wins), lists add up, scalars are replaced."""
    if isinstance(global_props, dict) and isinstance(own, dict):
        merged = dict(global_props)
        for key, value in own.items():
            merged[key] = merge_globals(global_props[key], value) if key in global_props else value
        return merged
    if isinstance(global_props, list) and isinstance(own, list):
        return global_props + own
    return own


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


@pytest.fixture(scope="module")
def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Effective properties of every AWS::Serverless::Function, Globals merged in."""
    global_props = template.get("Globals", {}).get("Function", {})
    return {
        name: merge_globals(global_props, res.get("Properties", {}))
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }


@pytest.fixture(scope="module")
def state_machine(resources: dict[str, Any]) -> dict[str, Any]:
    machine = resources["RelayStateMachine"]
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    return dict(machine["Properties"])


@pytest.fixture(scope="module")
def asl_text(state_machine: dict[str, Any]) -> str:
    return (ROOT / str(state_machine["DefinitionUri"])).read_text(encoding="utf-8")


def ref(value: Any) -> str | None:
    return str(value["Ref"]) if isinstance(value, dict) and "Ref" in value else None


def statements(policies: list[Any]) -> Iterator[dict[str, Any]]:
    """Inline statements of a SAM Policies list (policy templates are expanded by SAM itself)."""
    for policy in policies:
        if isinstance(policy, dict) and "Statement" in policy:
            stmts = policy["Statement"]
            yield from stmts if isinstance(stmts, list) else [stmts]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_template_args(policies: list[Any], name: str) -> list[dict[str, Any]]:
    return [p[name] for p in policies if isinstance(p, dict) and name in p]


# ------------------------------------------------------------------ template basics


def test_template_is_a_sam_template(template: dict[str, Any]) -> None:
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_exactly_the_contract_functions_exist_with_their_code(functions: dict[str, dict[str, Any]]) -> None:
    assert set(functions) == set(FUNCTIONS)
    for name, (directory, _) in FUNCTIONS.items():
        props = functions[name]
        assert props["CodeUri"].rstrip("/") == f"functions/{directory}", name
        assert (ROOT / "functions" / directory / "app.py").is_file(), name
        assert props["Handler"] == "app.lambda_handler", name
        assert props["Runtime"] == "python3.12", name


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_timeout_matches_the_contract(functions: dict[str, dict[str, Any]], name: str) -> None:
    assert functions[name]["Timeout"] == FUNCTIONS[name][1]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_both_layers_tracing_and_json_logs(
    functions: dict[str, dict[str, Any]], resources: dict[str, Any], name: str
) -> None:
    props = functions[name]
    assert [ref(layer) for layer in props["Layers"]] == ["CoreLayer", "ConfigLayer"]
    assert props["Tracing"] == "Active"
    logging = props["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    group = resources[ref(logging["LogGroup"]) or ""]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert "RetentionInDays" in group["Properties"]


def test_each_function_logs_to_its_own_group(functions: dict[str, dict[str, Any]]) -> None:
    groups = [ref(props["LoggingConfig"]["LogGroup"]) for props in functions.values()]
    assert len(set(groups)) == len(groups)


def test_every_log_group_has_a_retention(resources: dict[str, Any]) -> None:
    groups = {n: r for n, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert groups
    for name, group in groups.items():
        assert group["Properties"].get("RetentionInDays"), name


def test_layers(resources: dict[str, Any]) -> None:
    core, config = resources["CoreLayer"], resources["ConfigLayer"]
    assert core["Type"] == config["Type"] == "AWS::Serverless::LayerVersion"
    assert core["Metadata"]["BuildMethod"] == "python3.12"
    assert core["Properties"]["ContentUri"].rstrip("/") == "layers/core"
    assert core["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert (ROOT / "layers/core/requirements.txt").is_file()
    # no build: config/routes.yaml lands at /opt/routes.yaml, where ROUTES_FILE points
    assert "Metadata" not in config
    assert config["Properties"]["ContentUri"].rstrip("/") == "config"


# ------------------------------------------------------------------ environment


def test_every_function_gets_the_shared_environment(functions: dict[str, dict[str, Any]]) -> None:
    for name, props in functions.items():
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == "testrelay", name
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "TestRelay", name
        assert ref(env["POWERTOOLS_LOG_LEVEL"]) == "LogLevel", name
        assert ref(env["LEDGER_TABLE"]) == "LedgerTable", name
        assert ref(env["RESULTS_BUCKET"]) == "ResultsBucket", name


def test_webhook_and_dispatch_environment(functions: dict[str, dict[str, Any]]) -> None:
    webhook = functions["WebhookFunction"]["Environment"]["Variables"]
    assert ref(webhook["JOBS_QUEUE_URL"]) == "JobsQueue"
    assert webhook["ROUTES_FILE"] == "/opt/routes.yaml"
    assert ref(webhook["WEBHOOK_SECRETS_ID"]) == "WebhookSecrets"
    dispatch = functions["DispatchFunction"]["Environment"]["Variables"]
    assert ref(dispatch["STATE_MACHINE_ARN"]) == "RelayStateMachine"
    assert ref(dispatch["JOBS_DLQ_URL"]) == "JobsDLQ"  # where messages that can never be processed are parked


@pytest.mark.parametrize("name", TASK_FUNCTIONS)
def test_task_functions_know_the_vendors(functions: dict[str, dict[str, Any]], name: str) -> None:
    env = functions[name]["Environment"]["Variables"]
    assert ref(env["VENDOR_SECRETS_ID"]) == "VendorCredentials"
    assert ref(env["TESTSIGMA_BASE_URL"]) == "TestsigmaBaseUrl"
    assert ref(env["TESTSIGMA_TM_BASE_URL"]) == "TestsigmaTmBaseUrl"
    assert ref(env["GITHUB_API_URL"]) == "GithubApiUrl"
    assert ref(env["GITLAB_API_URL"]) == "GitlabApiUrl"
    assert ref(env["BITBUCKET_API_URL"]) == "BitbucketApiUrl"


def test_vendor_url_parameters_default_to_the_real_vendors(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["TestsigmaBaseUrl"]["Default"] == "https://app.testsigma.com/api/v1"
    assert params["TestsigmaTmBaseUrl"]["Default"] == "https://test-management.testsigma.com/api/v1"
    assert params["GithubApiUrl"]["Default"] == "https://api.github.com"
    assert params["GitlabApiUrl"]["Default"] == "https://gitlab.com/api/v4"
    assert params["BitbucketApiUrl"]["Default"] == "https://api.bitbucket.org/2.0"


def test_secrets_never_sit_in_environment_values(functions: dict[str, dict[str, Any]]) -> None:
    # the functions get secret *ids* and fetch the values at run time
    for name, props in functions.items():
        for key in props["Environment"]["Variables"]:
            assert not re.search(r"(KEY|TOKEN|PASSWORD)$", key), f"{name}: {key}"


# ------------------------------------------------------------------ queue, DLQ, alarm


def test_queue_visibility_covers_six_dispatch_timeouts(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    dispatch = functions["DispatchFunction"]
    window = dispatch["Events"]["Jobs"]["Properties"].get("MaximumBatchingWindowInSeconds", 0)
    visibility = resources["JobsQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * dispatch["Timeout"] + window


def test_failed_jobs_end_in_the_dlq(resources: dict[str, Any]) -> None:
    queue = resources["JobsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobsDLQ", "Arn"]}
    dlq = resources["JobsDLQ"]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    # a DLQ that keeps messages for less time than the source queue loses them
    assert dlq["MessageRetentionPeriod"] >= queue.get("MessageRetentionPeriod", 345600)


def test_queues_are_encrypted(resources: dict[str, Any]) -> None:
    for name in ("JobsQueue", "JobsDLQ"):
        props = resources[name]["Properties"]
        assert props.get("SqsManagedSseEnabled") or props.get("KmsMasterKeyId"), name


def test_dispatch_reads_the_queue_in_batches_with_partial_failures(functions: dict[str, dict[str, Any]]) -> None:
    event = functions["DispatchFunction"]["Events"]["Jobs"]
    assert event["Type"] == "SQS"
    props = event["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    assert props["BatchSize"] == 10
    assert props["MaximumBatchingWindowInSeconds"] == 1
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_dlq_alarm_fires_on_the_first_dead_letter(template: dict[str, Any], resources: dict[str, Any]) -> None:
    alarm = resources["JobsDlqAlarm"]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    props = alarm["Properties"]
    assert props["Namespace"] == "AWS/SQS"
    assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["JobsDLQ", "QueueName"]}}]
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["Threshold"] == 0
    # actions only when an SNS topic is given
    assert "AlarmTopicArn" in template["Parameters"]
    assert props["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic"


# ------------------------------------------------------------------ storage


def test_ledger_table(resources: dict[str, Any]) -> None:
    props = resources["LedgerTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {"pk": "S", "sk": "S"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_results_bucket_is_private_encrypted_expiring_and_tls_only(resources: dict[str, Any]) -> None:
    props = resources["ResultsBucket"]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and r.get("ExpirationInDays") == 30 for r in rules)
    policy = resources["ResultsBucketPolicy"]["Properties"]
    assert ref(policy["Bucket"]) == "ResultsBucket"
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"]["Bool"]["aws:SecureTransport"] in ("false", False) for s in deny)


def test_secrets_exist(resources: dict[str, Any]) -> None:
    for name in ("WebhookSecrets", "VendorCredentials"):
        assert resources[name]["Type"] == "AWS::SecretsManager::Secret"
    placeholder = json.loads(resources["VendorCredentials"]["Properties"]["SecretString"])
    assert set(placeholder) == {"testsigma_api_key", "testsigma_tm_api_key", "github_token"}


def test_webhook_secrets_have_a_key_for_every_provider(resources: dict[str, Any]) -> None:
    generate = resources["WebhookSecrets"]["Properties"]["GenerateSecretString"]
    keys = set(json.loads(generate["SecretStringTemplate"])) | {generate["GenerateStringKey"]}
    assert keys == set(PROVIDERS)


# ------------------------------------------------------------------ least privilege


def _all_policies(functions: dict[str, dict[str, Any]], state_machine: dict[str, Any]) -> dict[str, list[Any]]:
    policies = {name: list(props.get("Policies", [])) for name, props in functions.items()}
    policies["RelayStateMachine"] = list(state_machine.get("Policies", []))
    return policies


def test_no_managed_or_wildcard_policies(functions: dict[str, dict[str, Any]], state_machine: dict[str, Any]) -> None:
    for owner, policies in _all_policies(functions, state_machine).items():
        for policy in policies:
            # a bare string is an AWS managed policy (e.g. AmazonDynamoDBFullAccess): too broad
            assert isinstance(policy, dict), f"{owner} uses the managed policy {policy}"
        for stmt in statements(policies):
            if stmt.get("Effect", "Allow") != "Allow":
                continue
            actions = as_list(stmt["Action"])
            for action in actions:
                assert action != "*", owner
                assert not action.endswith(":*"), f"{owner}: {action}"
            if "*" in as_list(stmt["Resource"]):
                assert set(actions) <= NO_RESOURCE_LEVEL_ACTIONS, f"{owner}: {actions} on '*'"


def _ledger_actions(policies: list[Any]) -> list[str]:
    return sorted(
        action
        for statement in statements(policies)
        if statement.get("Resource") == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
        for action in as_list(statement["Action"])
    )


def test_each_function_reaches_only_what_it_needs(
    functions: dict[str, dict[str, Any]], state_machine: dict[str, Any]
) -> None:
    policies = _all_policies(functions, state_machine)
    webhook = policies["WebhookFunction"]
    assert [ref(a["SecretArn"]) for a in policy_template_args(webhook, "AWSSecretsManagerGetSecretValuePolicy")] == [
        "WebhookSecrets"
    ]
    assert policy_template_args(webhook, "SQSSendMessagePolicy") == [
        {"QueueName": {"Fn::GetAtt": ["JobsQueue", "QueueName"]}}
    ]
    # The ledger only for sharded CI runs: a report's slot in its run key's SHARDS item.
    assert _ledger_actions(webhook) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]

    dispatch = policies["DispatchFunction"]
    assert policy_template_args(dispatch, "StepFunctionsExecutionPolicy") == [
        {"StateMachineName": {"Fn::GetAtt": ["RelayStateMachine", "Name"]}}
    ]
    assert not policy_template_args(dispatch, "AWSSecretsManagerGetSecretValuePolicy")
    assert policy_template_args(dispatch, "SQSSendMessagePolicy") == [
        {"QueueName": {"Fn::GetAtt": ["JobsDLQ", "QueueName"]}}
    ]

    for name in TASK_FUNCTIONS:
        secrets = policy_template_args(policies[name], "AWSSecretsManagerGetSecretValuePolicy")
        # task functions never see the webhook secrets
        assert [ref(a["SecretArn"]) for a in secrets] == ["VendorCredentials"], name
        assert _ledger_actions(policies[name]) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], name
    for name in LEDGER_TASK_FUNCTIONS:
        assert not policy_template_args(policies[name], "AWSSecretsManagerGetSecretValuePolicy"), name
        assert _ledger_actions(policies[name]) == ["dynamodb:GetItem", "dynamodb:UpdateItem"], name
    for name in FUNCTIONS:
        if name not in ("CollectResultsFunction", "WriteBackFunction", "WebhookFunction"):
            text = json.dumps(policies[name])
            assert "ResultsBucket" not in text, f"{name} should not touch the results bucket"
    # The webhook reaches the bucket only to keep JUnit reports, under reports/.
    bucket = [s for s in statements(webhook) if "ResultsBucket" in json.dumps(s)]
    assert [(sorted(as_list(s["Action"])), s["Resource"]) for s in bucket] == [
        (["s3:GetObject", "s3:PutObject"], {"Fn::Sub": "${ResultsBucket.Arn}/reports/*"})
    ]


def test_state_machine_invokes_exactly_its_task_functions(state_machine: dict[str, Any]) -> None:
    invoked = [
        str(ref(a["FunctionName"])) for a in policy_template_args(state_machine["Policies"], "LambdaInvokePolicy")
    ]
    assert sorted(invoked) == sorted(TASK_FUNCTIONS + LEDGER_TASK_FUNCTIONS)


# ------------------------------------------------------------------ state machine


def test_state_machine_definition_and_observability(state_machine: dict[str, Any], resources: dict[str, Any]) -> None:
    assert state_machine["Type"] == "STANDARD"
    assert state_machine["DefinitionUri"] == "statemachine/relay.asl.json"
    assert state_machine["Tracing"]["Enabled"] is True
    logging = state_machine["Logging"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False
    group_arn = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
    group_name = group_arn["Fn::GetAtt"][0]
    assert resources[group_name]["Type"] == "AWS::Logs::LogGroup"


def test_every_asl_substitution_is_defined_and_every_definition_used(
    state_machine: dict[str, Any], asl_text: str
) -> None:
    used = set(re.findall(r"\$\{([^}]+)\}", asl_text))
    defined = set(state_machine["DefinitionSubstitutions"])
    assert used == defined, f"only in the ASL: {used - defined}; only in the template: {defined - used}"


def test_substitutions_point_at_the_task_functions(state_machine: dict[str, Any]) -> None:
    subs = state_machine["DefinitionSubstitutions"]
    for name in TASK_FUNCTIONS:
        assert subs[f"{name}Arn"] == {"Fn::GetAtt": [name, "Arn"]}


def _task_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for nested in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if nested:
                yield from _task_states(nested["States"])


def test_asl_is_json_and_every_task_calls_a_substituted_function(asl_text: str) -> None:
    definition = json.loads(asl_text)
    tasks = dict(_task_states(definition["States"]))
    assert tasks
    for name, state in tasks.items():
        target = state["Resource"]
        if target.startswith("arn:aws:states:::lambda:invoke"):
            target = state["Parameters"]["FunctionName"]
        assert re.fullmatch(r"\$\{\w+FunctionArn\}", target), f"{name}: {target}"


# ------------------------------------------------------------------ HTTP API and outputs


def test_webhook_route_and_access_logs(functions: dict[str, dict[str, Any]], resources: dict[str, Any]) -> None:
    event = functions["WebhookFunction"]["Events"]["Webhook"]
    assert event["Type"] == "HttpApi"
    assert event["Properties"]["Path"] == "/webhooks/{provider}"
    assert event["Properties"]["Method"].upper() == "POST"
    assert ref(event["Properties"]["ApiId"]) == "HttpApi"
    api = resources["HttpApi"]["Properties"]
    destination = api["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert resources[destination]["Type"] == "AWS::Logs::LogGroup"
    assert "DefaultRouteSettings" in api


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert set(outputs) >= {
        "WebhookBaseUrl",
        "JobsQueueUrl",
        "JobsDlqUrl",
        "StateMachineArn",
        "LedgerTableName",
        "ResultsBucketName",
        "WebhookSecretsArn",
        "VendorCredentialsArn",
    }
    assert outputs["WebhookBaseUrl"]["Value"] == {
        "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.amazonaws.com/webhooks"
    }

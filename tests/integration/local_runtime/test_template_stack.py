"""provision_from_template builds the local stack from a SAM template: resources, functions, outputs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from testrelay_local.cfn_template import TemplateError, load_template
from testrelay_local.lambda_router import LambdaContextLike
from testrelay_local.local_aws import LocalAws
from testrelay_local.template_stack import StackOutputs, provision_from_template

FIXTURES = Path(__file__).parent / "fixtures"
MINI_TEMPLATE = FIXTURES / "mini-template.yaml"
PROJECT_TEMPLATE = Path(__file__).parents[3] / "template.yaml"


def greet(event: dict[str, Any], context: LambdaContextLike) -> str:
    return f"hello {event['name']}"


def enqueue(event: dict[str, Any], context: LambdaContextLike) -> dict[str, str]:
    # Reads its queue from the environment, as the deployed function would.
    sent = boto3.client("sqs").send_message(QueueUrl=os.environ["JOBS_QUEUE_URL"], MessageBody=json.dumps(event))
    return {"message_id": sent["MessageId"]}


def provision_mini(local_aws: LocalAws, **overrides: str) -> StackOutputs:
    return provision_from_template(
        local_aws,
        MINI_TEMPLATE,
        {"GreetFunction": greet, "EnqueueFunction": enqueue},
        overrides,
        stack_name="mini",
    )


def test_short_form_tags_load_as_their_long_forms() -> None:
    # Given the fixture template written with !Ref, !GetAtt, !Sub, !If and !Equals
    # When it is loaded
    template = load_template(MINI_TEMPLATE)

    # Then every short form is the long form CloudFormation means
    resources = template["Resources"]
    assert resources["Jobs"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["JobsDead", "Arn"]
    }
    assert template["Conditions"]["HasArchive"] == {"Fn::Equals": [{"Ref": "WithArchive"}, "yes"]}
    archive = resources["EnqueueFunction"]["Properties"]["Environment"]["Variables"]["ARCHIVE_QUEUE_URL"]
    assert archive == {"Fn::If": ["HasArchive", {"Ref": "Archive"}, {"Ref": "AWS::NoValue"}]}


def test_provisioning_creates_the_queue_with_its_redrive_policy(local_aws: LocalAws) -> None:
    # Given the fixture template
    # When it is provisioned
    stack = provision_mini(local_aws)

    # Then the jobs queue has its visibility timeout and redrives to the DLQ after 4 receives
    sqs = local_aws.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.outputs["JobsQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "180"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": stack.outputs["JobsDlqArn"],
        "maxReceiveCount": 4,
    }
    dlq_url = stack.physical_ids["JobsDead"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn", "MessageRetentionPeriod"])
    assert dlq["Attributes"] == {"QueueArn": stack.outputs["JobsDlqArn"], "MessageRetentionPeriod": "1209600"}


def test_redrive_moves_a_message_to_the_dlq_after_max_receives(local_aws: LocalAws) -> None:
    # Given the provisioned stack and a job on its queue
    stack = provision_mini(local_aws)
    sqs = local_aws.client("sqs")
    queue_url = stack.outputs["JobsQueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="poison")

    # When the job is received and abandoned maxReceiveCount times
    for _ in range(4):
        (message,) = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)["Messages"]
        assert message["Body"] == "poison"
    leftover = sqs.receive_message(QueueUrl=queue_url).get("Messages", [])

    # Then it is in the DLQ, not in the queue
    assert leftover == []
    (dead,) = sqs.receive_message(QueueUrl=stack.physical_ids["JobsDead"])["Messages"]
    assert dead["Body"] == "poison"


def test_provisioning_creates_table_bucket_and_secrets(local_aws: LocalAws) -> None:
    # Given the fixture template
    # When it is provisioned
    stack = provision_mini(local_aws)

    # Then the table has its keys, billing mode and TTL
    dynamodb = local_aws.client("dynamodb")
    table = dynamodb.describe_table(TableName=stack.outputs["LedgerName"])["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=stack.outputs["LedgerName"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    # And the bucket exists under a valid (lower-case) name
    assert stack.outputs["ResultsBucketName"] == "mini-results"
    local_aws.client("s3").head_bucket(Bucket=stack.outputs["ResultsBucketName"])
    # And the secrets hold the template's value, or a generated one under the template's key
    secrets = local_aws.client("secretsmanager")
    vendor = secrets.get_secret_value(SecretId=stack.physical_ids["VendorKeys"])["SecretString"]
    assert json.loads(vendor) == {"api_key": "REPLACE_ME"}
    hook = json.loads(secrets.get_secret_value(SecretId=stack.outputs["HookSecretsArn"])["SecretString"])
    assert hook["provider"] == "github"
    assert len(hook["github"]) == 24
    assert hook["github"].isalnum()


def test_functions_get_their_resolved_environment_with_globals(local_aws: LocalAws) -> None:
    # Given the fixture template and a local vendor URL
    # When it is provisioned with that URL as a parameter override
    stack = provision_mini(local_aws, VendorBaseUrl="http://127.0.0.1:8081/api")

    # Then each function's environment merges Globals with its own, every reference resolved
    greet_function = stack.functions["GreetFunction"]
    assert greet_function.environment == {
        "POWERTOOLS_SERVICE_NAME": "mini",
        "LEDGER_TABLE": "mini-Ledger",
        "GREETING": "hello",
        "VENDOR_BASE_URL": "http://127.0.0.1:8081/api",
        "VENDOR_SECRETS_ID": stack.physical_ids["VendorKeys"],
    }
    assert (greet_function.timeout, greet_function.memory_size) == (5, 256)
    enqueue_function = stack.functions["EnqueueFunction"]
    # ARCHIVE_QUEUE_URL is AWS::NoValue: the HasArchive condition is false
    assert enqueue_function.environment == {
        "POWERTOOLS_SERVICE_NAME": "mini",
        "LEDGER_TABLE": "mini-Ledger",
        "JOBS_QUEUE_URL": stack.outputs["JobsQueueUrl"],
    }
    assert (enqueue_function.timeout, enqueue_function.memory_size) == (20, 256)
    assert enqueue_function.events["Api"]["Properties"]["Path"] == "/enqueue"
    # And moto's function configuration records the same
    configuration = local_aws.client("lambda").get_function_configuration(FunctionName=greet_function.name)
    assert configuration["Environment"]["Variables"] == greet_function.environment
    assert configuration["Timeout"] == 5


def test_outputs_conditions_and_skipped_resources(local_aws: LocalAws) -> None:
    # Given the fixture template, with an override for the (skipped) HTTP API's id
    # When it is provisioned
    stack = provision_mini(local_aws, Api="local-api")

    # Then the outputs resolve, skipped resources answering Ref with their override
    assert stack.outputs["ApiUrl"] == "https://local-api.execute-api.us-east-1.amazonaws.com/"
    assert stack.outputs["FlowArn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:mini-Flow"
    # And a resource whose condition is false is neither created nor output
    assert "Archive" not in stack.physical_ids
    assert "ArchiveUrl" not in stack.outputs
    assert stack.skipped == {"Api": "AWS::Serverless::HttpApi", "GreetLogs": "AWS::Logs::LogGroup"}


def test_the_state_machine_runs_the_registered_handlers(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the provisioned stack, with the enqueue function's environment in place
    stack = provision_mini(local_aws)
    for name, value in stack.functions["EnqueueFunction"].environment.items():
        monkeypatch.setenv(name, value)
    sfn = local_aws.client("stepfunctions")

    # When the state machine runs
    execution = sfn.start_execution(
        stateMachineArn=stack.outputs["FlowArn"], name="greet-ada", input=json.dumps({"name": "Ada"})
    )["executionArn"]
    deadline = time.monotonic() + 20
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.02)

    # Then the substituted function ARNs led to both handlers, in order
    assert described["status"] == "SUCCEEDED"
    message_id = json.loads(described["output"])["message_id"]
    (message,) = local_aws.client("sqs").receive_message(QueueUrl=stack.outputs["JobsQueueUrl"])["Messages"]
    assert message["MessageId"] == message_id
    assert json.loads(message["Body"]) == {"name": "Ada", "greeting": "hello Ada"}


def test_handlers_must_match_the_template_functions(local_aws: LocalAws) -> None:
    # Given handlers for one function of two, plus one the template does not have
    handlers = {"GreetFunction": greet, "ReportFunction": greet}

    # When provisioning starts
    # Then it refuses before creating anything, naming both
    with pytest.raises(TemplateError, match=r"missing \['EnqueueFunction'\], unknown \['ReportFunction'\]"):
        provision_from_template(local_aws, MINI_TEMPLATE, handlers)
    assert local_aws.client("sqs").list_queues().get("QueueUrls", []) == []


def test_overrides_must_name_a_parameter_or_a_skipped_resource(local_aws: LocalAws) -> None:
    # Given an override with a typo
    # When provisioning starts
    # Then it is refused
    with pytest.raises(TemplateError, match="VendorBaseURL"):
        provision_mini(local_aws, VendorBaseURL="http://127.0.0.1:1")


@pytest.mark.skipif(not PROJECT_TEMPLATE.exists(), reason="template.yaml not written yet")
def test_the_project_template_provisions_the_stack_contract(local_aws: LocalAws) -> None:
    # Given the project's template.yaml, with a handler for each of its functions
    functions = [
        logical_id
        for logical_id, resource in load_template(PROJECT_TEMPLATE)["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    handlers = {logical_id: (lambda event, context: event) for logical_id in functions}

    # When it is provisioned
    stack = provision_from_template(local_aws, PROJECT_TEMPLATE, handlers)

    # Then the jobs queue redrives to the DLQ after 5 receives and outlasts 6 dispatch timeouts
    attributes = local_aws.client("sqs").get_queue_attributes(
        QueueUrl=stack.outputs["JobsQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 5
    assert redrive["deadLetterTargetArn"].endswith(":" + stack.outputs["JobsDlqUrl"].rsplit("/", 1)[-1])
    assert int(attributes["VisibilityTimeout"]) >= 6 * stack.functions["DispatchFunction"].timeout
    # And the dispatcher's SQS source and state machine are wired to what was created
    jobs_source = stack.functions["DispatchFunction"].events["Jobs"]["Properties"]
    assert jobs_source["Queue"] == attributes["QueueArn"]
    assert stack.functions["DispatchFunction"].environment["STATE_MACHINE_ARN"] == stack.outputs["StateMachineArn"]
    local_aws.client("stepfunctions").describe_state_machine(stateMachineArn=stack.outputs["StateMachineArn"])
    assert set(stack.outputs) >= {
        "WebhookBaseUrl",
        "JobsQueueUrl",
        "JobsDlqUrl",
        "StateMachineArn",
        "LedgerTableName",
        "ResultsBucketName",
        "WebhookSecretsArn",
        "VendorCredentialsArn",
    }

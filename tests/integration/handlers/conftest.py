"""In-process moto (real SQS, DynamoDB, S3, Secrets Manager and Step Functions semantics) for handler tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from testrelay.aws import clients
from testrelay.aws.secrets import forget_cached_secrets
from tests.support import ROOT

WEBHOOK_SECRET = "test-secret-placeholder"

ROUTES = """
version: 1
routes:
  - name: octo-checkout
    match:
      providers: [github]
      events: [workflow_run]
      repositories: [octo-org/octo-repo]
      branches: ["*"]
      outcomes: [success]
    testsigma: {test_plan_id: 2741}
    targets:
      - kind: testsigma_tm
        project_id: p-1
        status_ids: {passed: s-pass, failed: s-fail, blocked: s-block, untested: s-untested}
        case_map: {9101: c-1}
  - name: octo-smoke
    match: {repositories: ["octo-org/*"]}
    testsigma: {test_plan_id: 77}
  - name: elsewhere
    match: {repositories: [other/repo]}
    testsigma: {test_plan_id: 5}
"""


@dataclass
class Stack:
    queue_url: str
    dlq_url: str
    state_machine_arn: str
    table: str

    def queued(self) -> list[dict[str, Any]]:
        messages = boto3.client("sqs").receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "TestRelay",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clients.forget_clients()
    forget_cached_secrets()
    with mock_aws():
        sqs = boto3.client("sqs")
        dlq_url = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="jobs",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
        )["QueueUrl"]
        secret = boto3.client("secretsmanager").create_secret(
            Name="webhook-secrets", SecretString=json.dumps({"github": WEBHOOK_SECRET})
        )["ARN"]
        boto3.client("dynamodb").create_table(
            TableName="ledger",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        machine = boto3.client("stepfunctions").create_state_machine(
            name="relay",
            definition=(ROOT / "statemachine" / "relay.asl.json").read_text(),
            roleArn=role,
        )["stateMachineArn"]
        routes = tmp_path / "routes.yaml"
        routes.write_text(ROUTES)
        for name, value in {
            "JOBS_QUEUE_URL": queue_url,
            "JOBS_DLQ_URL": dlq_url,
            "ROUTES_FILE": str(routes),
            "WEBHOOK_SECRETS_ID": secret,
            "LEDGER_TABLE": "ledger",
            "STATE_MACHINE_ARN": machine,
        }.items():
            monkeypatch.setenv(name, value)
        yield Stack(queue_url=queue_url, dlq_url=dlq_url, state_machine_arn=machine, table="ledger")
    clients.forget_clients()
    forget_cached_secrets()

"""Provisions the resources of template.yaml in a running LocalAws, so the two cannot drift apart.

Created: SQS queues, DynamoDB tables, S3 buckets, Secrets Manager secrets, EventBridge buses, SAM
functions (routed to in-process handlers) and SAM state machines (the real ASL, with DefinitionSubstitutions). Every
other resource type (layers, HTTP APIs, log groups, alarms, bucket policies ...) is skipped on
purpose: nothing local would use it. A skipped resource still answers Ref (with its override, or its
logical id) and Fn::GetAtt (with "<logical id>.<attribute>"), so the properties that mention it resolve.
Properties that change nothing locally (encryption, public access blocks, lifecycle rules, logging,
tracing, IAM policies) are not applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testrelay_local.cfn_template import Resolver, TemplateError, dependency_order, load_template
from testrelay_local.lambda_router import LambdaHandler
from testrelay_local.local_aws import LocalAws

_FUNCTION = "AWS::Serverless::Function"
_STATE_MACHINE = "AWS::Serverless::StateMachine"
_DEFINITION_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# CloudFormation property -> SQS attribute, for the attributes a queue can be created with.
_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
# GenerateSecretString keys that GetRandomPassword takes as they are.
_PASSWORD_OPTIONS = (
    "ExcludeCharacters",
    "ExcludeLowercase",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "IncludeSpace",
    "PasswordLength",
    "RequireEachIncludedType",
)


@dataclass(frozen=True)
class ProvisionedFunction:
    logical_id: str
    name: str
    arn: str
    timeout: int
    memory_size: int
    # Globals merged in and every intrinsic resolved: what the function would see in os.environ.
    environment: Mapping[str, str]
    # The SAM Events of the function, resolved (e.g. the SQS source's queue ARN and batch settings).
    events: Mapping[str, Mapping[str, Any]]
    # Asynchronous invocations (EventBridge targets): the DeadLetterQueue ARN and the retries before it.
    dead_letter_arn: str | None = None
    async_retries: int = 2


@dataclass(frozen=True)
class StackOutputs:
    # The template's Outputs, resolved as the deployed stack would report them.
    outputs: Mapping[str, str]
    # What Ref yields for every resource, provisioned or skipped.
    physical_ids: Mapping[str, str]
    functions: Mapping[str, ProvisionedFunction]
    # Logical id -> type of the resources deliberately not created.
    skipped: Mapping[str, str]


@dataclass(frozen=True)
class _Created:
    ref: str
    attributes: Mapping[str, str]


def provision_from_template(
    local_aws: LocalAws,
    template_path: str | Path,
    handlers: Mapping[str, LambdaHandler],
    overrides: Mapping[str, str] | None = None,
    *,
    stack_name: str = "testrelay-local",
) -> StackOutputs:
    """Creates the template's resources in `local_aws`; `handlers` maps function logical ids to callables.

    `overrides` sets template parameters (like `sam deploy --parameter-overrides`) and the Ref value of
    skipped resources (e.g. {"TestsigmaBaseUrl": "http://127.0.0.1:8081/api/v1"}). Parameters are
    not checked against AllowedPattern/AllowedValues: local values (http on loopback) would not pass.
    """
    path = Path(template_path)
    template = load_template(path)
    return _Stack(local_aws, template, path.parent, handlers, dict(overrides or {}), stack_name).provision()


class _Stack:
    def __init__(
        self,
        local_aws: LocalAws,
        template: Mapping[str, Any],
        base_dir: Path,
        handlers: Mapping[str, LambdaHandler],
        overrides: dict[str, str],
        stack_name: str,
    ) -> None:
        self._aws = local_aws
        self._template = template
        self._base_dir = base_dir
        self._handlers = handlers
        self._overrides = overrides
        self._stack_name = stack_name
        self._resources: Mapping[str, Mapping[str, Any]] = template["Resources"]
        self._globals: Mapping[str, Any] = template.get("Globals", {}).get("Function", {})
        self._resolver = Resolver(
            template,
            parameters=self._parameters(),
            pseudo_parameters={
                "AWS::Region": local_aws.region,
                "AWS::AccountId": local_aws.account_id,
                "AWS::StackName": stack_name,
                "AWS::StackId": (
                    f"arn:aws:cloudformation:{local_aws.region}:{local_aws.account_id}:stack/{stack_name}/local"
                ),
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::NotificationARNs": [],
            },
        )
        self._creators: Mapping[str, Callable[[str, Mapping[str, Any]], _Created]] = {
            "AWS::SQS::Queue": self._queue,
            "AWS::DynamoDB::Table": self._table,
            "AWS::S3::Bucket": self._bucket,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Events::EventBus": self._event_bus,
            _FUNCTION: self._function,
            _STATE_MACHINE: self._state_machine,
        }
        self._functions: dict[str, ProvisionedFunction] = {}

    def provision(self) -> StackOutputs:
        included = {
            logical_id: self._with_globals(resource)
            for logical_id, resource in self._resources.items()
            if "Condition" not in resource or self._resolver.condition(resource["Condition"])
        }
        self._check_handlers(included)
        self._check_overrides()
        physical_ids: dict[str, str] = {}
        skipped: dict[str, str] = {}
        for logical_id in dependency_order(included):
            resource = included[logical_id]
            creator = self._creators.get(resource["Type"])
            if creator is None:
                skipped[logical_id] = resource["Type"]
                created = _Created(ref=self._overrides.get(logical_id, logical_id), attributes={})
            else:
                created = creator(logical_id, resource.get("Properties", {}))
            self._bind(logical_id, created)
            physical_ids[logical_id] = created.ref
        outputs = {
            name: self._resolver.text(output["Value"])
            for name, output in self._template.get("Outputs", {}).items()
            if "Condition" not in output or self._resolver.condition(output["Condition"])
        }
        return StackOutputs(
            outputs=outputs, physical_ids=physical_ids, functions=dict(self._functions), skipped=skipped
        )

    def _with_globals(self, resource: Mapping[str, Any]) -> Mapping[str, Any]:
        # Merged before ordering: a function also depends on what Globals refers to.
        if resource["Type"] != _FUNCTION:
            return resource
        return {**resource, "Properties": _merge_globals(self._globals, resource.get("Properties", {}))}

    # -- checks ----------------------------------------------------------------------------------

    def _parameters(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, declaration in self._template.get("Parameters", {}).items():
            if name in self._overrides:
                raw: Any = self._overrides[name]
            elif "Default" in declaration:
                raw = declaration["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default: give it in overrides")
            kind = str(declaration.get("Type", "String"))
            is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
            values[name] = [item.strip() for item in str(raw).split(",")] if is_list else str(raw)
        return values

    def _check_handlers(self, resources: Mapping[str, Mapping[str, Any]]) -> None:
        functions = {logical_id for logical_id, r in resources.items() if r["Type"] == _FUNCTION}
        missing, unknown = functions - self._handlers.keys(), self._handlers.keys() - functions
        if missing or unknown:
            raise TemplateError(
                f"handlers do not match the template's functions: missing {sorted(missing)}, unknown {sorted(unknown)}"
            )

    def _check_overrides(self) -> None:
        parameters = self._template.get("Parameters", {}).keys()
        skippable = {logical_id for logical_id, r in self._resources.items() if r["Type"] not in self._creators}
        unknown = self._overrides.keys() - parameters - skippable
        if unknown:
            raise TemplateError(f"overrides name neither a parameter nor a skipped resource: {sorted(unknown)}")

    # -- resources -------------------------------------------------------------------------------

    def _bind(self, logical_id: str, created: _Created) -> None:
        def attribute(name: str) -> str:
            if created.attributes:
                if name not in created.attributes:
                    raise TemplateError(f"Fn::GetAtt {logical_id}.{name} is not supported locally")
                return created.attributes[name]
            return f"{logical_id}.{name}"

        self._resolver.bind(logical_id, created.ref, attribute)

    def _physical_name(self, logical_id: str, *, max_length: int) -> str:
        # CloudFormation adds a random suffix; locally the name stays predictable.
        return f"{self._stack_name}-{logical_id}"[:max_length]

    def _queue(self, logical_id: str, properties: Mapping[str, Any]) -> _Created:
        resolved = self._resolver.resolve(properties)
        fifo = bool(resolved.get("FifoQueue", False))
        name = resolved.get("QueueName") or (
            self._physical_name(logical_id, max_length=75 if fifo else 80) + (".fifo" if fifo else "")
        )
        attributes = {
            key: json.dumps(resolved[key]) if isinstance(resolved[key], dict) else self._resolver.text(resolved[key])
            for key in _QUEUE_ATTRIBUTES
            if key in resolved
        }
        sqs = self._aws.client("sqs")
        url = str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
        arn = str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
        return _Created(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _table(self, logical_id: str, properties: Mapping[str, Any]) -> _Created:
        resolved = self._resolver.resolve(properties)
        name = resolved.get("TableName") or self._physical_name(logical_id, max_length=255)
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": resolved["KeySchema"],
            "AttributeDefinitions": resolved["AttributeDefinitions"],
            # CloudFormation's default, unlike SAM's SimpleTable.
            "BillingMode": resolved.get("BillingMode", "PROVISIONED"),
        }
        for key in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in resolved:
                request[key] = resolved[key]
        if "StreamSpecification" in resolved:
            request["StreamSpecification"] = {"StreamEnabled": True, **resolved["StreamSpecification"]}
        dynamodb = self._aws.client("dynamodb")
        table = dynamodb.create_table(**request)["TableDescription"]
        if "TimeToLiveSpecification" in resolved:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=resolved["TimeToLiveSpecification"])
        attributes = {"Arn": str(table["TableArn"])}
        if "LatestStreamArn" in table:
            attributes["StreamArn"] = str(table["LatestStreamArn"])
        return _Created(ref=name, attributes=attributes)

    def _bucket(self, logical_id: str, properties: Mapping[str, Any]) -> _Created:
        resolved = self._resolver.resolve(properties)
        name = resolved.get("BucketName") or self._physical_name(logical_id, max_length=63).lower()
        create: dict[str, Any] = {"Bucket": name}
        if self._aws.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": self._aws.region}
        self._aws.client("s3").create_bucket(**create)
        return _Created(
            ref=name,
            attributes={
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{self._aws.region}.amazonaws.com",
            },
        )

    def _secret(self, logical_id: str, properties: Mapping[str, Any]) -> _Created:
        resolved = self._resolver.resolve(properties)
        name = resolved.get("Name") or self._physical_name(logical_id, max_length=512)
        secretsmanager = self._aws.client("secretsmanager")
        if "SecretString" in resolved:
            value = str(resolved["SecretString"])
        else:
            value = self._generated_secret(secretsmanager, resolved.get("GenerateSecretString", {}))
        request = {"Name": name, "SecretString": value}
        if "Description" in resolved:
            request["Description"] = str(resolved["Description"])
        arn = str(secretsmanager.create_secret(**request)["ARN"])
        return _Created(ref=arn, attributes={"Id": arn})

    @staticmethod
    def _generated_secret(secretsmanager: Any, options: Mapping[str, Any]) -> str:
        password = str(
            secretsmanager.get_random_password(**{k: options[k] for k in _PASSWORD_OPTIONS if k in options})[
                "RandomPassword"
            ]
        )
        if "GenerateStringKey" not in options:
            return password
        document = json.loads(options.get("SecretStringTemplate", "{}"))
        document[options["GenerateStringKey"]] = password
        return json.dumps(document)

    def _function(self, logical_id: str, properties: Mapping[str, Any]) -> _Created:
        name = self._resolver.text(properties.get("FunctionName") or self._physical_name(logical_id, max_length=64))
        # SAM's defaults when neither the function nor Globals say otherwise.
        timeout = int(self._resolver.text(properties.get("Timeout", 3)))
        memory_size = int(self._resolver.text(properties.get("MemorySize", 128)))
        variables = self._resolver.resolve(properties.get("Environment", {})).get("Variables", {})
        environment = {key: self._resolver.text(value) for key, value in variables.items()}
        arn = self._aws.register_lambda(
            name, self._handlers[logical_id], timeout=timeout, memory_size=memory_size, environment=environment
        )
        self._functions[logical_id] = ProvisionedFunction(
            logical_id=logical_id,
            name=name,
            arn=arn,
            timeout=timeout,
            memory_size=memory_size,
            environment=environment,
            events=self._resolver.resolve(properties.get("Events", {})),
            dead_letter_arn=self._resolver.resolve(properties.get("DeadLetterQueue", {})).get("TargetArn"),
            async_retries=int(
                self._resolver.resolve(properties.get("EventInvokeConfig", {})).get("MaximumRetryAttempts", 2)
            ),
        )
        return _Created(ref=name, attributes={"Arn": arn})

    def _event_bus(self, logical_id: str, properties: Mapping[str, Any]) -> _Created:
        name = self._resolver.text(properties.get("Name") or self._physical_name(logical_id, max_length=256))
        arn = str(self._aws.client("events").create_event_bus(Name=name)["EventBusArn"])
        return _Created(ref=name, attributes={"Arn": arn, "Name": name})

    def _state_machine(self, logical_id: str, properties: Mapping[str, Any]) -> _Created:
        name = self._resolver.text(properties.get("Name") or self._physical_name(logical_id, max_length=80))
        if "Definition" in properties:
            text = json.dumps(self._resolver.resolve(properties["Definition"]))
        else:
            uri = properties.get("DefinitionUri")
            if not isinstance(uri, str):
                raise TemplateError(f"{logical_id}: only a local DefinitionUri file is supported, got {uri!r}")
            text = (self._base_dir / uri).read_text(encoding="utf-8")
        substitutions = {
            key: self._resolver.text(value) for key, value in properties.get("DefinitionSubstitutions", {}).items()
        }

        def substitute(match: re.Match[str]) -> str:
            # Like SAM: only declared substitutions are replaced; other ${...} text stays as it is.
            return substitutions.get(match.group(1), match.group(0))

        definition = _DEFINITION_SUBSTITUTION.sub(substitute, text)
        role = properties.get("Role")
        created = self._aws.client("stepfunctions").create_state_machine(
            name=name,
            definition=definition,
            roleArn=self._resolver.text(role) if role is not None else self._aws.execution_role_arn,
            type=self._resolver.text(properties.get("Type", "STANDARD")),
        )
        arn = str(created["stateMachineArn"])
        return _Created(ref=arn, attributes={"Arn": arn, "Name": name})


def _merge_globals(global_properties: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: maps merge, lists concatenate (globals first), other values are overridden."""
    merged = dict(global_properties)
    for key, value in properties.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict) and not _is_intrinsic(value):
            merged[key] = _merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = [*current, *value]
        else:
            merged[key] = value
    return merged


def _is_intrinsic(value: Mapping[str, Any]) -> bool:
    if len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")

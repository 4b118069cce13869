"""Creating the stack's resources in moto from template.yaml, so the template and the local
runtime cannot drift apart. Resources AWS would run for us (HTTP API, log groups, alarms, layers)
are played by other parts of the local runtime or have no local meaning, and are skipped."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testrelay_local.functions import ROOT, Handler, load_handler
from testrelay_local.local_aws import LocalAws

STACK_NAME = "testrelay-local"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) as their long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        template: dict[str, Any] = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return template


class _Lazy(dict[str, Any]):
    """Template properties resolved on access."""

    def __init__(self, provisioner: _Provisioner, raw: Mapping[str, Any]) -> None:
        super().__init__(raw)
        self._provisioner = provisioner

    def __getitem__(self, key: str) -> Any:
        return self._provisioner.resolve(super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 - dict.get would skip resolving


def _merge(base: Any, override: Any) -> Any:
    """SAM's Globals rule: maps merge key by key, anything else is replaced by the resource's value."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in override.items()}}
    return override if override is not None else base


@dataclass
class LocalStack:
    outputs: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


class _Provisioner:
    def __init__(self, aws: LocalAws, template: dict[str, Any], handlers: Callable[[str, dict[str, Any]], Handler]):
        self.aws = aws
        self.template = template
        self.handlers = handlers
        self.resources: dict[str, dict[str, Any]] = template.get("Resources", {})
        self.parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.created: dict[str, dict[str, str]] = {}  # logical id -> {"Ref": ..., "Arn": ...}
        self.stack = LocalStack()

    # -- intrinsic functions ---------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self._ref(str(arg))
        if key == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self._attribute(logical, attribute)
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(self.resolve(item)) for item in self.resolve(items))
        if key == "Fn::If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self._condition(condition) else when_false)
        if key in ("Fn::Equals", "Fn::Not"):
            return self._evaluate(value)
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.aws.region,
            "AWS::AccountId": self.aws.account_id,
            "AWS::StackName": STACK_NAME,
            "AWS::Partition": "aws",
            "AWS::NoValue": "",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self._create(name)["Ref"]

    def _attribute(self, logical: str, attribute: str) -> str:
        created = self._create(logical)
        if attribute not in created:
            raise KeyError(f"{logical}.{attribute} has no local value")
        return created[attribute]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
        out, rest = [], str(text)
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in variables:
                out.append(str(variables[name]))
            elif "." in name and not name.startswith("AWS::"):
                out.append(self._attribute(*name.split(".", 1)))
            else:
                out.append(self._ref(name))
        return "".join(out) + rest

    def _condition(self, name: str) -> bool:
        return bool(self._evaluate(self.template.get("Conditions", {})[name]))

    def _evaluate(self, expression: Any) -> Any:
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, arg),) = expression.items()
            if key == "Fn::Equals":
                left, right = (self._evaluate(v) for v in arg)
                return left == right
            if key == "Fn::Not":
                return not self._evaluate(arg[0])
            if key == "Condition":
                return self._condition(arg)
        return self.resolve(expression)

    # -- resources -------------------------------------------------------------------------------

    def provision(self) -> LocalStack:
        for logical in self.resources:
            self._create(logical)
        for name, output in self.template.get("Outputs", {}).items():
            try:
                self.stack.outputs[name] = str(self.resolve(output["Value"]))
            except KeyError:
                continue  # an output of a skipped resource (the HTTP API's URL)
        return self.stack

    def _create(self, logical: str) -> dict[str, str]:
        if logical in self.created:
            return self.created[logical]
        resource = self.resources[logical]
        condition = resource.get("Condition")
        kind = resource["Type"]
        creator = getattr(self, "_" + kind.replace("::", "_"), None)
        if creator is None or (condition and not self._condition(condition)):
            self.stack.skipped.append(f"{logical} ({kind})")
            self.created[logical] = {}
            return self.created[logical]
        # Each creator resolves only the properties it uses: others may point at skipped resources.
        self.created[logical] = creator(logical, _Lazy(self, resource.get("Properties", {})))
        return self.created[logical]

    def _name(self, logical: str) -> str:
        return f"{STACK_NAME}-{logical}"

    def _AWS_SQS_Queue(self, logical: str, props: Mapping[str, Any]) -> dict[str, str]:
        sqs = self.aws.client("sqs")
        names = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "RedrivePolicy", "MaximumMessageSize")
        attributes = {
            key: json.dumps(props[key]) if isinstance(props[key], dict) else str(props[key])
            for key in names
            if key in props
        }
        name = props.get("QueueName") or self._name(logical)
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"Ref": url, "Arn": arn, "QueueName": url.rsplit("/", 1)[1]}

    def _AWS_DynamoDB_Table(self, logical: str, props: Mapping[str, Any]) -> dict[str, str]:
        name = props.get("TableName") or self._name(logical)
        table = self.aws.client("dynamodb").create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        )
        return {"Ref": name, "Arn": table["TableDescription"]["TableArn"]}

    def _AWS_S3_Bucket(self, logical: str, props: Mapping[str, Any]) -> dict[str, str]:
        name = (props.get("BucketName") or self._name(logical)).lower()
        self.aws.client("s3").create_bucket(Bucket=name)
        return {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}

    def _AWS_SecretsManager_Secret(self, logical: str, props: Mapping[str, Any]) -> dict[str, str]:
        value = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        if value is None and generate:
            alphabet = string.ascii_letters + string.digits
            token = "".join(secrets.choice(alphabet) for _ in range(int(generate.get("PasswordLength", 32))))
            template = json.loads(generate.get("SecretStringTemplate", "{}"))
            value = json.dumps({**template, generate["GenerateStringKey"]: token})
        created = self.aws.client("secretsmanager").create_secret(
            Name=props.get("Name") or self._name(logical), SecretString=value or "{}"
        )
        return {"Ref": created["ARN"], "Id": created["ARN"]}

    def _function_properties(self, props: Mapping[str, Any]) -> dict[str, Any]:
        globals_ = self.template.get("Globals", {}).get("Function", {})
        raw = dict.copy(props) if isinstance(props, _Lazy) else dict(props)
        merged: dict[str, Any] = _merge(globals_, raw)
        return {
            key: self.resolve(merged[key])
            for key in ("CodeUri", "Handler", "Timeout", "MemorySize", "Environment")
            if key in merged
        }

    def _AWS_Serverless_Function(self, logical: str, props: Mapping[str, Any]) -> dict[str, str]:
        merged = self._function_properties(props)
        environment = {k: str(v) for k, v in merged.get("Environment", {}).get("Variables", {}).items()}
        arn = self.aws.register_lambda(
            logical,
            self.handlers(logical, merged),
            timeout=int(merged.get("Timeout", 3)),
            memory_size=int(merged.get("MemorySize", 128)),
            environment=environment,
        )
        self.stack.functions[logical] = arn
        self.stack.environment.update(environment)
        return {"Ref": logical, "Arn": arn}

    def _AWS_Serverless_StateMachine(self, logical: str, props: Mapping[str, Any]) -> dict[str, str]:
        definition = (ROOT / props["DefinitionUri"]).read_text(encoding="utf-8")
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        created = self.aws.client("stepfunctions").create_state_machine(
            name=props.get("Name") or self._name(logical),
            definition=definition,
            roleArn=self.aws.execution_role_arn,
            type=props.get("Type", "STANDARD"),
        )
        arn = created["stateMachineArn"]
        return {"Ref": arn, "Arn": arn, "Name": arn.rsplit(":", 1)[1]}


def default_handlers(logical: str, properties: Mapping[str, Any]) -> Handler:
    """The function's real handler, from its CodeUri and Handler."""
    return load_handler(properties["CodeUri"], properties.get("Handler", "app.lambda_handler"))


def provision(
    aws: LocalAws,
    template_path: Path = ROOT / "template.yaml",
    handlers: Callable[[str, dict[str, Any]], Handler] = default_handlers,
) -> LocalStack:
    return _Provisioner(aws, load_template(template_path), handlers).provision()

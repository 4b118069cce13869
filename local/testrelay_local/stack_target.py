"""Which stack an operator command talks to: the local runtime (found through the file
`testrelay local` writes) or a deployed stack (found through its CloudFormation outputs)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from testrelay_local.functions import ROOT

LOCAL_STATE = ROOT / ".testrelay" / "local.json"


@dataclass
class StackTarget:
    outputs: dict[str, str]
    endpoint_url: str | None = None
    region: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            options: dict[str, Any] = {"region_name": self.region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
            if self.endpoint_url:
                options |= {
                    "endpoint_url": self.endpoint_url,
                    "aws_access_key_id": "local",
                    "aws_secret_access_key": "local",
                }
            self._clients[service] = boto3.client(service, **options)
        return self._clients[service]

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise ValueError(f"the stack has no output {name!r}; is it up to date?") from None


def write_local_state(endpoint_url: str, outputs: dict[str, str], webhook_url: str, path: Path = LOCAL_STATE) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"endpoint_url": endpoint_url, "outputs": outputs, "webhook_url": webhook_url}))


def connect(stack: str | None, region: str | None = None, path: Path = LOCAL_STATE) -> StackTarget:
    """A deployed stack when named, else the running `testrelay local`."""
    if stack:
        cloudformation = boto3.client("cloudformation", region_name=region)
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        return StackTarget(outputs=outputs, region=region)
    if not path.exists():
        raise ValueError("no stack given (--stack NAME) and no local runtime running (start `testrelay local`)")
    state = json.loads(path.read_text())
    return StackTarget(outputs=state["outputs"], endpoint_url=state["endpoint_url"], region="us-east-1")

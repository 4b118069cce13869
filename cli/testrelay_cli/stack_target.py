"""Which stack an operator command talks to: the local runtime (found through the file
`testrelay local` writes) or a deployed stack (found through its CloudFormation outputs).

The state file is the contract between the local runtime (which writes it at its checkout's root) and
this CLI (installed anywhere): the CLI looks for it in the working directory and its parents, as git
finds `.git`, so a command run inside the checkout finds the runtime started there."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from testrelay_cli.cli_errors import CliError

LOCAL_STATE = Path(".testrelay") / "local.json"
# The routes file a checkout keeps; relative, so a command run at the root of a routes repository finds it.
DEFAULT_ROUTES = Path("config") / "routes.yaml"
START_LOCAL = "start it with `testrelay local`, or name a deployed stack with --stack"
# The local runtime's default webhook secret: a published development value, never a deployed one.
LOCAL_WEBHOOK_SECRET = "local-webhook-secret"  # noqa: S105


def local_state_file(root: Path | None = None) -> Path:
    """TESTRELAY_LOCAL_STATE when set (so two runtimes, or a test, keep apart); else `.testrelay/local.json`
    under `root` (the writer's checkout), or the nearest one in the working directory and its parents."""
    if os.environ.get("TESTRELAY_LOCAL_STATE"):
        return Path(os.environ["TESTRELAY_LOCAL_STATE"])
    if root is not None:
        return root / LOCAL_STATE
    here = Path.cwd()
    found = next((d / LOCAL_STATE for d in (here, *here.parents) if (d / LOCAL_STATE).exists()), None)
    return found or here / LOCAL_STATE


@dataclass
class StackTarget:
    outputs: dict[str, str]
    endpoint_url: str | None = None
    region: str | None = None
    name: str = "the local runtime"
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"region_name": self.region}
        if self.endpoint_url:
            options |= {
                "endpoint_url": self.endpoint_url,
                "aws_access_key_id": "local",
                "aws_secret_access_key": "local",
            }
        return options

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, **self._options())
        return self._clients[service]

    def resource(self, service: str) -> Any:
        key = f"resource:{service}"
        if key not in self._clients:
            self._clients[key] = boto3.resource(service, **self._options())
        return self._clients[key]

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise CliError(f"{self.name} has no output {name!r}: deploy the current template (`sam deploy`)") from None


def write_local_state(endpoint_url: str, outputs: dict[str, str], webhook_url: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"pid": os.getpid(), "endpoint_url": endpoint_url, "outputs": outputs, "webhook_url": webhook_url}
    path.write_text(json.dumps(state))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=2):
            return True
    except OSError:
        return False


def read_local_state(path: Path | None = None) -> dict[str, Any]:
    """The running `testrelay local`'s state, or a CliError saying why there is none."""
    searched = path is None and not os.environ.get("TESTRELAY_LOCAL_STATE")
    path = path or local_state_file()
    if not path.exists():
        where = f"{LOCAL_STATE} in {Path.cwd()} or a parent directory" if searched else str(path)
        raise CliError(f"no local runtime is running (no {where}): {START_LOCAL}")
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        endpoint = str(state["endpoint_url"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CliError(f"{path} is not a local runtime's state file: delete it, then {START_LOCAL}") from None
    pid = state.get("pid")
    if isinstance(pid, int) and not _process_alive(pid):
        raise CliError(f"stale {path}: its runtime (pid {pid}) has stopped; delete the file, then {START_LOCAL}")
    if not _answers(endpoint):
        raise CliError(f"the local runtime at {endpoint} does not answer (connection refused): {START_LOCAL}")
    return state


def connect(stack: str | None, region: str | None = None, path: Path | None = None) -> StackTarget:
    """A deployed stack when named, else the running `testrelay local`."""
    if stack:
        cloudformation = boto3.client("cloudformation", region_name=region)
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        return StackTarget(outputs=outputs, region=cloudformation.meta.region_name, name=f"stack {stack}")
    state = read_local_state(path)
    return StackTarget(outputs=state["outputs"], endpoint_url=state["endpoint_url"], region="us-east-1")

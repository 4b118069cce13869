"""AWS on loopback: moto 5.2.5 in server mode, running the real ASL and routing Lambda to Python.

moto keeps its backends, its configuration and (through the patches installed here) its Lambda and
interpreter behaviour process-wide, so one LocalAws at a time may run in a process; stop() resets
all of it and puts back every environment variable it changed.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import Any, Self

import boto3
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.utils import TMP_THREADS

from testrelay_local.asl_clock import InterpreterClock
from testrelay_local.atomic_dynamodb import atomic_items
from testrelay_local.environment import environment
from testrelay_local.lambda_router import LambdaHandler, LambdaRouter

_LOG = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"  # moto's default account
_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Would make boto3 sign as a real profile or ignore AWS_ENDPOINT_URL: unset while running.
_ENV_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)
_LAMBDA_ROLE_NAME = "testrelay-local-execution"
_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}
# A stopped execution's thread finishes the state it is in (a handler may still be running).
_EXECUTION_DRAIN_SECONDS = 10.0

_active_lock = threading.Lock()
_active: LocalAws | None = None


def _dummy_code_zip() -> bytes:
    # moto stores the package and never runs it: the handler runs in this process.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# routed in-process by testrelay_local.lambda_router\n")
    return buffer.getvalue()


_DUMMY_CODE_ZIP = _dummy_code_zip()


class LocalAws:
    """moto on 127.0.0.1 with Step Functions execution on and Lambda routed to in-process handlers."""

    def __init__(
        self, *, time_scale: float = 1.0, region: str = "us-east-1", now: Callable[[], float] = time.time
    ) -> None:
        """`now`: the clock Wait timestamps are read against (the local runtime's simulated time)."""
        self.region = region
        self.account_id = ACCOUNT_ID
        self._clock = InterpreterClock(time_scale, now)
        self._router = LambdaRouter()
        self._endpoint_url: str | None = None
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._role_arn: str | None = None
        self._undo = ExitStack()
        self._first_interpreter_thread = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        global _active
        with _active_lock:
            if _active is not None:
                raise RuntimeError("a LocalAws is already running in this process (moto state is global)")
            _active = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self._undo.callback(_release_active, self)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        self._undo.callback(_shutdown_server, server)
        host, port = server.get_host_and_port()
        self._endpoint_url = f"http://{host}:{port}"
        self._undo.enter_context(_quiet_request_log())
        self._undo.enter_context(atomic_items())
        self._undo.enter_context(
            environment(
                {
                    # The interpreter sends its Lambda calls to localhost:$MOTO_PORT.
                    "MOTO_PORT": str(port),
                    "AWS_ENDPOINT_URL": self._endpoint_url,
                    "AWS_DEFAULT_REGION": self.region,
                    # Set by the Lambda runtime too; Powertools reads it.
                    "AWS_REGION": self.region,
                    **_DUMMY_CREDENTIALS,
                },
                unset=[*_ENV_UNSET, *(key for key in os.environ if key.startswith("AWS_ENDPOINT_URL_"))],
            )
        )
        self._undo.enter_context(_fresh_default_boto3_session())
        self._undo.enter_context(_restored_moto_config())
        self._post_moto_api(
            "/moto-api/config",
            {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
        )
        self._session = boto3.session.Session(
            aws_access_key_id=_DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=self.region,
        )
        # Handlers of an earlier run went with moto's functions at its reset.
        self._router = LambdaRouter()
        self._undo.enter_context(self._router.installed())
        self._undo.enter_context(self._clock.installed())
        self._first_interpreter_thread = len(TMP_THREADS)
        # Runs first on stop, while the patches and the server are still in place: executions must
        # not outlive this runtime, nor moto state leak into the next one.
        self._undo.callback(self._drain_executions)

    def stop(self) -> None:
        """Stops running executions, resets every moto backend, stops the server, restores the process."""
        try:
            self._undo.close()
        finally:
            self._endpoint_url = None
            self._session = None
            self._clients.clear()
            self._role_arn = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("LocalAws is not running: call start() first")
        return self._endpoint_url

    @property
    def time_scale(self) -> float:
        return self._clock.scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self._clock.scale = value

    def client(self, service: str) -> Any:
        """A boto3 client bound to the server (shared per service; boto3 clients are thread-safe)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._require_session().client(service, endpoint_url=self.endpoint_url)
            return self._clients[service]

    def resource(self, service: str) -> Any:
        """A new boto3 resource bound to the server (resources are not thread-safe: not shared)."""
        return self._require_session().resource(service, endpoint_url=self.endpoint_url)

    @property
    def execution_role_arn(self) -> str:
        """An IAM role for functions and state machines (moto requires one; it enforces nothing)."""
        if self._role_arn is None:
            iam = self.client("iam")
            try:
                role = iam.create_role(RoleName=_LAMBDA_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(_TRUST_POLICY))
            except iam.exceptions.EntityAlreadyExistsException:
                role = iam.get_role(RoleName=_LAMBDA_ROLE_NAME)
            self._role_arn = str(role["Role"]["Arn"])
        return self._role_arn

    # -- Lambda ----------------------------------------------------------------------------------

    def register_lambda(
        self,
        name: str,
        handler: LambdaHandler,
        *,
        timeout: int = 30,
        memory_size: int = 128,
        environment: Mapping[str, str] | None = None,
    ) -> str:
        """Creates (or updates) function `name` in moto; invoking it calls `handler` in this process.

        Returns the function ARN. `environment` is recorded on the function's configuration only:
        handlers share this process's os.environ, so callers set what the handlers read.
        """
        self._router.register(name, handler)
        lambda_client = self.client("lambda")
        variables = {"Variables": dict(environment or {})}
        try:
            created = lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=self.execution_role_arn,
                Handler="app.lambda_handler",
                Code={"ZipFile": _DUMMY_CODE_ZIP},
                Timeout=timeout,
                MemorySize=memory_size,
                Environment=variables,
            )
        except lambda_client.exceptions.ResourceConflictException:
            created = lambda_client.update_function_configuration(
                FunctionName=name, Timeout=timeout, MemorySize=memory_size, Environment=variables
            )
        return str(created["FunctionArn"])

    def fail_lambda(self, name: str, error_type: str, message: str = "", times: int = 1) -> None:
        """The next `times` invocations of function `name` fail with `error_type` (see LambdaRouter.fail_next)."""
        self._router.fail_next(name, error_type, message, times)

    # -- internals -------------------------------------------------------------------------------

    def _require_session(self) -> Any:
        if self._session is None:
            raise RuntimeError("LocalAws is not running: call start() first")
        return self._session

    def _post_moto_api(self, path: str, body: Mapping[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - always our own http://127.0.0.1 endpoint
            self.endpoint_url + path,
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - as above
            response.read()

    def _drain_executions(self) -> None:
        """Stops every running execution, waits for its threads, then resets all moto backends."""
        sfn = self.client("stepfunctions")
        for page in sfn.get_paginator("list_state_machines").paginate():
            for machine in page["stateMachines"]:
                running = sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
                )
                for executions in running:
                    for execution in executions["executions"]:
                        sfn.stop_execution(executionArn=execution["executionArn"], cause="LocalAws stopped")
        # Retriers sleeping at time_scale > 0 would otherwise hold their thread for the interval.
        self._clock.release()
        deadline = time.monotonic() + _EXECUTION_DRAIN_SECONDS
        for thread in list(TMP_THREADS[self._first_interpreter_thread :]):
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                _LOG.warning("Step Functions interpreter thread %s outlived LocalAws.stop()", thread.name)
        self._post_moto_api("/moto-api/reset", {})


def _release_active(local_aws: LocalAws) -> None:
    global _active
    with _active_lock:
        if _active is local_aws:
            _active = None


def _shutdown_server(server: ThreadedMotoServer) -> None:
    server.stop()
    # ThreadedMotoServer.stop() (moto 5.2.5) shuts the loop down but leaves the listening socket open.
    if server._server is not None:
        server._server.server_close()


def _not_a_move_task_probe(record: logging.LogRecord) -> bool:
    """False for the traceback moto logs when `testrelay redrive` asks for SQS's message move tasks, which
    moto lacks: the CLI expects that answer and falls back (see the README's redrive), so it is no error."""
    # werkzeug renders the traceback into the message itself ("Error on request:\n...").
    message = record.getMessage()
    return not (message.startswith("Error on request") and "message_move_task" in message)


@contextmanager
def _quiet_request_log() -> Iterator[None]:
    # werkzeug logs one access line per AWS call.
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addFilter(_not_a_move_task_probe)
    try:
        yield
    finally:
        logger.removeFilter(_not_a_move_task_probe)
        logger.setLevel(level)


@contextmanager
def _fresh_default_boto3_session() -> Iterator[None]:
    # boto3's default session caches credentials once resolved: a session made before start()
    # would keep signing with whatever it found then.
    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = saved


@contextmanager
def _restored_moto_config() -> Iterator[None]:
    # POST /moto-api/config rewrites these entries of a process-wide dict; nothing resets them otherwise.
    saved_lambda = copy.deepcopy(default_user_config.get("lambda"))
    saved_stepfunctions = copy.deepcopy(default_user_config.get("stepfunctions"))
    try:
        yield
    finally:
        if saved_lambda is None:
            default_user_config.pop("lambda", None)
        else:
            default_user_config["lambda"] = saved_lambda
        if saved_stepfunctions is None:
            default_user_config.pop("stepfunctions", None)
        else:
            default_user_config["stepfunctions"] = saved_stepfunctions

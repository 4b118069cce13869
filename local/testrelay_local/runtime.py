"""The whole relay on one machine: moto for AWS (resources from template.yaml), the real handlers,
an HTTP front for the webhook, a poller for the queue, and the vendor sandbox (or the real vendors)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Self

from testrelay.aws import clients, rate_budget
from testrelay.aws.secrets import forget_cached_secrets
from testrelay.ci.registry import PROVIDERS
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.routing import write_index
from testrelay.settings import get_settings
from testrelay_cli.stack_target import LOCAL_WEBHOOK_SECRET
from testrelay_cli.vendor_endpoints import VENDOR_KEYS
from testrelay_cli.vendor_endpoints import Vendors as EnvironmentVendors
from testrelay_local.cfn_template import load_template
from testrelay_local.environment import environment
from testrelay_local.event_router import EventRouter
from testrelay_local.functions import ROOT, load_handler
from testrelay_local.http_front import HttpFront
from testrelay_local.lambda_containers import ContainerPool
from testrelay_local.local_aws import LocalAws
from testrelay_local.sandbox import Sandbox, SandboxSeed
from testrelay_local.sim_clock import SimulatedClock
from testrelay_local.sqs_poller import SqsPoller
from testrelay_local.template_stack import provision_from_template

TEMPLATE = ROOT / "template.yaml"
DEFAULT_ROUTES = ROOT / "config" / "routes.yaml"


class Vendors(EnvironmentVendors):
    """The vendors a local runtime talks to: the real ones (from the environment), or the sandbox."""

    @classmethod
    def sandbox(cls, sandbox: Sandbox, seed: SandboxSeed) -> Vendors:
        """The sandbox's endpoints, and the keys its seed accepts (the seed names them like the secret)."""
        urls = {
            "TESTSIGMA_BASE_URL": sandbox.testsigma_url,
            "TESTSIGMA_APP_URL": f"{sandbox.base_url}/testsigma",
            "TESTSIGMA_TM_BASE_URL": sandbox.testsigma_tm_url,
            "BROWSERSTACK_TM_BASE_URL": sandbox.browserstack_tm_url,
            "GITHUB_API_URL": sandbox.github_url,
            "GITLAB_API_URL": sandbox.gitlab_url,
            "BITBUCKET_API_URL": sandbox.bitbucket_url,
        }
        return cls(urls, {key: str(getattr(seed, key)) for key in VENDOR_KEYS})


def template_handlers(template_path: Path = TEMPLATE) -> dict[str, Any]:
    """Each function of the template, by logical id, to its real handler (CodeUri + Handler)."""
    template = load_template(template_path)
    default_handler = template.get("Globals", {}).get("Function", {}).get("Handler", "app.lambda_handler")
    return {
        logical: load_handler(resource["Properties"]["CodeUri"], resource["Properties"].get("Handler", default_handler))
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def reset_process_caches() -> None:
    """The core caches clients, settings and secrets per process, as Lambda does; a new stack needs new ones."""
    get_settings.cache_clear()
    clients.forget_clients()
    rate_budget.dynamodb_client.cache_clear()
    forget_cached_secrets()
    for name in dir(services):
        cache_clear = getattr(getattr(services, name), "cache_clear", None)
        if cache_clear is not None:
            cache_clear()


class LocalRuntime:
    def __init__(
        self,
        routes_file: Path = DEFAULT_ROUTES,
        port: int = 0,
        vendors: Vendors | None = None,
        time_scale: float = 0.0,
        sandbox_seed: SandboxSeed | None = None,
        sandbox_run_duration: float = 2.0,
        sandbox_port: int = 0,
        log_level: str = "WARNING",
        webhook_secret: str = LOCAL_WEBHOOK_SECRET,
        containers: Mapping[str, int] | None = None,
        simulated_time: bool = False,
    ) -> None:
        """`containers`: functions (logical ids, e.g. `{"WriteBackFunction": 4}`) whose invocations run
        in that many separate worker processes, like Lambda's execution environments, instead of
        threads of this process (see lambda_containers).

        `simulated_time` (with a `time_scale` > 0): the relay's clock, the sandbox's runs (their
        `sandbox_run_duration` and distributions are then simulated seconds) and the Wait states all
        run on one clock `1 / time_scale` times faster than the wall clock (see sim_clock)."""
        write_index(routes_file)  # fail before anything starts; the webhook reads the index (routes_index)
        self.routes_file = Path(routes_file).resolve()
        self._port = port
        self._given_vendors = vendors
        self._log_level = log_level
        self.webhook_secret = webhook_secret
        self.sandbox: Sandbox | None = None
        self.clock = SimulatedClock(time_scale) if simulated_time else None
        now = self.clock.now if self.clock else time.time
        if vendors is None:
            self._sandbox_seed = sandbox_seed or SandboxSeed.demo()
            self.sandbox = Sandbox(
                seed=self._sandbox_seed, run_duration=sandbox_run_duration, port=sandbox_port, clock=now
            )
        self.aws = LocalAws(time_scale=time_scale, now=now)
        self._undo = ExitStack()
        self.outputs: dict[str, str] = {}
        self.function_names: dict[str, str] = {}
        self._env: Any = None
        self._front: HttpFront | None = None
        self._poller: SqsPoller | None = None
        self.router: EventRouter | None = None
        self._containers = dict(containers or {})
        self.pools: dict[str, ContainerPool] = {}

    @property
    def url(self) -> str:
        if self._front is None:
            raise RuntimeError("the local runtime is not running")
        return self._front.url

    def webhook_url(self, provider: str = "github") -> str:
        return f"{self.url}/webhooks/{provider}"

    def start(self) -> Self:
        if self.sandbox is not None:
            self.sandbox.start()
            vendors = Vendors.sandbox(self.sandbox, self._sandbox_seed)
        else:
            assert self._given_vendors is not None
            vendors = self._given_vendors
        self.aws.start()
        handlers = template_handlers()
        if self._containers:
            resources = load_template(TEMPLATE)["Resources"]
            for logical, size in self._containers.items():
                self.pools[logical] = ContainerPool(resources[logical]["Properties"]["CodeUri"], size)
            handlers.update(self.pools)
        stack = provision_from_template(self.aws, TEMPLATE, handlers)
        self.outputs = dict(stack.outputs)
        self.function_names = {logical: function.name for logical, function in stack.functions.items()}
        variables = {
            # Handlers share this process, so the union of the functions' environments is set once.
            **{name: value for function in stack.functions.values() for name, value in function.environment.items()},
            "ROUTES_FILE": str(self.routes_file),
            **vendors.urls,
            "POWERTOOLS_LOG_LEVEL": self._log_level,
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        self._env = environment(variables)
        self._env.__enter__()
        if self.clock is not None:
            self._undo.enter_context(self.clock.installed())
        reset_process_caches()
        # Powertools reads the level when the logger is created, which happened at import.
        logger.setLevel(self._log_level)
        secrets = self.aws.client("secretsmanager")
        secrets.put_secret_value(
            SecretId=self.outputs["WebhookSecretsArn"],
            # One secret for every provider locally (Jenkins and Azure DevOps take it as a token).
            SecretString=json.dumps({provider: self.webhook_secret for provider in PROVIDERS}),
        )
        secrets.put_secret_value(
            SecretId=self.outputs["VendorCredentialsArn"],
            SecretString=json.dumps(vendors.credentials),
        )
        self._poller = SqsPoller(
            self.aws.client("sqs"),
            self.outputs["JobsQueueUrl"],
            load_handler("functions/dispatch"),
            time_scale=self.aws.time_scale,
        )
        self._poller.start()
        self.router = EventRouter(
            self.aws.client("events"), self.aws.client("sqs"), stack.functions, handlers, self.aws.account_id
        )
        self.router.start()
        self._front = HttpFront(load_handler("functions/webhook"), port=self._port)
        self._front.start()
        return self

    def stop(self) -> None:
        if self._front is not None:
            self._front.stop()
        if self._poller is not None:
            self._poller.stop()
        if self.router is not None:
            self.router.stop()
        for pool in self.pools.values():
            pool.stop()
        self.aws.stop()
        self._undo.close()
        if self._env is not None:
            self._env.__exit__(None, None, None)
        reset_process_caches()
        if self.sandbox is not None:
            self.sandbox.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_lambda(self, logical_id: str, error_type: str, message: str = "", times: int = 1) -> None:
        """The next `times` invocations of a template function (e.g. `WriteBackFunction`) fail as the
        Lambda service reports a killed function: `Lambda.Unknown`, `Runtime.ExitError`, ..."""
        self.aws.fail_lambda(self.function_names[logical_id], error_type, message, times)

    def execution_arn(self, job_id: str) -> str:
        machine = self.outputs["StateMachineArn"]
        return machine.replace(":stateMachine:", ":execution:") + f":{job_id}"

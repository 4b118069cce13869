"""The public face of the vendor sandbox: start it, point clients at its URLs, inspect and steer it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from testrelay_local.sandbox.app import SandboxApp
from testrelay_local.sandbox.faults import FaultRule, FaultSettings
from testrelay_local.sandbox.run_durations import RunDurations, RunDurationSettings
from testrelay_local.sandbox.seed import SandboxSeed, VendorBehaviour
from testrelay_local.sandbox.server import SandboxHttpServer
from testrelay_local.sandbox.throttle import ThrottleSettings

_ANY_ADDRESS = {"", "0.0.0.0"}


def _as_seed(seed: SandboxSeed | Mapping[str, Any] | None) -> SandboxSeed:
    if seed is None:
        return SandboxSeed.demo()
    if isinstance(seed, SandboxSeed):
        return seed
    return SandboxSeed.model_validate(seed)


class Sandbox:
    """Loopback stand-in for Testsigma, Testsigma Test Management and GitHub commit statuses.

    `run_duration` is how many seconds a Testsigma run takes from trigger to STATUS_COMPLETED
    (0: completed at the first poll). Without a seed the demo data set is served.
    """

    def __init__(
        self,
        seed: SandboxSeed | Mapping[str, Any] | None = None,
        run_duration: float = 2.0,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock`: the time runs progress by (the local runtime passes its simulated time)."""
        self._app = SandboxApp(_as_seed(seed), run_duration, clock)
        self._host = host
        self._port = port
        self._server: SandboxHttpServer | None = None
        self._base_url: str | None = None
        self.log_requests = False
        """Print one line per request on stderr (set before `start`)."""

    def start(self) -> str:
        """Serves in a daemon thread and returns the base URL, e.g. `http://127.0.0.1:54321`."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        self._app.open()
        self._server = SandboxHttpServer((self._host, self._port), self._app.handle, self.log_requests)
        self._server.start()
        host = "127.0.0.1" if self._host in _ANY_ADDRESS else self._host
        self._base_url = f"http://{host}:{self._server.port}"
        return self._base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._app.close()
        self._server.stop()
        self._server = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the sandbox has not been started")
        return self._base_url

    @property
    def testsigma_url(self) -> str:
        return f"{self.base_url}/testsigma/api/v1"

    @property
    def testsigma_tm_url(self) -> str:
        return f"{self.base_url}/testsigma-tm/api/v1"

    @property
    def browserstack_tm_url(self) -> str:
        return f"{self.base_url}/browserstack-tm"

    @property
    def github_url(self) -> str:
        return f"{self.base_url}/github"

    @property
    def gitlab_url(self) -> str:
        return f"{self.base_url}/gitlab/api/v4"

    @property
    def bitbucket_url(self) -> str:
        return f"{self.base_url}/bitbucket/2.0"

    def state(self) -> dict[str, Any]:
        """Same JSON as `GET /_sandbox/state`."""
        state: dict[str, Any] = json.loads(self._app.state_json())
        return state

    def load_seed(self, seed: SandboxSeed | Mapping[str, Any]) -> None:
        """Same as `POST /_sandbox/seed`: replaces all vendor data; faults and counters stay."""
        self._app.load_seed(_as_seed(seed))

    def set_faults(
        self,
        *,
        latency_ms: float = 0,
        rules: Sequence[FaultRule | Mapping[str, Any]] = (),
        timeout_sleep_s: float = 5.0,
    ) -> None:
        """Same as `POST /_sandbox/faults`: replaces every knob; call without arguments to clear them."""
        self._app.set_faults(
            FaultSettings(
                latency_ms=latency_ms,
                timeout_sleep_s=timeout_sleep_s,
                rules=[rule if isinstance(rule, FaultRule) else FaultRule.model_validate(rule) for rule in rules],
            )
        )

    def set_throttle(self, **vendors: Mapping[str, Any]) -> None:
        """Same as `POST /_sandbox/throttle`: e.g. `set_throttle(browserstack_tm={"limit": 300,
        "window_seconds": 6, "lockout_seconds": 6, "retry_after": "seconds"})`; vendors not named keep
        their knobs; every throttle counter restarts."""
        self._app.set_throttle(ThrottleSettings.model_validate({"vendors": {k: dict(v) for k, v in vendors.items()}}))

    def throttle(self) -> dict[str, Any]:
        """Same as `GET /_sandbox/throttle`: the knobs and, per account, requests, throttles and the peak per window."""
        state: dict[str, Any] = json.loads(self._app.throttle_json())
        return state

    def set_run_durations(self, plans: Mapping[int, RunDurations | Mapping[str, Any]]) -> None:
        """Same as `POST /_sandbox/run_durations`: how long the runs of each plan take from now on, e.g.
        `set_run_durations({2741: {"median_seconds": 1800, "sigma": 0.1, "outlier_share": 0.05}})`;
        plans not named take `run_duration`. A reset clears them."""
        self._app.set_run_durations(RunDurationSettings.model_validate({"plans": dict(plans)}))

    def configure(self, **knobs: Any) -> VendorBehaviour:
        """Same as `POST /_sandbox/config`: the named knobs take the given variant, the others stay
        (e.g. `configure(bs_bulk_results="present", tm_paging="next_url")`); a reset goes back to the seed's."""
        behaviour = VendorBehaviour.model_validate({**self._app.behaviour.model_dump(), **knobs})
        self._app.set_config(behaviour)
        return behaviour

    @property
    def behaviour(self) -> VendorBehaviour:
        return self._app.behaviour

    def reset(self) -> None:
        """Same as `POST /_sandbox/reset`: back to the current seed, no faults, zeroed counters."""
        self._app.reset()

"""The sandbox behind the HTTP server: routes each call to its vendor, injects faults, counts calls,
and serves the `/_sandbox` control API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from testrelay_local.sandbox.bitbucket import BitbucketApi
from testrelay_local.sandbox.browserstack_tm import BrowserStackTmApi
from testrelay_local.sandbox.counters import RequestCounters
from testrelay_local.sandbox.faults import APPLIED_FAULTS, FaultInjector, FaultKind, FaultSettings
from testrelay_local.sandbox.github import GithubApi
from testrelay_local.sandbox.gitlab import GitlabApi
from testrelay_local.sandbox.messages import MalformedBody, Request, Response
from testrelay_local.sandbox.run_durations import RunDurationDraws, RunDurationSettings
from testrelay_local.sandbox.seed import SandboxSeed, VendorBehaviour
from testrelay_local.sandbox.testsigma import TestsigmaApi
from testrelay_local.sandbox.testsigma_tm import TestsigmaTmApi
from testrelay_local.sandbox.throttle import Throttle, ThrottleSettings
from testrelay_local.sandbox.vendor import Route, VendorApi, VendorName

CONTROL_PREFIX = "/_sandbox"
_Model = TypeVar("_Model", bound=BaseModel)
_VENDOR_PREFIXES: dict[str, VendorName] = {
    api.prefix: api.name
    for api in (TestsigmaApi, TestsigmaTmApi, BrowserStackTmApi, GithubApi, GitlabApi, BitbucketApi)
}


def _vendor_of(path: str) -> tuple[VendorName, str] | None:
    """The vendor serving a path, and the path relative to that vendor's base URL."""
    for prefix, name in _VENDOR_PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return name, path[len(prefix) :] or "/"
    return None


class SandboxApp:
    def __init__(self, seed: SandboxSeed, run_duration: float, clock: Callable[[], float] = time.time) -> None:
        """`clock`: the time Testsigma runs progress by (the local runtime's simulated time, or the wall clock)."""
        self.run_duration = run_duration
        self._clock = clock
        self._durations = RunDurationDraws(run_duration)
        # One lock for all state: handlers are quick, and only sleeps (latency, time-outs) run outside it.
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._seed = seed
        self._faults = FaultInjector()
        self._counters = RequestCounters()
        self._throttle = Throttle()
        self._vendors = self._build_vendors(seed)

    def _build_vendors(self, seed: SandboxSeed) -> dict[VendorName, VendorApi]:
        vendors: dict[VendorName, VendorApi] = {
            "testsigma": TestsigmaApi(seed, self.run_duration, self._clock, self._durations.next_for),
            "testsigma_tm": TestsigmaTmApi(seed),
            "browserstack_tm": BrowserStackTmApi(seed),
            "github": GithubApi(seed),
            "gitlab": GitlabApi(seed),
            "bitbucket": BitbucketApi(seed),
        }
        for vendor in vendors.values():
            vendor.behaviour = seed.behaviour
        return vendors

    def handle(self, request: Request) -> Response:
        if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
            return self._control(request)
        owner = _vendor_of(request.path)
        if owner is None:
            return Response.of_json(
                404, {"message": f"nothing is served at {request.path}; vendors live under {sorted(_VENDOR_PREFIXES)}"}
            )
        vendor_name, local_path = owner
        request = replace(request, path=local_path)
        with self._lock:
            # A call belongs to the data it arrived at: if a reset or a new seed lands while it sleeps,
            # it finishes against (and is counted in) what it started with, never leaking into the new data.
            vendor = self._vendors[vendor_name]
            counters = self._counters
            fault = self._faults.pick(vendor_name, request.method, request.path)
            # Counted on arrival, per account, across every connection (after the explicit faults).
            admitted = fault is None or fault in APPLIED_FAULTS
            throttled, announced = self._throttle.admit(vendor, request) if admitted else (None, {})
            latency_s = self._faults.settings.latency_ms / 1000
            hang_s = self._faults.settings.timeout_sleep_s
        # Sleeps end early when the sandbox stops, so a hung call never outlives it.
        if latency_s:
            self._closing.wait(latency_s)
        if fault == "timeout":
            self._closing.wait(hang_s)
        with self._lock:
            found = vendor.router.match(request.method, request.path)
            response = throttled or self._answer(vendor, found, request, fault)
            endpoint = found[0].endpoint if found else f"{request.method} (no such endpoint)"
            counters.record(vendor_name, endpoint, response.status, fault or ("rate_limit" if throttled else None))
            response = vendor.decorate(response)
            response.headers.update(announced)
            return response

    @staticmethod
    def _answer(
        vendor: VendorApi, found: tuple[Route, dict[str, str]] | None, request: Request, fault: FaultKind | None
    ) -> Response:
        if fault == "throttle":
            return vendor.throttled()
        if fault == "server_error":
            return vendor.server_error()
        if fault == "internal_error":
            return vendor.error(500, "Internal Server Error")
        if fault == "timeout":
            return vendor.timed_out()
        if fault in APPLIED_FAULTS:
            # Carried out as usual; only the answer is lost on the way back.
            SandboxApp._answer(vendor, found, request, None)
            return vendor.timed_out() if fault == "lost_answer" else Response(status=504, drop=True)
        if not vendor.authorized(request):
            return vendor.unauthorized()
        if found is None:
            return vendor.error(404, f"Not Found: {request.method} {request.path}")
        route, params = found
        try:
            return route.handler(request, params)
        except MalformedBody as exc:
            return vendor.malformed(str(exc))

    def state_json(self) -> bytes:
        with self._lock:
            state: dict[str, Any] = {
                "run_duration": self.run_duration,
                "run_durations": self._durations.snapshot(),
                **{name: vendor.snapshot() for name, vendor in self._vendors.items()},
                "requests": self._counters.snapshot(),
                "request_times": self._counters.times(),
                "faults": self._faults.snapshot(),
                "throttle": self._throttle.snapshot(),
                "config": self.behaviour.model_dump(),
            }
        return json.dumps(state).encode()

    def load_seed(self, seed: SandboxSeed) -> None:
        """Replaces all vendor data with the seed's; faults and counters stay."""
        with self._lock:
            self._seed = seed
            self._vendors = self._build_vendors(seed)

    @property
    def behaviour(self) -> VendorBehaviour:
        return next(iter(self._vendors.values())).behaviour

    def set_config(self, behaviour: VendorBehaviour) -> None:
        """Which variant of each undocumented behaviour the vendors show; data, faults and counters stay.
        A reset goes back to the seed's own `behaviour`."""
        with self._lock:
            for vendor in self._vendors.values():
                vendor.behaviour = behaviour

    def set_faults(self, settings: FaultSettings) -> None:
        with self._lock:
            self._faults = FaultInjector(settings)

    def set_throttle(self, settings: ThrottleSettings) -> None:
        with self._lock:
            self._throttle.configure(settings)

    def throttle_json(self) -> bytes:
        with self._lock:
            return json.dumps(self._throttle.snapshot()).encode()

    def reset(self) -> None:
        """Back to the current seed, without faults, the documented throttles and zeroed counters."""
        with self._lock:
            self._vendors = self._build_vendors(self._seed)
            self._faults = FaultInjector()
            self._counters = RequestCounters()
            self._throttle.reset()
            self._durations.configure(RunDurationSettings())

    def set_run_durations(self, settings: RunDurationSettings) -> None:
        """How long runs of each plan take from now on (runs already started keep theirs)."""
        self._durations.configure(settings)

    def open(self) -> None:
        self._closing.clear()

    def close(self) -> None:
        """Wakes every sleeping call (latency, injected time-outs) so a stopping server is not held up."""
        self._closing.set()

    def _control(self, request: Request) -> Response:
        action = (request.method, request.path.removeprefix(CONTROL_PREFIX).rstrip("/"))
        if action == ("GET", "/state"):
            return Response(200, self.state_json())
        if action == ("POST", "/reset"):
            self.reset()
            return Response.of_json(200, {"message": "reset to the current seed; faults and counters cleared"})
        if action == ("POST", "/seed"):
            seed = self._parse(request, SandboxSeed)
            if isinstance(seed, Response):
                return seed
            self.load_seed(seed)
            return Response.of_json(200, {"message": "seed loaded; vendor data replaced"})
        if action == ("GET", "/config"):
            with self._lock:
                return Response.of_json(200, self.behaviour.model_dump())
        if action == ("POST", "/config"):
            # Partial: the knobs named in the body change, the others keep their current variant.
            try:
                body = request.json()
                if not isinstance(body, dict):
                    raise MalformedBody("the config must be a JSON object of knob: variant")
                with self._lock:
                    behaviour = VendorBehaviour.model_validate({**self.behaviour.model_dump(), **body})
            except MalformedBody as exc:
                return Response.of_json(400, {"message": str(exc), "errors": []})
            except ValidationError as exc:
                errors: Any = json.loads(exc.json(include_url=False))
                return Response.of_json(400, {"message": "invalid VendorBehaviour", "errors": errors})
            self.set_config(behaviour)
            return Response.of_json(200, behaviour.model_dump())
        if action == ("POST", "/faults"):
            settings = self._parse(request, FaultSettings)
            if isinstance(settings, Response):
                return settings
            self.set_faults(settings)
            with self._lock:
                return Response.of_json(200, self._faults.snapshot())
        if action == ("GET", "/run_durations"):
            return Response.of_json(200, self._durations.snapshot())
        if action == ("POST", "/run_durations"):
            durations = self._parse(request, RunDurationSettings)
            if isinstance(durations, Response):
                return durations
            self.set_run_durations(durations)
            return Response.of_json(200, self._durations.snapshot())
        if action == ("GET", "/throttle"):
            return Response(200, self.throttle_json())
        if action == ("POST", "/throttle"):
            throttle = self._parse(request, ThrottleSettings)
            if isinstance(throttle, Response):
                return throttle
            try:
                self.set_throttle(throttle)
            except ValidationError as exc:
                refused: Any = json.loads(exc.json(include_url=False))
                return Response.of_json(400, {"message": "invalid VendorThrottle", "errors": refused})
            return Response(200, self.throttle_json())
        return Response.of_json(
            404,
            {
                "message": f"no control endpoint {request.method} {request.path}",
                "endpoints": [
                    "GET /_sandbox/state",
                    "POST /_sandbox/seed",
                    "POST /_sandbox/faults",
                    "GET /_sandbox/config",
                    "POST /_sandbox/config",
                    "POST /_sandbox/reset",
                    "GET /_sandbox/throttle",
                    "POST /_sandbox/throttle",
                    "GET /_sandbox/run_durations",
                    "POST /_sandbox/run_durations",
                ],
            },
        )

    @staticmethod
    def _parse(request: Request, model: type[_Model]) -> _Model | Response:
        try:
            return model.model_validate(request.json())
        except MalformedBody as exc:
            return Response.of_json(400, {"message": str(exc), "errors": []})
        except ValidationError as exc:
            errors: Any = json.loads(exc.json(include_url=False))
            return Response.of_json(400, {"message": f"invalid {model.__name__}", "errors": errors})

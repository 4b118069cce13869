"""How long the sandbox's Testsigma runs take, per test plan: a knob (`POST /_sandbox/run_durations`).

No vendor document says how long a run takes; real plans vary from run to run (lognormal around a
median is the usual shape of job durations) and now and then one runs far shorter (aborted) or
longer (a slow lab). A plan without a distribution takes the sandbox's `run_duration`.
"""

from __future__ import annotations

import math
import random
import threading

from pydantic import BaseModel, ConfigDict, Field, model_validator

_WEEK = 7 * 24 * 3600.0


class RunDurations(BaseModel):
    """Each run takes `median_seconds * e^(sigma * Z)` (Z standard normal); a share `outlier_share` of
    runs takes `median_seconds` times a factor drawn log-uniformly from `outlier_factors` instead.
    Draws are seeded: the same settings give the same sequence of durations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    median_seconds: float = Field(gt=0, le=_WEEK)
    sigma: float = Field(default=0.0, ge=0, le=3)
    outlier_share: float = Field(default=0.0, ge=0, le=1)
    outlier_factors: tuple[float, float] = (0.2, 3.0)
    seed: int = 0

    @model_validator(mode="after")
    def _factors_ordered(self) -> RunDurations:
        low, high = self.outlier_factors
        if not 0 < low <= high <= 100:
            raise ValueError("outlier_factors must be (low, high) with 0 < low <= high <= 100")
        return self

    def draw(self, rng: random.Random) -> float:
        if self.outlier_share and rng.random() < self.outlier_share:
            low, high = self.outlier_factors
            factor = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            factor = math.exp(rng.gauss(0.0, self.sigma)) if self.sigma else 1.0
        return min(_WEEK, self.median_seconds * factor)


class RunDurationSettings(BaseModel):
    """The body of `POST /_sandbox/run_durations`: test plan id → its distribution (replaces all)."""

    model_config = ConfigDict(extra="forbid")

    plans: dict[int, RunDurations] = Field(default_factory=dict)


class RunDurationDraws:
    """The distributions in force and their seeded generators; thread-safe."""

    def __init__(self, default_seconds: float) -> None:
        self.default_seconds = default_seconds
        self._lock = threading.Lock()
        self._settings = RunDurationSettings()
        self._generators: dict[int, random.Random] = {}

    def configure(self, settings: RunDurationSettings) -> None:
        with self._lock:
            self._settings = settings
            self._generators = {plan: random.Random(d.seed) for plan, d in settings.plans.items()}

    def next_for(self, plan_id: int) -> float:
        """How long the next run of the plan takes, in (sandbox) seconds."""
        with self._lock:
            durations = self._settings.plans.get(plan_id)
            if durations is None:
                return self.default_seconds
            return durations.draw(self._generators[plan_id])

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {"default_seconds": self.default_seconds, **self._settings.model_dump(mode="json")}

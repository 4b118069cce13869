"""The event contracts of the stack's EventBridge bus (README "Event-driven automation").

In: `Test Run Requested` (any source but `aws.*`, which only AWS services may use). Out: `Test Run
Finished`, `Test Run Failed`, `Test Run Timed Out`, from source `testrelay`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from testrelay.models.ci_event import MAX_TEXT, MAX_URL


def _encodable(value: object) -> object:
    # json.loads accepts a lone surrogate ("\ud800"); the job's JSON on the queue could not carry it.
    # Checked before pydantic's own string checks, so the reason names the problem.
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("contains a lone UTF-16 surrogate, which is not text") from exc
    return value


# The same limits as the CiEvent fields they become.
Text = Annotated[str, Field(max_length=MAX_TEXT), BeforeValidator(_encodable)]
Url = Annotated[str, Field(max_length=MAX_URL), BeforeValidator(_encodable)]

REQUEST_DETAIL_TYPE = "Test Run Requested"
# The provider of a requested job's CiEvent (routes can name it; job ids derive from it).
REQUEST_PROVIDER = "eventbridge"
FINISHED = "Test Run Finished"
FAILED = "Test Run Failed"
TIMED_OUT = "Test Run Timed Out"
END_DETAIL_TYPES = (FINISHED, FAILED, TIMED_OUT)
# The source of the events testrelay puts; rules select them with {"source": ["testrelay"]}.
EVENT_SOURCE = "testrelay"
MAX_KEY = 256


class TestRunRequest(BaseModel):
    """`detail` of a `Test Run Requested` event: start route `route`'s plan (or, with
    `testsigma_run_id`, collect and write back a run that already exists) once per `idempotency_key`."""

    __test__ = False  # not a pytest test class, whatever its name
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    route: Text = Field(min_length=1, description="the route's name in the routes file")
    idempotency_key: str = Field(
        min_length=1,
        max_length=MAX_KEY,
        pattern=r"^[\x21-\x7e]+$",
        description="printable ASCII, no spaces: the same key (from the same account) gives one job",
    )
    repository: Text | None = Field(default=None, min_length=1)
    branch: Text | None = None
    sha: Text | None = Field(default=None, pattern=r"^[0-9a-fA-F]{7,64}$")
    run_url: Url | None = Field(default=None, pattern=r"^https?://\S+$")
    testsigma_run_id: int | None = Field(default=None, gt=0, le=2**63 - 1)
    name: Text = Field(default="", description="a label for the run (the pipeline name in titles)")
